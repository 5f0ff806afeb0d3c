"""The teacher-forced pass of a BERT decoder (``BertLMHeadModel.bert`` with cross-attention) over its real
target tokens alone.

A training batch of the warm query generator pads its targets to the longest one: the padded batch holds 1.66
times the real tokens (the translator's: 1.23), and the decoder's per-token work (every linear layer, layer
norm, activation and dropout; nine tenths of its arithmetic) is spent on the padding too. Here the tokens are
packed into one [N, hidden] matrix for that work, and laid out as [batch, length] only for attention (the
self-attention's causal scores and the cross-attention over the sources), with the layers' own modules and
transformers' eager attention function. A real token attends only to earlier tokens of its row, all real, so
its value is the padded pass's: tests check it against ``BertModel`` in training mode, dropout included (each
hidden dropout draws its mask for the padded shape, as the padded pass does, and reads the real tokens'
part), up to the rounding of matrix products over fewer rows.
"""
from __future__ import annotations

from typing import Sequence

import torch

from .dropout import ByteDropout


class Packing:
    """Where the real tokens sit in two layouts: by row, [batch, length] (rows of ``lengths`` tokens, padding
    after), for self-attention; and by source, [sources, slots], each source's rows one after another (``source``:
    each row's source number, 0..U-1; default: one source a row), for attention over the sources, so rows that
    share a source share its keys and values without repeating them."""

    def __init__(self, lengths: Sequence[int], source: Sequence[int] | None = None,
                 device: torch.device | str = "cpu"):
        lengths = list(lengths)
        source = list(range(len(lengths))) if source is None else list(source)
        self.batch, self.length = len(lengths), max(lengths)
        lengths_t = torch.tensor(lengths)
        real = torch.arange(self.length)[None, :] < lengths_t[:, None]
        flat = real.flatten().nonzero()[:, 0]  # [N] positions in the flattened [batch, length] layout
        offsets = torch.cumsum(lengths_t, 0) - lengths_t  # each row's first packed index
        start, used = [], {}
        for row, u in enumerate(source):  # each row's first slot in its source's run
            start.append(used.get(u, 0))
            used[u] = start[-1] + lengths[row]
        self.sources, self.slots = len(used), max(used.values())
        rows, positions = flat // self.length, flat % self.length
        by_source = torch.tensor(source)[rows] * self.slots + torch.tensor(start)[rows] + positions
        self.flat, self.positions, self.by_source = flat.to(device), positions.to(device), by_source.to(device)
        self.offsets = offsets.to(device)

    @staticmethod
    def _scatter(x: torch.Tensor, at: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
        out = x.new_zeros(shape[0] * shape[1], *x.shape[1:]).index_copy(0, at, x)
        return out.view(*shape, *x.shape[1:])

    def pad(self, x: torch.Tensor) -> torch.Tensor:
        """[N, ...] -> [batch, length, ...], zeros at the padding."""
        return self._scatter(x, self.flat, (self.batch, self.length))

    def pack(self, x: torch.Tensor) -> torch.Tensor:
        """[batch, length, ...] -> [N, ...]."""
        return x.reshape(self.batch * self.length, *x.shape[2:]).index_select(0, self.flat)

    def pad_by_source(self, x: torch.Tensor) -> torch.Tensor:
        """[N, ...] -> [sources, slots, ...], zeros at the padding."""
        return self._scatter(x, self.by_source, (self.sources, self.slots))

    def pack_by_source(self, x: torch.Tensor) -> torch.Tensor:
        """[sources, slots, ...] -> [N, ...]."""
        return x.reshape(self.sources * self.slots, *x.shape[2:]).index_select(0, self.by_source)

    def index(self, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        """Packed indices of the (row, position) pairs ``rows``, ``cols``."""
        return self.offsets[rows] + cols


def _dropout(module, x: torch.Tensor, packing: Packing) -> torch.Tensor:
    """``module`` (a ``ByteDropout``) on packed ``x``: the mask of the padded shape, at the real tokens."""
    if not isinstance(module, ByteDropout):
        raise TypeError(f"packed decoding needs ByteDropout (xaug.dropout.use_byte_dropout), not {type(module)}")
    if not module.training or module.threshold == 0:
        return x
    keep = packing.pack(module.keep_mask((packing.batch, packing.length, x.shape[-1]), x.device))
    return module.apply_mask(x, keep)


def _heads(x: torch.Tensor, attention) -> torch.Tensor:
    """[batch, length, hidden] -> [batch, heads, length, head size]."""
    return x.view(*x.shape[:2], -1, attention.attention_head_size).transpose(1, 2)


def _attend(attention, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, mask: torch.Tensor,
            pack) -> torch.Tensor:
    """transformers' eager attention of padded heads; the context at the real tokens, [N, hidden] (``pack``:
    ``Packing.pack`` or ``pack_by_source``)."""
    from transformers.models.bert.modeling_bert import eager_attention_forward  # transformers: loaded on use

    out, _ = eager_attention_forward(attention, query, key, value, mask,
                                     dropout=attention.dropout.p if attention.training else 0.0,
                                     scaling=attention.scaling)
    return pack(out.reshape(query.shape[0], query.shape[2], -1))


def teacher_forced_states(bert, ids: torch.Tensor, packing: Packing, hidden: torch.Tensor,
                          source_mask: torch.Tensor, embed=None) -> torch.Tensor:
    """Last-layer states [N, hidden] of the real tokens of ``ids`` [batch, length] (rows as ``packing``),
    attending to the states ``hidden`` [U, L, hidden] of the distinct sources (mask [U, L], 1: a real source
    token), each source's keys and values computed once for all its rows. ``embed``: the word embedding of
    ids [N] (default: the model's table)."""
    emb = bert.embeddings
    tokens = packing.pack(ids[:, :, None])[:, 0]
    x = (embed or emb.word_embeddings)(tokens) + emb.token_type_embeddings(torch.zeros_like(tokens))
    x = emb.LayerNorm(x + emb.position_embeddings(packing.positions))
    x = _dropout(emb.dropout, x, packing)
    # additive masks as transformers builds them in eager mode (float32, the dtype of the embeddings)
    low = torch.finfo(torch.float32).min
    causal = torch.full((packing.length, packing.length), low, device=ids.device).triu(1)[None, None]
    sources = torch.zeros(source_mask.shape, device=ids.device).masked_fill(source_mask == 0, low)[:, None, None]
    for layer in bert.encoder.layer:
        attention, out = layer.attention.self, layer.attention.output
        q, k, v = (_heads(packing.pad(proj(x)), attention) for proj in (attention.query, attention.key, attention.value))
        context = _attend(attention, q, k, v, causal, packing.pack)
        x = out.LayerNorm(_dropout(out.dropout, out.dense(context), packing) + x)
        attention, out = layer.crossattention.self, layer.crossattention.output
        q = _heads(packing.pad_by_source(attention.query(x)), attention)
        k, v = _heads(attention.key(hidden), attention), _heads(attention.value(hidden), attention)
        context = _attend(attention, q, k, v, sources, packing.pack_by_source)
        x = out.LayerNorm(_dropout(out.dropout, out.dense(context), packing) + x)
        out = layer.output
        x = out.LayerNorm(_dropout(out.dropout, out.dense(layer.intermediate(x)), packing) + x)
    return x
