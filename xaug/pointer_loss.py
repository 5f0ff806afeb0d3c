"""The training loss of a pointer-generator (See et al., 2017) over a large output vocabulary, in one pass.

Per predicted position: the probability of the gold piece is a mixture ``p = g q_y + (1 - g) c`` of the
vocabulary softmax ``q = softmax(z)`` (gate ``g``) and the copy attention on the source positions holding
the gold piece (``c``); the loss is label-smoothed,

    loss = -(1 - eps) log p - eps mean_j log q_j.

Written with autograd's ops this makes several passes over the [positions x vocabulary] logits in each
direction (log-softmax, a float copy, the mean, the gather and their backwards: a fifth of a training step
of the warm generator on 2 cores). Its gradient has a closed form,

    dloss/dz = (w + eps) q - w onehot(y) - eps / V,   w = (1 - eps) g q_y / p,

so the forward keeps only the log-normaliser and the backward rebuilds ``q`` once. Both run over blocks of
``ROWS`` positions, so each block's float32 copy stays in cache through its passes (half the time of
whole-matrix passes at 1,223 x 21,524 on 2 cores; the same values bit for bit). The value equals the
autograd formula (``tests/test_training_ops.py`` checks the gradients against it in double precision).

A gold piece outside the logits (id >= V: a generator whose softmax covers only its training targets'
pieces) has ``q_y = 0``: only the pointer can produce it.
"""
from __future__ import annotations

import torch


def _wide_dtype(dtype: torch.dtype) -> torch.dtype:
    """float32 at least (bf16 / fp16 widened; float64 kept)."""
    return torch.promote_types(dtype, torch.float32)


def _wide(x: torch.Tensor) -> torch.Tensor:
    """``x`` in :func:`_wide_dtype`."""
    return x.to(_wide_dtype(x.dtype))


ROWS = 64  # positions per block: a block's float32 logits stay in cache through its passes


class _PointerSmoothedNLL(torch.autograd.Function):
    @staticmethod
    def forward(ctx, logits, gold, gate, copy_prob, eps: float):
        n, vocab = logits.shape
        inside = gold < vocab
        gold = torch.where(inside, gold, 0)
        lse, mean, z_gold = (torch.empty(n, dtype=_wide_dtype(logits.dtype), device=logits.device) for _ in range(3))
        for a in range(0, n, ROWS):
            z = _wide(logits[a : a + ROWS])
            lse[a : a + ROWS] = torch.logsumexp(z, -1)
            mean[a : a + ROWS] = z.mean(-1)
            z_gold[a : a + ROWS] = z.gather(1, gold[a : a + ROWS, None])[:, 0]
        q_gold = torch.where(inside, (z_gold - lse).exp(), 0.0)
        p = gate * q_gold + (1 - gate) * copy_prob
        safe = p.clamp(min=1e-9)
        loss = -(1 - eps) * safe.log() - eps * (mean - lse)
        ctx.save_for_backward(logits, gold, gate, copy_prob, lse, q_gold, p)
        ctx.eps = eps
        return loss

    @staticmethod
    def backward(ctx, grad):
        logits, gold, gate, copy_prob, lse, q_gold, p = ctx.saved_tensors
        eps, vocab = ctx.eps, logits.shape[-1]
        live = p > 1e-9  # where the clamp held p at its floor, -log p has no gradient
        inv = torch.where(live, 1 / p.clamp(min=1e-9), torch.zeros_like(p))
        w = (1 - eps) * gate * q_gold * inv
        scale, shift, at_gold = grad * (w + eps), grad * eps / vocab, -(grad * w)
        dz = torch.empty_like(logits)
        for a in range(0, logits.shape[0], ROWS):
            rows = slice(a, a + ROWS)
            block = torch.exp(_wide(logits[rows]) - lse[rows, None])  # q, rebuilt once
            block.mul_(scale[rows, None]).sub_(shift[rows, None])
            block.scatter_add_(1, gold[rows, None], at_gold[rows, None])  # w = 0 where the gold piece is outside
            dz[rows] = block
        d_gate = -grad * (1 - eps) * (q_gold - copy_prob) * inv
        d_copy = -grad * (1 - eps) * (1 - gate) * inv
        return dz, None, d_gate, d_copy, None


def pointer_smoothed_nll(logits: torch.Tensor, gold: torch.Tensor, gate: torch.Tensor | None = None,
                         copy_prob: torch.Tensor | None = None, eps: float = 0.0) -> torch.Tensor:
    """Per-position loss [N] from logits [N, V] (any float dtype; the arithmetic is float32), gold ids [N]
    (ids >= V: outside the softmax, produced by the pointer alone),
    the generation gate [N] and the copy probability of the gold piece [N] (both None: no pointer, g = 1)."""
    if gate is None:
        gate, copy_prob = logits.new_ones(logits.shape[0]), logits.new_zeros(logits.shape[0])
    return _PointerSmoothedNLL.apply(logits, gold, _wide(gate), _wide(copy_prob), float(eps))
