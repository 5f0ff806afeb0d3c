"""What the generators decode with: the sampling settings of query generation (``xqg``), the greedy
settings of passage translation (``translate``), the integer check they share, the keys of those params
groups that other readers own, and the copy bias (rare pieces of the source passage favoured while
decoding)."""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Sequence

import torch

from .errors import ConfigError
from .params import check_int


def check_positive(settings, group: str, names: Sequence[str]) -> None:
    """Each field of ``names`` of a settings dataclass is a positive integer (errors name ``<group>.<field>``)."""
    for name in names:
        check_int(getattr(settings, name), f"{group}.{name}")


# keys of the `xqg` params group besides SamplingSettings' fields: the generator (train_xqg), the
# resumable chunks and the backend (generate_queries), the quality report's sample (generation_quality);
# `threads` belongs to the stage harness
XQG_GROUP_KEYS = ("model", "context_languages", "max_source_length", "warm", "tiny", "train", "chunk_size",
                  "backend", "ray_address", "ray_workers", "quality_passages")
# keys of the `translate` params group read elsewhere than TranslateSettings (train_translator, the
# quality report, the warm translator's own settings, the backend: xaug.backend)
TRANSLATE_GROUP_KEYS = ("model", "pairs", "quality_pairs", "warm", "backend", "ray_address", "ray_workers")


@dataclass
class SamplingSettings:
    n_queries: int = 5
    top_k: int = 10
    max_new_tokens: int = 64
    batch_size: int = 16
    do_sample: bool = True
    seed: int = 0
    copy_bias: float = 0.0  # added to the logits of rare pieces that occur in the source passage
    copy_max_df: float = 0.02  # "rare": in at most this share of corpus passages
    no_repeat_bigrams: bool = False  # warm generators: never repeat a bigram within an output
    max_tokens: int = 0  # padded source tokens per decode batch at most (0 = batch_size passages a batch)

    def __post_init__(self):
        check_positive(self, "xqg", ("n_queries", "max_new_tokens", "batch_size"))
        if not self.do_sample and self.n_queries > 1:
            raise ConfigError(f"xqg.do_sample: greedy decoding gives one query per passage; set n_queries to 1 "
                              f"(got {self.n_queries}) or sample")
        check_int(self.top_k, "xqg.top_k", minimum=0, note="0 = no top-k cut")
        check_int(self.max_tokens, "xqg.max_tokens", minimum=0, note="0 = no cap")


@dataclass
class TranslateSettings:
    max_sentences: int = 2         # translate the first sentences of each passage (0 = all)
    max_new_tokens: int = 48       # per sentence, warm translators (trained on targets of at most 40 pieces)
    batch_size: int = 32
    chunk_size: int = 128          # passages per resumable chunk
    max_source_length: int = 128   # source tokens per sentence
    max_tokens: int = 0            # padded source tokens per batch at most (0 = batch_size sentences a batch)
    length_ratio: float = 2.0      # HF translators: new tokens per sentence, times the batch's longest source

    def __post_init__(self):
        check_positive(self, "translate", ("max_new_tokens", "batch_size", "chunk_size", "max_source_length"))
        check_int(self.max_tokens, "translate.max_tokens", minimum=0, note="0 = no cap")
        check_int(self.max_sentences, "translate.max_sentences", minimum=0, note="0 = all")
        if isinstance(self.length_ratio, bool) or not isinstance(self.length_ratio, (int, float)) \
                or not self.length_ratio > 0:
            raise ConfigError(f"translate.length_ratio: expected a positive number, got {self.length_ratio!r}")

    def generation_length(self, longest_source: int) -> int:
        """New tokens an HF translator may generate for a batch whose longest source has ``longest_source``
        tokens: ``length_ratio`` times that, plus 8 (a fixed cap would cut long sentences: 48 tokens cut
        about a fifth of MLQA's English first sentences). Sources are cut at ``max_source_length``, so this is
        at most ``length_ratio * max_source_length + 8``."""
        return math.ceil(self.length_ratio * longest_source) + 8

    def greedy(self) -> SamplingSettings:
        return SamplingSettings(n_queries=1, do_sample=False, max_new_tokens=self.max_new_tokens,
                                batch_size=self.batch_size, no_repeat_bigrams=True)


def rare_pieces(token_lists: Sequence[Sequence[int]], max_df: float) -> set[int]:
    """Pieces occurring in at most ``max_df`` of the texts (names and content words, not "the" or ",")."""
    df = Counter(t for ids in token_lists for t in set(ids))
    return {t for t, n in df.items() if n <= max_df * len(token_lists)}


class SourceBias:
    """Logits processor: favour pieces of each row's source passage (a cheap copy mechanism)."""

    def __init__(self, sources: list[list[int]], vocab_size: int, n: int, bias: float):
        mask = torch.zeros(len(sources), vocab_size)
        for i, ids in enumerate(sources):
            mask[i, [t for t in set(ids) if 0 <= t < vocab_size]] = bias
        self.bias = mask.repeat_interleave(n, dim=0)  # generate() expands each input n times, in place

    def __call__(self, input_ids, scores):
        return scores + self.bias.to(scores.device, scores.dtype)
