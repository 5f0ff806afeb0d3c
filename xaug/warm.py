"""BERT2BERT generators warm-started from the xDR's encoder (Rothe et al., 2020).

The encoder is frozen, so each passage is encoded once and its states serve every target language.
The decoder copies the encoder's top layers (cross-attention added), its output vocabulary is pruned
to the pieces of the given texts, and the target language is its first token after ``<s>`` (``<2de>``).
A pointer head (See et al., 2017) mixes the decoder's vocabulary distribution with a copy distribution
over the source's pieces, so names and rare words of the passage can be generated from a few thousand
training pairs (training: ``xaug.warm_training``). Decoding is our own loop over the decoder's KV cache:
cross-attention keys and values are computed once per passage (not once per sampled query) and finished
rows leave the batch. Used for query generation and passage translation.
"""
from __future__ import annotations

import json
import logging
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator, Sequence

import torch
from safetensors.torch import load_file, save_file

from .decoding import SamplingSettings, SourceBias, check_positive, rare_pieces
from .device import bf16_autocast, device_of, use_bf16
from .dropout import use_byte_dropout
from .encoding import length_batches
from .errors import ConfigError
from .models import load_backbone
from .params import check_int, from_params
from .packed_decoder import Packing, teacher_forced_states
from .pointer_loss import pointer_smoothed_nll

log = logging.getLogger(__name__)
SOURCE_BLOCK = 32768  # sources tokenized and length-sorted at a time by ``iter_states``
TOKENIZE_BLOCK = 4096  # texts per tokenizer call: its output for a whole training split (Rust encodings,
# masks) is gigabytes at the scale benchmark's P = 100k; only the ids are kept


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
    check_every: int = 0       # steps between checks of the tune loss (0: no checks, train the whole schedule)
    patience: int = 0          # checks without a better tune loss before stopping (0: never early)
    tune_examples: int = 256   # tune examples in each check (spread over the tune split)
    cross_from_self: bool = True
    attention_dropout: float = 0.0  # on the decoder's attention probabilities
    copy: bool = True          # pointer head over the source pieces
    batch_by: str = "examples"  # examples (shuffled one by one) | sources (a source's examples in one batch,
    #                             sharing its cross-attention keys and values)
    output_vocabulary: str = "all"  # the softmax's pieces: all (the pruned vocabulary) | targets (the training
    #                                 targets' pieces; the pointer copies the rest)
    bf16: bool | str = True    # bfloat16 autocast for training and decoding: true | false | auto
    seed: int = 0
    group: str = "xqg.warm"    # the params.yaml group these came from, for error messages

    def __post_init__(self):
        check_positive(self, self.group, ("decoder_layers", "max_source_length", "max_target_length", "epochs",
                                          "batch_size"))
        check_int(self.max_steps, f"{self.group}.max_steps", minimum=0, note="0 = no cap")
        check_int(self.check_every, f"{self.group}.check_every", minimum=0, note="0 = no tune checks")
        check_int(self.patience, f"{self.group}.patience", minimum=0, note="0 = never stop early")
        check_int(self.tune_examples, f"{self.group}.tune_examples")
        self.lr = float(self.lr)
        if not isinstance(self.attention_dropout, (int, float)) or not 0 <= self.attention_dropout < 1:
            raise ConfigError(f"{self.group}.attention_dropout: expected a rate in [0, 1), "
                              f"got {self.attention_dropout!r}")
        if self.batch_by not in ("examples", "sources"):
            raise ConfigError(f"{self.group}.batch_by: expected examples or sources, got {self.batch_by!r}")
        if self.output_vocabulary not in ("all", "targets"):
            raise ConfigError(f"{self.group}.output_vocabulary: expected all or targets, got {self.output_vocabulary!r}")
        if self.output_vocabulary == "targets" and not self.copy:
            raise ConfigError(f"{self.group}.output_vocabulary: targets needs the pointer head ({self.group}.copy: true) "
                              "to produce the pieces outside the training targets")
        if self.bf16 not in (True, False, "auto"):
            raise ConfigError(f"{self.group}.bf16: expected true, false or auto, got {self.bf16!r}")

    @classmethod
    def from_params(cls, params: dict, seed: int, group: str) -> "WarmSettings":
        """Settings from a params.yaml group (``xqg.warm``, ``translate.warm``); unknown keys are errors."""
        return from_params(cls, params, group, seed=seed, group=group)


def pruned_vocabulary(tokenizer, texts: Sequence[str]) -> list[int]:
    """Full-vocabulary ids of every piece in ``texts`` plus the special tokens, sorted."""
    keep = set(tokenizer.all_special_ids)
    for start in range(0, len(texts), 1000):
        for ids in tokenizer(list(texts[start : start + 1000]), add_special_tokens=False, verbose=False)["input_ids"]:
            keep.update(ids)
    return sorted(keep)


def outputs_first(tokenizer, targets: Sequence[str], texts: Sequence[str]) -> tuple[list[int], int]:
    """The pruned vocabulary of ``targets`` and ``texts`` ordered so that the pieces of the targets (and the
    special tokens) come first, and their number: a softmax over the first ones is a softmax over the
    pieces the training targets hold."""
    first = pruned_vocabulary(tokenizer, targets)
    seen = set(first)
    return first + [t for t in pruned_vocabulary(tokenizer, texts) if t not in seen], len(first)


def build_decoder(encoder, kept: list[int], languages: Sequence[str], n_layers: int, cross_from_self: bool = True,
                  param: str = "xqg.warm.decoder_layers", attention_dropout: float = 0.0):
    """A BertLMHeadModel over the pruned vocabulary, initialised from ``encoder``'s top layers.

    Dropout on the attention probabilities is ``attention_dropout`` (the encoder's is 0.1; its masks,
    batch x heads x target x source elements, cost a sixth of a training step on 2 cores); the hidden
    states' dropout keeps the encoder's rate, drawn by ``ByteDropout``."""
    from transformers import BertConfig, BertLMHeadModel  # transformers: heavy, loaded on use

    cfg = encoder.config
    if n_layers > cfg.num_hidden_layers:
        raise ConfigError(f"{param}: {n_layers} > the encoder's {cfg.num_hidden_layers} layers")
    vocab = len(kept) + len(languages)
    dec_cfg = BertConfig(**{**cfg.to_dict(), "vocab_size": vocab, "num_hidden_layers": n_layers, "is_decoder": True,
                            "add_cross_attention": True, "pad_token_id": kept.index(cfg.pad_token_id),
                            "attention_probs_dropout_prob": attention_dropout, "architectures": None})
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
    return use_byte_dropout(decoder)


class CopyHead(torch.nn.Module):
    """Pointer head: attention of the decoder state over the source states, and the gate between
    generating from the vocabulary and copying a source piece."""

    def __init__(self, hidden: int):
        super().__init__()
        self.query = torch.nn.Linear(hidden, hidden)
        self.key = torch.nn.Linear(hidden, hidden)
        self.gate = torch.nn.Linear(2 * hidden, 1)

    def forward(self, dec: torch.Tensor, keys: torch.Tensor, copyable: torch.Tensor):
        """dec [R, T, H], keys [R, L, H] (``key`` of the source states), copyable [R, L]
        -> attention [R, T, L], gate [R, T, 1]."""
        scores = self.query(dec) @ keys.transpose(1, 2) / math.sqrt(keys.shape[-1])
        scores = scores.float().masked_fill(~copyable[:, None, :], -1e4)
        attn = scores.softmax(-1)
        context = attn.to(keys.dtype) @ keys
        gate = torch.sigmoid(self.gate(torch.cat([dec, context], -1)).float())
        return attn, gate


def block_repeated_bigrams(probs: torch.Tensor, history: torch.Tensor) -> None:
    """Zero, in place, the probability of every piece that followed a row's last piece earlier in the row
    (emitting it would repeat a bigram). probs [R, V]; history [R, t] each row's pieces so far, t >= 1.

    A product scatter: each earlier position j multiplies ``probs[r, history[r, j + 1]]`` by 0 where
    ``history[r, j]`` is the last piece and by 1 elsewhere, so repeated indices need no dummy column and
    kept probabilities stay bit-identical."""
    repeat = history[:, :-1] == history[:, -1:]
    probs.scatter_reduce_(1, history[:, 1:], (~repeat).to(probs.dtype), "prod")


def next_pieces(probs: torch.Tensor, settings: SamplingSettings) -> torch.Tensor:
    """One piece per row of ``probs``: sampled from the top ``settings.top_k`` (0: from all) or, without
    ``settings.do_sample``, the most probable."""
    if not settings.do_sample:
        return probs.argmax(-1)
    if settings.top_k:
        top, idx = probs.topk(min(settings.top_k, probs.shape[-1]), -1)
        return idx.gather(1, torch.multinomial(top, 1))[:, 0]
    return torch.multinomial(probs, 1)[:, 0]


class WarmGenerator:
    """Frozen encoder + pruned-vocabulary decoder (+ pointer head); ``generate`` takes passages or states."""

    def __init__(self, encoder, tokenizer, decoder, kept: list[int], languages: list[str], passage_prefix: str,
                 settings: WarmSettings, copy_head: CopyHead | None = None, outputs: int | None = None):
        """``outputs``: the softmax covers the first ``outputs`` pruned ids (``outputs_first``; default: all of
        them and the language tokens)."""
        self.encoder, self.tokenizer, self.decoder = encoder.eval(), tokenizer, decoder
        self.kept, self.languages, self.prefix, self.settings = kept, list(languages), passage_prefix, settings
        for p in self.encoder.parameters():
            p.requires_grad_(False)
        if settings.copy and copy_head is None:
            copy_head = CopyHead(decoder.config.hidden_size)
        self.copy_head = copy_head if settings.copy else None
        self._index = {full: i for i, full in enumerate(kept)}
        self.outputs = self.vocab_size if outputs is None else outputs
        self.bos, self.eos = self._index[tokenizer.cls_token_id], self._index[tokenizer.sep_token_id]
        self.pad, self.unk = self._index[tokenizer.pad_token_id], self._index[tokenizer.unk_token_id]
        self.copy_vocabulary: set[int] | None = None
        prefix_ids = tokenizer(passage_prefix, add_special_tokens=False)["input_ids"] if passage_prefix else []
        self._prefix_ids, self._prefix_len = set(prefix_ids), len(prefix_ids)
        self._pick_attention()
        self._bind_rows()

    def _bind_rows(self) -> None:
        """The rows of the tied word embedding that training reads, as parameters of their own sharing its
        storage: the softmax's pieces (``outputs_first``) and the language tokens. Teacher forcing feeds
        target pieces, all among them, so the other rows (passage pieces the pointer alone emits) would get
        a zero gradient and only weight decay; holding them out spares each step two gradients of the whole
        table (the lookup's and the output layer's, 34 MB each for the query generator) and their updates.
        With a softmax over every piece the table is trained whole."""
        weight = self.decoder.bert.embeddings.word_embeddings.weight
        if self.outputs == self.vocab_size:
            self._rows = None
            weight.requires_grad_(True)
            return
        weight.requires_grad_(False)
        table = weight.detach()
        self._rows = (torch.nn.Parameter(table[: self.outputs]), torch.nn.Parameter(table[len(self.kept):]))

    def _pick_attention(self) -> None:
        """Eager attention on the CPU: for one-token decoding steps over a cache, torch's bf16 SDPA kernel
        is about 4x slower than plain matmul + softmax here (generation 20-25% faster end to end,
        training 7%); SDPA on a GPU."""
        self.decoder.set_attn_implementation("eager" if self.device.type == "cpu" else "sdpa")

    @property
    def device(self) -> torch.device:
        return device_of(self.decoder)

    def to(self, device) -> "WarmGenerator":
        """Moved to ``device``; the trained rows (``_bind_rows``) are bound afresh only when the table moved (an
        optimizer holding them keeps training the table's own storage)."""
        before = self.device
        for module in (self.encoder, self.decoder, self.copy_head):
            if module is not None:
                module.to(device)
        if self.device != before:
            self._pick_attention()
            self._bind_rows()
        return self

    def shared_encoder(self) -> "WarmGenerator":
        """Itself: its encoder is frozen, so each source's states (``encode_passages``) are computed once
        and shared by every target language."""
        return self

    @property
    def vocab_size(self) -> int:
        return len(self.kept) + len(self.languages)

    def trainable(self) -> list[torch.nn.Parameter]:
        modules = [self.decoder] + ([self.copy_head] if self.copy_head is not None else [])
        return [p for m in modules for p in m.parameters() if p.requires_grad] + list(self._rows or ())

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        """Word embeddings of ``ids`` from the trained rows (``_bind_rows``), other pieces' from the table."""
        table = self.decoder.bert.embeddings.word_embeddings
        if self._rows is None:
            return table(ids)
        head, languages = self._rows
        first_language = len(self.kept)
        rows = torch.nn.functional.embedding
        out = torch.where((ids < self.outputs)[:, None], rows(ids.clamp(max=self.outputs - 1), head),
                          rows(ids.clamp(min=first_language) - first_language, languages))
        other = (ids >= self.outputs) & (ids < first_language)
        return torch.where(other[:, None], table.weight[ids.clamp(max=first_language - 1)], out) if other.any() else out

    def train(self, mode: bool = True) -> None:
        self.decoder.train(mode)
        if self.copy_head is not None:
            self.copy_head.train(mode)

    def logits(self, seq: torch.Tensor) -> torch.Tensor:
        """Output-layer logits [..., outputs] of decoder states ``seq`` [..., hidden]: the tied output layer,
        over the first ``outputs`` rows of its weight when the softmax covers the training targets only."""
        head = self.decoder.cls.predictions
        if self.outputs == self.vocab_size:
            return head(seq)
        return torch.nn.functional.linear(head.transform(seq), self._rows[0], head.decoder.bias[: self.outputs])

    def lang_id(self, lang: str) -> int:
        if lang not in self.languages:
            raise ConfigError(f"languages: the generator was trained without {lang!r} (it knows {self.languages})")
        return len(self.kept) + self.languages.index(lang)

    def encode_targets(self, texts: Sequence[str], langs: Sequence[str]) -> list[list[int]]:
        out = []
        for start in range(0, len(texts), TOKENIZE_BLOCK):
            ids = self.tokenizer(list(texts[start : start + TOKENIZE_BLOCK]), add_special_tokens=False,
                                 truncation=True, max_length=self.settings.max_target_length)["input_ids"]
            out.extend([self.bos, self.lang_id(l)] + [self._index.get(t, self.unk) for t in row] + [self.eos]
                       for row, l in zip(ids, langs[start : start + TOKENIZE_BLOCK]))
        return out

    def _source_ids(self, texts: Sequence[str]) -> list[list[int]]:
        out = []
        for start in range(0, len(texts), TOKENIZE_BLOCK):
            block = [self.prefix + t for t in texts[start : start + TOKENIZE_BLOCK]]
            out.extend(self.tokenizer(block, truncation=True, max_length=self.settings.max_source_length,
                                      verbose=False)["input_ids"])
        return out

    def source_lengths(self, passages: Sequence[dict], lang: str | None = None) -> list[int]:
        """Source pieces of each passage (the passage prefix included; the same in every target language)."""
        return [len(x) for x in self._source_ids([p["text"] for p in passages])]

    def copy_sources(self, texts: Sequence[str]) -> list[list[int]]:
        """Per source position (aligned with ``encode_passages``), the pruned id a pointer may copy, or -1
        (special tokens, the passage prefix, pieces outside the output vocabulary)."""
        special = set(self.tokenizer.all_special_ids)
        rows = []
        for ids in self._source_ids(texts):
            row = [self._index.get(t, -1) if t not in special else -1 for t in ids]
            for j in range(1, min(1 + self._prefix_len, len(row))):
                if ids[j] in self._prefix_ids:
                    row[j] = -1
            rows.append(row)
        return rows

    def _autocast(self):
        return bf16_autocast(self.device, self.settings.bf16)

    def encode_passages(self, texts: Sequence[str], batch_size: int = 128, max_tokens: int = 2048):
        """Encoder states (list of [len, hidden] float16 tensors), computed once per passage."""
        out = [None] * len(texts)
        for i, state in self.iter_states(texts, batch_size, max_tokens):
            out[i] = state
        return out

    def iter_states(self, texts: Sequence[str], batch_size: int = 128, max_tokens: int = 2048,
                    block: int = SOURCE_BLOCK) -> Iterator[tuple[int, torch.Tensor]]:
        """(index, states) of each text as its length-sorted batch finishes: ``block`` texts are tokenized and
        sorted at a time, so memory holds one block's pieces, never the corpus's. The caller runs outside
        inference mode and autocast (a bf16 autocast region would reject its float16 work)."""
        for start in range(0, len(texts), block):
            ids = self._source_ids(texts[start : start + block])
            for idx in length_batches([len(x) for x in ids], batch_size, max_tokens):
                with torch.inference_mode(), self._autocast():
                    batch = self.tokenizer.pad([{"input_ids": ids[i]} for i in idx], return_tensors="pt").to(self.device)
                    out = self.encoder(input_ids=batch["input_ids"],
                                       attention_mask=batch["attention_mask"]).last_hidden_state
                    out = out.to(torch.float16).cpu()  # states live on the CPU (saved, shared); batches move
                    rows = [out[row, : len(ids[i])].clone() for row, i in enumerate(idx)]
                yield from ((start + i, state) for i, state in zip(idx, rows))

    @staticmethod
    def pad_states(states: Sequence[torch.Tensor], sources: Sequence[Sequence[int]] | None = None,
                   device: torch.device | None = None, dtype: torch.dtype | None = None):
        """Padded states [B, L, H] (float32, or ``dtype``), attention mask [B, L] and copy ids [B, L]
        (-1 = not copyable), on ``device`` (default: the CPU)."""
        longest = max(s.shape[0] for s in states)
        hidden = torch.zeros(len(states), longest, states[0].shape[1], dtype=dtype or torch.float32)
        mask = torch.zeros(len(states), longest, dtype=torch.long)
        src = torch.full((len(states), longest), -1, dtype=torch.long)
        for i, s in enumerate(states):
            hidden[i, : s.shape[0]] = s
            mask[i, : s.shape[0]] = 1
            if sources is not None:
                src[i, : len(sources[i])] = torch.tensor(sources[i][: s.shape[0]], dtype=torch.long)
        if device is not None:
            hidden, mask, src = hidden.to(device), mask.to(device), src.to(device)
        return hidden, mask, src

    def loss(self, states: Sequence[torch.Tensor], targets: list[list[int]],
             sources: Sequence[Sequence[int]] | None = None, label_smoothing: float | None = None,
             share_sources: bool | None = None) -> torch.Tensor:
        """Teacher-forced loss per predicted piece, label-smoothed by ``label_smoothing`` (default: the
        settings'). The output layer and the loss run on the predicted positions alone (not the padding),
        the loss in one pass (``xaug.pointer_loss``). Rows with the same states (the same tensor: several
        targets of one source) share their cross-attention keys and values and pointer keys, computed once
        (``share_sources``, by default with ``batch_by: sources``, whose batches hold few sources; the same
        loss up to rounding). The decoder runs over the real target tokens alone (``xaug.packed_decoder``)."""
        low = torch.bfloat16 if use_bf16(self.settings.bf16, self.device) else None
        if share_sources is None:
            share_sources = self.settings.batch_by == "sources"
        first: dict[int, int] = {}  # id of a row's states -> the distinct source's number
        source_of = [first.setdefault(id(s), len(first)) if share_sources else i for i, s in enumerate(states)]
        at = [source_of.index(u) for u in range(max(source_of) + 1)]  # each distinct source's first row
        hidden, mask, src = self.pad_states([states[i] for i in at], None if sources is None else
                                            [sources[i] for i in at], self.device, dtype=low)  # [U, L, ...]
        longest = max(len(t) for t in targets)
        inp = torch.full((len(targets), longest - 1), self.pad)
        labels = torch.full((len(targets), longest - 1), -1)
        for i, t in enumerate(targets):
            inp[i, : len(t) - 1] = torch.tensor(t[:-1])
            labels[i, 1 : len(t) - 1] = torch.tensor(t[2:])  # the language token is given, not predicted
        rows, cols = (labels >= 0).nonzero(as_tuple=True)
        gold = labels[rows, cols].to(self.device)
        packing = Packing([len(t) - 1 for t in targets], source_of, self.device)
        predicted = packing.index(rows.to(self.device), cols.to(self.device))  # packed index of each gold piece
        gate = copy_prob = None
        with self._autocast():
            packed = teacher_forced_states(self.decoder.bert, inp.to(self.device), packing, hidden, mask, self.embed)
            logits = self.logits(packed[predicted])  # [predicted positions, outputs]
            if self.copy_head is not None:  # attention over each source, its rows' tokens side by side
                attn, gates = self.copy_head(packing.pad_by_source(packed), self.copy_head.key(hidden), src >= 0)
                at_source = packing.by_source[predicted]  # each gold piece's place in that layout
                gate = gates.flatten()[at_source]
                attn = attn.flatten(0, 1)[at_source]
                copy_prob = (attn * (src[at_source // packing.slots] == gold[:, None])).sum(-1)
        eps = self.settings.label_smoothing if label_smoothing is None else label_smoothing
        losses = pointer_smoothed_nll(logits, gold, gate, copy_prob, eps)
        return losses.sum() / max(1, len(gold))

    def _step(self, ids, cache, hidden, mask, keys, src, bias):
        """Next-token probabilities [R, V] for the rows of ``ids`` [R, t] continuing ``cache``."""
        r, l = mask.shape
        with self._autocast():
            # cross-attention keys/values come from the cache; the states' shape only sizes the mask
            enc = hidden if cache is None else hidden.new_zeros(1, 1, 1).expand(r, l, hidden.shape[-1])
            out = self.decoder.bert(input_ids=ids, encoder_hidden_states=enc, encoder_attention_mask=mask,
                                    past_key_values=cache, use_cache=True)
            seq = out.last_hidden_state[:, -1:]
            logits = self.logits(seq)[:, 0].float()
            if self.copy_head is not None:
                attn, gate = self.copy_head(seq, keys, src >= 0)
        if bias is not None:
            logits = logits + bias[:, : logits.shape[-1]]
        probs = logits.softmax(-1)
        if probs.shape[-1] < self.vocab_size:  # pieces outside the softmax: the pointer's alone
            probs = torch.nn.functional.pad(probs, (0, self.vocab_size - probs.shape[-1]))
        if self.copy_head is not None:
            g = gate[:, 0]
            probs = g * probs
            probs.scatter_add_(1, src.clamp(min=0), (1 - g) * attn[:, 0] * (src >= 0))
        return probs, out.past_key_values

    def generate_from_states(self, states: Sequence[torch.Tensor], lang: str, settings: SamplingSettings,
                             n: int | None = None, sources: list[list[int]] | None = None,
                             bias_pieces: list[list[int]] | None = None) -> tuple[list[list[str]], int]:
        """``n`` texts per passage and the number of generated tokens (see ``decode_ids``)."""
        n = n or settings.n_queries
        ids = self.decode_ids(states, lang, settings, n, sources, bias_pieces)
        texts = [self.tokenizer.decode([self.kept[t] for t in row if t < len(self.kept)],
                                       skip_special_tokens=True).strip() for row in ids]
        return [texts[i * n : (i + 1) * n] for i in range(len(states))], sum(len(t) for t in ids)

    @torch.inference_mode()
    def start_decoding(self, states: Sequence[torch.Tensor], lang: str, settings: SamplingSettings, n: int,
                       sources: list[list[int]] | None = None, bias_pieces: list[list[int]] | None = None):
        """The first decoding step of ``decode_ids`` (and of its reference loop, ``xaug.warm_reference``): the
        two start tokens once per passage (this fills the cross-attention cache), then ``n`` rows each.
        Returns the padded encoder states, the next-piece probabilities and the cache of the ``b * n`` rows,
        the row indices (passage-major) and the per-row mask, copy keys, copy sources and copy bias."""
        self.train(False)
        if self.copy_head is not None and sources is None:
            raise ValueError("the pointer head needs the source ids (copy_sources)")
        device = self.device
        hidden, mask, src = self.pad_states(states, sources, device)
        b = len(states)
        bias = SourceBias(bias_pieces, self.vocab_size, 1, settings.copy_bias).bias.to(device) \
            if settings.copy_bias and bias_pieces is not None else None
        keys = self.copy_head.key(hidden) if self.copy_head is not None else None
        start = torch.tensor([[self.bos, self.lang_id(lang)]] * b, device=device)
        probs, cache = self._step(start, None, hidden, mask, keys, src, bias)
        rows = torch.arange(b, device=device).repeat_interleave(n)
        cache.batch_repeat_interleave(n)
        probs = probs.repeat_interleave(n, 0)
        alive = torch.arange(b * n, device=device)
        per_row = tuple(None if t is None else t[rows] for t in (mask, keys, src, bias))
        return hidden, probs, cache, alive, per_row

    def continue_decoding(self, keep: torch.Tensor, alive: torch.Tensor, tok: torch.Tensor, cache, hidden, per_row):
        """One more decoding step for the rows ``keep`` (indices into ``alive``, the rows still decoding, whose
        last pieces are ``tok``): finished rows leave the batch (cache and per-row tensors), the others step."""
        if len(keep) < len(alive):
            cache.batch_select_indices(keep)
            alive, tok = alive[keep], tok[keep]
            per_row = tuple(None if t is None else t[keep] for t in per_row)
        probs, cache = self._step(tok[:, None], cache, hidden, *per_row)
        return probs, cache, alive, per_row

    @torch.inference_mode()
    def decode_ids(self, states: Sequence[torch.Tensor], lang: str, settings: SamplingSettings, n: int,
                   sources: list[list[int]] | None = None,
                   bias_pieces: list[list[int]] | None = None) -> list[list[int]]:
        """``n`` pruned-id sequences per passage (rows passage-major, without start or end tokens).

        ``sources``: copy ids from ``copy_sources`` (needed by the pointer head); ``bias_pieces``: pruned
        ids that get ``settings.copy_bias`` added to their logits.

        The loop runs on tensors: generated ids in one [rows, max_new_tokens] buffer on the device, bigram
        blocking a scatter (``block_repeated_bigrams``), no per-row Python. Finished rows leave the batch
        (less work per step, and ``torch.multinomial`` draws over the alive rows exactly as the reference loop
        of ``xaug.warm_reference`` does, so a seed gives the same samples), which costs one host sync per step
        (the ``nonzero`` of the alive rows); the ids come to the host once, at the end."""
        hidden, probs, cache, alive, per_row = self.start_decoding(states, lang, settings, n, sources, bias_pieces)
        device, b = self.device, len(states)
        steps = settings.max_new_tokens
        # every row's generated ids (rows passage-major); a row ends at its first end token. The rows still
        # alive at a step have all generated exactly ``step`` pieces (a row leaves once it ends).
        out = torch.full((b * n, steps), self.eos, dtype=torch.long, device=device)
        for step in range(steps):
            if settings.no_repeat_bigrams and step >= 2:
                block_repeated_bigrams(probs, out[alive, :step])
            tok = next_pieces(probs, settings)  # sampled over the alive rows only (the reference loop's stream)
            out[alive, step] = tok
            if step == steps - 1:
                break
            keep = (tok != self.eos).nonzero()[:, 0]  # the loop's one host sync: who leaves, or all done
            if len(keep) == 0:
                break
            probs, cache, alive, per_row = self.continue_decoding(keep, alive, tok, cache, hidden, per_row)
        lengths = (out != self.eos).cumprod(1).sum(1)
        return [row[:k] for row, k in zip(out.tolist(), lengths.tolist())]

    def source_pieces(self, texts: Sequence[str]) -> list[list[int]]:
        """Pruned ids of each text's pieces (only those in the copy-bias vocabulary, once one is set)."""
        allowed = self.copy_vocabulary
        return [[t for t in row if t >= 0 and (allowed is None or t in allowed)] for row in self.copy_sources(texts)]

    def set_copy_vocabulary(self, texts: Sequence[str], max_df: float) -> None:
        self.copy_vocabulary = None
        self.copy_vocabulary = rare_pieces(self.source_pieces(texts), max_df)

    def generate(self, passages: Sequence[dict], lang: str, settings: SamplingSettings, n: int | None = None):
        texts = [p["text"] for p in passages]
        states = [p["states"] for p in passages] if passages and "states" in passages[0] else self.encode_passages(texts)
        sources = self.copy_sources(texts)
        bias_pieces = self.source_pieces(texts) if settings.copy_bias else None
        return self.generate_from_states(states, lang, settings, n, sources, bias_pieces)

    def save(self, path) -> None:
        path = Path(path)
        self.decoder.save_pretrained(path / "decoder")
        if self.copy_head is not None:
            save_file({k: v.cpu() for k, v in self.copy_head.state_dict().items()}, str(path / "copy_head.safetensors"))
        split = {"outputs": self.outputs} if self.outputs < self.vocab_size else {}  # a softmax over part of kept
        (path / "warm.json").write_text(json.dumps({"kept": self.kept, "languages": self.languages, **split,
                                                    "passage_prefix": self.prefix,
                                                    "settings": asdict(self.settings)}) + "\n")

    @classmethod
    def load(cls, path, encoder, tokenizer) -> "WarmGenerator":
        from transformers import BertLMHeadModel  # transformers: heavy, loaded on use

        path = Path(path)
        if not (path / "warm.json").is_file():
            raise ConfigError(f"{path}: not a warm generator folder (no warm.json)")
        meta = json.loads((path / "warm.json").read_text())
        decoder = BertLMHeadModel.from_pretrained(path / "decoder").eval()
        settings = WarmSettings(**meta["settings"])
        head = None
        if settings.copy:
            head = CopyHead(decoder.config.hidden_size)
            head.load_state_dict(load_file(str(path / "copy_head.safetensors")))
        return cls(encoder, tokenizer, decoder, meta["kept"], meta["languages"], meta["passage_prefix"], settings, head,
                   meta.get("outputs"))


def load_warm(path, meta: dict) -> WarmGenerator:
    """The warm generator saved in ``path`` over the encoder its kind file names (``meta["encoder"]``:
    a backbone, or ``./encoder`` inside the folder)."""
    spec = meta["encoder"]
    encoder, tokenizer, _ = load_backbone(str(Path(path) / spec) if spec.startswith("./") else spec)
    return WarmGenerator.load(path, encoder, tokenizer)
