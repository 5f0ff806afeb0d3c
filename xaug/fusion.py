"""Embedding augmentation: p' = (1 - alpha) E(p) + alpha * pool_i E(g_i) (Zhuang et al., SIGIR 2023).

A *method* (query generation, translation, the translation oracle) supplies, per target language,
an array of generated-item embeddings aligned to corpus order, shape (passages, items, dim), and a
count of valid items per passage (0 = nothing generated for that passage, which then stays as is).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import ConfigError

POOLS = ("sum", "mean")


@dataclass
class FusionSettings:
    alpha: float = 0.01
    pool: str = "sum"
    renormalize: bool = False
    n_items_used: int | None = None  # first n items per language; None = all

    def __post_init__(self):
        try:
            self.alpha = float(self.alpha)
        except (TypeError, ValueError):
            raise ConfigError(f"alpha: expected a number in [0, 1], got {self.alpha!r}") from None
        if not 0.0 <= self.alpha <= 1.0:
            raise ConfigError(f"alpha: expected a number in [0, 1], got {self.alpha!r}")
        if self.pool not in POOLS:
            raise ConfigError(f"pool: expected one of {POOLS}, got {self.pool!r}")
        if self.n_items_used is not None and (not isinstance(self.n_items_used, int) or self.n_items_used <= 0):
            raise ConfigError(f"n_queries_used: expected a positive integer, got {self.n_items_used!r}")


def check_n_languages(n_languages, languages: list[str]) -> int:
    if isinstance(n_languages, bool) or not isinstance(n_languages, int) or not 0 <= n_languages <= len(languages):
        raise ConfigError(f"n_languages: expected an integer from 0 to {len(languages)} (len(languages)), got {n_languages!r}")
    return n_languages


def augment(passages: np.ndarray, generated: list[tuple[np.ndarray, np.ndarray]], settings: FusionSettings) -> np.ndarray:
    """Augmented passage embeddings (float32).

    ``generated``: one ``(items, counts)`` per language, ``items`` of shape (n, m, dim), ``counts`` (n,)
    the number of valid leading items per passage. Items beyond ``settings.n_items_used`` are ignored.
    """
    passages = np.asarray(passages, dtype=np.float32)
    n, dim = passages.shape
    total = np.zeros((n, dim), dtype=np.float64)
    count = np.zeros(n, dtype=np.int64)
    for items, counts in generated:
        if items.shape[0] != n or items.shape[2] != dim:
            raise ConfigError(f"generated embeddings of shape {items.shape} do not match {n} passages of dimension {dim}")
        m = items.shape[1] if settings.n_items_used is None else settings.n_items_used
        if m > items.shape[1]:
            raise ConfigError(f"n_queries_used: {m} > the {items.shape[1]} items generated per passage")
        valid = np.minimum(np.asarray(counts), m)
        mask = (np.arange(m)[None, :] < valid[:, None]).astype(np.float64)
        total += np.einsum("nm,nmd->nd", mask, items[:, :m].astype(np.float64))
        count += valid
    if settings.pool == "mean":
        total /= np.maximum(count, 1)[:, None]
    fused = (1.0 - settings.alpha) * passages + settings.alpha * total
    out = np.where((count > 0)[:, None], fused, passages)
    if settings.renormalize:
        out = out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
    return out.astype(np.float32)
