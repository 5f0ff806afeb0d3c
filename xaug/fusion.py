"""Embedding augmentation: p' = (1 - alpha) E(p) + alpha * G(p) (Zhuang et al., SIGIR 2023).

A *method* (query generation, translation, MLQA's parallel contexts) supplies, per target language,
an array of item embeddings aligned to corpus order, shape (passages, items, dim), and a count of
valid items per passage (0 = nothing for that passage, which then stays as is). ``G(p)`` pools the
items of every augmenting language, by one of two weight modes:

- ``fixed`` (default): the mean over all items of the k languages, so the generated part weighs
  ``alpha`` in total whatever k is: a sweep over k varies the languages, not the weight;
- ``per_item``: their sum (the reference implementation), so the generated part weighs
  ``alpha * items * k``: it grows with k, which confounds "more languages" with "more weight".

Each language is reduced once to its per-passage item sum and count (``LanguageItems``); any subset
of languages is then fused from those sums, which is what lets the scaling stage fuse thousands of
subsets cheaply.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import ConfigError
from .params import check_int

WEIGHT_MODES = ("fixed", "per_item")


@dataclass
class FusionSettings:
    alpha: float = 0.01
    weight: str = "fixed"
    renormalize: bool = False
    n_items_used: int | None = None  # first n items per language; None = all
    param: str = "augment.<method>"  # the params group, for error messages

    def __post_init__(self):
        try:
            self.alpha = float(self.alpha)
        except (TypeError, ValueError):
            raise ConfigError(f"{self.param}.alpha: expected a number in [0, 1] or auto, got {self.alpha!r}") from None
        if not 0.0 <= self.alpha <= 1.0:
            raise ConfigError(f"{self.param}.alpha: expected a number in [0, 1] or auto, got {self.alpha!r}")
        if self.weight not in WEIGHT_MODES:
            raise ConfigError(f"{self.param}.weight: expected one of {list(WEIGHT_MODES)}, got {self.weight!r}")
        if self.n_items_used is not None:
            check_int(self.n_items_used, f"{self.param}.n_queries_used")


def check_weights(weights, param: str = "scaling.weights") -> list[str]:
    """A list of distinct weight modes; the first is the primary one (controls, transfer, cost)."""
    if not isinstance(weights, list) or not weights or any(w not in WEIGHT_MODES for w in weights) \
            or len(set(weights)) != len(weights):
        raise ConfigError(f"{param}: expected a list of distinct weight modes among {list(WEIGHT_MODES)}, got {weights!r}")
    return weights


ITEMS_BLOCK = 16384  # passages reduced at a time


@dataclass
class LanguageItems:
    """One language's items reduced to a per-passage sum (n, dim) and count (n,)."""

    sums: np.ndarray
    counts: np.ndarray

    @classmethod
    def from_items(cls, items: np.ndarray, counts: np.ndarray, n_used: int | None = None,
                   param: str = "augment.<method>") -> "LanguageItems":
        m = items.shape[1] if n_used is None else n_used
        if m > items.shape[1]:
            raise ConfigError(f"{param}.n_queries_used: {m} > the {items.shape[1]} items generated per passage")
        valid = np.minimum(np.asarray(counts, dtype=np.int64), m)
        mask = (np.arange(m)[None, :] < valid[:, None]).astype(np.float32)
        sums = np.zeros((len(valid), items.shape[2]), dtype=np.float32)
        for start in range(0, len(valid), ITEMS_BLOCK):  # blocks of a memory-mapped file: float32 copies stay small
            block = slice(start, start + ITEMS_BLOCK)
            sums[block] = np.einsum("nm,nmd->nd", mask[block], items[block, :m].astype(np.float32))
        return cls(sums, valid)


UNIT_TOLERANCE = 1e-4  # passages whose norms all lie within this of 1 come from a normalising encoder


def unit_passages(norms_squared: np.ndarray) -> bool:
    """Whether passages with these squared norms are unit vectors (``xdr.normalize: true``), up to rounding."""
    return bool(np.all(np.abs(np.asarray(norms_squared, dtype=np.float64) - 1.0) <= UNIT_TOLERANCE))


def restored_norms(passages: np.ndarray) -> np.ndarray | None:
    """The length a renormalised ``p'`` is scaled back to: None (unit length) when the passages are unit
    vectors, else each passage's own norm (n, 1). So the baseline and every augmented system rank with one
    similarity whatever ``xdr.normalize`` is: the cosine of unit vectors, or the inner product with passages
    of unchanged norms (never cosine against the baseline's inner product)."""
    norms = np.linalg.norm(np.asarray(passages, dtype=np.float32), axis=1, keepdims=True)
    return None if unit_passages(norms[:, 0].astype(np.float64) ** 2) else norms


def fuse(passages: np.ndarray, sums: np.ndarray, counts: np.ndarray, settings: FusionSettings) -> np.ndarray:
    """``p'`` for every passage from the summed items and item counts of the augmenting languages; with
    ``renormalize``, scaled back to the passage's own length (``restored_norms``: unit for unit passages)."""
    passages = np.asarray(passages, dtype=np.float32)
    covered = counts > 0
    pooled = sums / np.maximum(counts, 1)[:, None] if settings.weight == "fixed" else sums
    out = np.where(covered[:, None], (1.0 - settings.alpha) * passages + settings.alpha * pooled, passages)
    if settings.renormalize:
        out = out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        norms = restored_norms(passages)
        if norms is not None:
            out = out * norms
    return out.astype(np.float32)


def combine(passages: np.ndarray, languages: list[LanguageItems], settings: FusionSettings) -> np.ndarray:
    """``fuse`` over the union of ``languages`` (none: the passages as they are)."""
    n, dim = np.shape(passages)
    sums, counts = np.zeros((n, dim), dtype=np.float32), np.zeros(n, dtype=np.int64)
    for lang in languages:
        if lang.sums.shape != (n, dim):
            raise ConfigError(f"generated embeddings of shape {lang.sums.shape} do not match {n} passages of dimension {dim}")
        sums += lang.sums
        counts += lang.counts
    return fuse(passages, sums, counts, settings)


def augment(passages: np.ndarray, generated: list[tuple[np.ndarray, np.ndarray]], settings: FusionSettings) -> np.ndarray:
    """Augmented passage embeddings (float32).

    ``generated``: one ``(items, counts)`` per language, ``items`` of shape (n, m, dim), ``counts`` (n,)
    the number of valid leading items per passage. Items beyond ``settings.n_items_used`` are ignored.
    """
    n, dim = np.shape(passages)
    for items, _ in generated:
        if items.shape[0] != n or items.shape[2] != dim:
            raise ConfigError(f"generated embeddings of shape {items.shape} do not match {n} passages of dimension {dim}")
    return combine(passages, [LanguageItems.from_items(i, c, settings.n_items_used, settings.param)
                              for i, c in generated], settings)
