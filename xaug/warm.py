"""BERT2BERT generators warm-started from the xDR's encoder (Rothe et al., 2020).

The encoder is frozen, so each passage is encoded once and its states serve every target language.
The decoder copies the encoder's top layers (cross-attention added, initialised fresh), its output
vocabulary is pruned to the pieces of the given texts, and the target language is its first token
after ``<s>`` (``<2de>``). Used for query generation (and, later, translation).
"""
from __future__ import annotations

import json
import logging
import math
import random
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from .errors import ConfigError
from .generation import SamplingSettings, generation_kwargs, rare_pieces
from .params import positive_int

log = logging.getLogger(__name__)
LANG_TOKEN = "<2{}>"


@dataclass
class WarmSettings:
    decoder_layers: int = 4
    max_source_length: int = 256
    max_target_length: int = 48
    epochs: int = 3
    batch_size: int = 32
    lr: float = 3e-4
    label_smoothing: float = 0.1
    max_steps: int = 0
    cross_from_self: bool = True
    seed: int = 0

    def __post_init__(self):
        for name in ("decoder_layers", "max_source_length", "max_target_length", "epochs", "batch_size"):
            positive_int(getattr(self, name), f"xqg.warm.{name}")
        self.lr = float(self.lr)


def pruned_vocabulary(tokenizer, texts: Sequence[str]) -> list[int]:
    """Full-vocabulary ids of every piece in ``texts`` plus the special tokens, sorted."""
    keep = set(tokenizer.all_special_ids)
    for start in range(0, len(texts), 1000):
        for ids in tokenizer(list(texts[start : start + 1000]), add_special_tokens=False, verbose=False)["input_ids"]:
            keep.update(ids)
    return sorted(keep)


def build_decoder(encoder, kept: list[int], languages: Sequence[str], n_layers: int, cross_from_self: bool = True):
    """A BertLMHeadModel over the pruned vocabulary, initialised from ``encoder``'s top layers."""
    from transformers import BertConfig, BertLMHeadModel

    cfg = encoder.config
    if n_layers > cfg.num_hidden_layers:
        raise ConfigError(f"xqg.warm.decoder_layers: {n_layers} > the encoder's {cfg.num_hidden_layers} layers")
    vocab = len(kept) + len(languages)
    dec_cfg = BertConfig(**{**cfg.to_dict(), "vocab_size": vocab, "num_hidden_layers": n_layers, "is_decoder": True,
                            "add_cross_attention": True, "pad_token_id": kept.index(cfg.pad_token_id),
                            "architectures": None})
    decoder = BertLMHeadModel(dec_cfg)
    with torch.no_grad():
        src_emb = encoder.embeddings
        emb = decoder.bert.embeddings
        kept_t = torch.tensor(kept)
        emb.word_embeddings.weight[: len(kept)] = src_emb.word_embeddings.weight[kept_t]
        emb.word_embeddings.weight[len(kept):] = src_emb.word_embeddings.weight[kept_t].mean(0)
        emb.position_embeddings.weight.copy_(src_emb.position_embeddings.weight)
        emb.token_type_embeddings.weight.copy_(src_emb.token_type_embeddings.weight)
        emb.LayerNorm.load_state_dict(src_emb.LayerNorm.state_dict())
        top = encoder.encoder.layer[cfg.num_hidden_layers - n_layers :]
        for dst, src in zip(decoder.bert.encoder.layer, top):
            missing, unexpected = dst.load_state_dict(src.state_dict(), strict=False)
            assert not unexpected and all("crossattention" in m for m in missing), (missing, unexpected)
            if cross_from_self:  # start cross-attention from the layer's self-attention weights
                dst.crossattention.load_state_dict(src.attention.state_dict())
        decoder.tie_weights()
    return decoder


class WarmGenerator:
    """Frozen encoder + pruned-vocabulary decoder; ``generate`` takes passages or cached states."""

    def __init__(self, encoder, tokenizer, decoder, kept: list[int], languages: list[str], passage_prefix: str,
                 settings: WarmSettings):
        from transformers import EncoderDecoderModel

        self.encoder, self.tokenizer, self.decoder = encoder.eval(), tokenizer, decoder
        self.kept, self.languages, self.prefix, self.settings = kept, list(languages), passage_prefix, settings
        for p in self.encoder.parameters():
            p.requires_grad_(False)
        self.model = EncoderDecoderModel(encoder=self.encoder, decoder=self.decoder)
        special = {"decoder_start_token_id": self.to_pruned(tokenizer.cls_token_id),
                   "pad_token_id": self.to_pruned(tokenizer.pad_token_id),
                   "eos_token_id": self.to_pruned(tokenizer.sep_token_id)}
        for key, value in special.items():  # generate() reads the generation config
            setattr(self.model.config, key, value)
            setattr(self.model.generation_config, key, value)
        self._index = {full: i for i, full in enumerate(kept)}
        self.copy_vocabulary: set[int] | None = None
        self.unk = self._index[tokenizer.unk_token_id]

    def to_pruned(self, full_id: int) -> int:
        return self.kept.index(full_id)

    def lang_id(self, lang: str) -> int:
        if lang not in self.languages:
            raise ConfigError(f"languages: the query generator was trained without {lang!r} (it knows {self.languages})")
        return len(self.kept) + self.languages.index(lang)

    def encode_targets(self, texts: Sequence[str], langs: Sequence[str]) -> list[list[int]]:
        ids = self.tokenizer(list(texts), add_special_tokens=False, truncation=True,
                             max_length=self.settings.max_target_length)["input_ids"]
        bos, eos = self.to_pruned(self.tokenizer.cls_token_id), self.to_pruned(self.tokenizer.sep_token_id)
        return [[bos, self.lang_id(l)] + [self._index.get(t, self.unk) for t in row] + [eos] for row, l in zip(ids, langs)]

    def source_lengths(self, passages: Sequence[dict]) -> list[int]:
        enc = self.tokenizer([self.prefix + p["text"] for p in passages], truncation=True,
                             max_length=self.settings.max_source_length)
        return [len(x) for x in enc["input_ids"]]

    @torch.inference_mode()
    def encode_passages(self, texts: Sequence[str], batch_size: int = 32, bf16: bool = True):
        """Encoder states (list of [len, hidden] float16 tensors), computed once per passage."""
        import contextlib

        enc = self.tokenizer([self.prefix + t for t in texts], truncation=True, max_length=self.settings.max_source_length)
        ids = enc["input_ids"]
        order = np.argsort([-len(x) for x in ids], kind="stable")
        states: list = [None] * len(texts)
        ctx = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
        with ctx:
            for s in range(0, len(ids), batch_size):
                idx = order[s : s + batch_size]
                batch = self.tokenizer.pad([{"input_ids": ids[i]} for i in idx], return_tensors="pt")
                out = self.encoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
                for row, i in enumerate(idx):
                    states[i] = out[row, : len(ids[i])].to(torch.float16).clone()
        return states

    @staticmethod
    def pad_states(states: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        longest = max(s.shape[0] for s in states)
        hidden = torch.zeros(len(states), longest, states[0].shape[1])
        mask = torch.zeros(len(states), longest, dtype=torch.long)
        for i, s in enumerate(states):
            hidden[i, : s.shape[0]] = s.float()
            mask[i, : s.shape[0]] = 1
        return hidden, mask

    def loss(self, states: Sequence[torch.Tensor], targets: list[list[int]]) -> torch.Tensor:
        hidden, mask = self.pad_states(states)
        longest = max(len(t) for t in targets)
        pad = self.model.config.pad_token_id
        inp = torch.full((len(targets), longest - 1), pad)
        labels = torch.full((len(targets), longest - 1), -100)
        for i, t in enumerate(targets):
            inp[i, : len(t) - 1] = torch.tensor(t[:-1])
            labels[i, 1 : len(t) - 1] = torch.tensor(t[2:])  # the language token is given, not predicted
        dec_mask = (torch.arange(longest - 1)[None, :] < torch.tensor([len(t) - 1 for t in targets])[:, None]).long()
        out = self.decoder(input_ids=inp, attention_mask=dec_mask, encoder_hidden_states=hidden,
                           encoder_attention_mask=mask)
        logits = out.logits
        return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1),
                                                 ignore_index=-100, label_smoothing=self.settings.label_smoothing)

    @torch.inference_mode()
    def generate_from_states(self, states: Sequence[torch.Tensor], lang: str, settings: SamplingSettings,
                             n: int | None = None, sources: list[list[int]] | None = None) -> tuple[list[list[str]], int]:
        """``sources``: pruned piece ids of each passage, for ``settings.copy_bias``."""
        from transformers.modeling_outputs import BaseModelOutput

        n = n or settings.n_queries
        self.decoder.eval()
        hidden, mask = self.pad_states(states)
        start = torch.tensor([[self.model.config.decoder_start_token_id, self.lang_id(lang)]] * len(states))
        out = self.model.generate(encoder_outputs=BaseModelOutput(last_hidden_state=hidden), attention_mask=mask,
                                  decoder_input_ids=start,
                                  **generation_kwargs(settings, n, sources, len(self.kept) + len(self.languages)),
                                  eos_token_id=self.model.config.eos_token_id, pad_token_id=self.model.config.pad_token_id)
        gen = out[:, 2:].tolist()
        eos, pad = self.model.config.eos_token_id, self.model.config.pad_token_id
        texts, tokens = [], 0
        for row in gen:
            full = []
            for t in row:
                if t in (eos, pad):
                    break
                tokens += 1
                if t < len(self.kept):
                    full.append(self.kept[t])
            texts.append(self.tokenizer.decode(full, skip_special_tokens=True).strip())
        return [texts[i * n : (i + 1) * n] for i in range(len(states))], tokens

    def source_pieces(self, texts: Sequence[str]) -> list[list[int]]:
        """Pruned ids of each text's pieces (only those in the copy vocabulary, once one is set)."""
        ids = self.tokenizer(list(texts), add_special_tokens=False, truncation=True,
                             max_length=self.settings.max_source_length)["input_ids"]
        special, allowed = set(self.tokenizer.all_special_ids), self.copy_vocabulary
        return [[self._index[t] for t in row if t in self._index and t not in special
                 and (allowed is None or self._index[t] in allowed)] for row in ids]

    def set_copy_vocabulary(self, texts: Sequence[str], max_df: float) -> None:
        self.copy_vocabulary = None
        self.copy_vocabulary = rare_pieces(self.source_pieces(texts), max_df)

    def generate(self, passages: Sequence[dict], lang: str, settings: SamplingSettings, n: int | None = None):
        texts = [p["text"] for p in passages]
        states = [p["states"] for p in passages] if passages and "states" in passages[0] else self.encode_passages(texts)
        sources = self.source_pieces(texts) if settings.copy_bias else None
        return self.generate_from_states(states, lang, settings, n, sources)

    def save(self, path) -> None:
        path = Path(path)
        self.decoder.save_pretrained(path / "decoder")
        (path / "warm.json").write_text(json.dumps({"kept": self.kept, "languages": self.languages,
                                                    "passage_prefix": self.prefix,
                                                    "settings": asdict(self.settings)}) + "\n")

    @classmethod
    def load(cls, path, encoder, tokenizer) -> "WarmGenerator":
        from transformers import BertLMHeadModel

        path = Path(path)
        if not (path / "warm.json").is_file():
            raise ConfigError(f"{path}: not a warm generator folder (no warm.json)")
        meta = json.loads((path / "warm.json").read_text())
        decoder = BertLMHeadModel.from_pretrained(path / "decoder").eval()
        return cls(encoder, tokenizer, decoder, meta["kept"], meta["languages"], meta["passage_prefix"],
                   WarmSettings(**meta["settings"]))


def train_warm(gen: WarmGenerator, examples: list[dict], states: dict[str, torch.Tensor], progress: bool = True) -> dict:
    """Teacher-forced training of the decoder on (passage id, target text, language) examples."""
    from .training import cycle_batches, optimise, summarise_losses

    s = gen.settings
    torch.manual_seed(s.seed)
    targets = gen.encode_targets([e["target"] for e in examples], [e["lang"] for e in examples])
    total = s.epochs * math.ceil(len(examples) / s.batch_size)
    total = min(total, s.max_steps) if s.max_steps else total
    params = [p for p in gen.decoder.parameters() if p.requires_grad]
    gen.decoder.train()
    losses, seconds = optimise(
        params, cycle_batches(len(examples), s.batch_size, random.Random(s.seed)),
        lambda idx: gen.loss([states[examples[i]["passage_id"]] for i in idx], [targets[i] for i in idx]),
        s.lr, total, warmup=total // 20, desc="train generator", progress=progress, floor=0.05)
    gen.decoder.eval()
    first, last = summarise_losses(losses, 20)
    log.info("generator: %d steps in %.0fs, loss %.3f -> %.3f", len(losses), seconds, first, last)
    return {"steps": len(losses), "seconds": round(seconds, 1), "loss_first": round(first, 4), "loss_last": round(last, 4)}
