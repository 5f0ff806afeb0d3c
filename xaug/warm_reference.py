"""A reference implementation of the warm generators' decoding (``WarmGenerator.decode_ids``): per-row
Python bigram blocking and bookkeeping over the same decoder steps. It is the oracle of the tensorised
loop (tests/test_decoding.py: greedy outputs byte-identical, sampled ones too with the same seed, since
finished rows leave the batch alike and ``torch.multinomial`` draws the same random numbers) and the
baseline that benchmarks/generation.py times it against."""
from __future__ import annotations

import torch

from .decoding import SamplingSettings
from .warm import WarmGenerator, next_pieces


@torch.inference_mode()
def reference_decode_ids(self: WarmGenerator, states, lang: str, settings: SamplingSettings, n: int,
                         sources=None, bias_pieces=None) -> list[list[int]]:
    """What ``self.decode_ids`` returns, by per-row Python bigram blocking and bookkeeping."""
    hidden, probs, cache, alive, per_row = self.start_decoding(states, lang, settings, n, sources, bias_pieces)
    b = len(states)
    texts_ids: list[list[int]] = [[] for _ in range(b * n)]
    seen: list[dict[int, set[int]]] = [{} for _ in range(b * n)]  # per row: previous piece -> next pieces
    for step in range(settings.max_new_tokens):
        if settings.no_repeat_bigrams and step:
            for i, r in enumerate(alive.tolist()):
                banned = seen[r].get(texts_ids[r][-1]) if texts_ids[r] else None
                if banned:
                    probs[i, list(banned)] = 0.0
        tok = next_pieces(probs, settings)
        done = tok == self.eos
        for r, t in zip(alive.tolist(), tok.tolist()):
            if t != self.eos:
                if texts_ids[r]:
                    seen[r].setdefault(texts_ids[r][-1], set()).add(t)
                texts_ids[r].append(t)
        keep = (~done).nonzero()[:, 0]
        if len(keep) == 0 or step == settings.max_new_tokens - 1:
            break
        probs, cache, alive, per_row = self.continue_decoding(keep, alive, tok, cache, hidden, per_row)
    return texts_ids
