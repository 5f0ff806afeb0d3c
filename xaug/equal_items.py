"""Items apart from languages: every passage gets the same number of items whatever the number k of languages.

In the main sweep a passage's pool grows with k (n items per language, so n k items), which ties
"more languages" to "more items". The equal-items variant holds the pool at ``total`` items per passage
(the items one language gives at k = 1) and draws them from the k languages of the subset: each
passage takes its languages in a random order (languages with items first) and round-robin the next
item of each, so at k = 1 it uses the first ``total`` items of one language and at k >= total one item
from each of ``total`` different languages. The fused vector pools them as the method's fusion does.
Passage p's draw for a subset comes from ``default_rng([seed, k, subset position])``.
"""
from __future__ import annotations

import numpy as np

from .fusion import LanguageItems


def equal_items(raw: list[tuple[np.ndarray, np.ndarray]], subset: tuple[int, ...], total: int,
                rng: np.random.Generator) -> LanguageItems:
    """``total`` items per passage drawn round-robin from the languages of ``subset`` (``raw``: per language,
    items (n, m, dim) and valid counts (n,)), as one pooled ``LanguageItems`` (sum and count)."""
    return drawn_items(raw, subset, total, rng)[0]


def drawn_items(raw: list[tuple[np.ndarray, np.ndarray]], subset: tuple[int, ...], total: int,
                rng: np.random.Generator) -> tuple[LanguageItems, np.ndarray]:
    """``equal_items``, and how many leading items of each language of ``subset`` each passage took (n, k)."""
    n, _, dim = raw[subset[0]][0].shape
    counts = np.stack([np.asarray(raw[s][1], dtype=np.int64) for s in subset], axis=1)          # (n, k)
    order = np.argsort(rng.random((n, len(subset))) + 2.0 * (counts == 0), axis=1, kind="stable")  # with items first
    sums, used = np.zeros((n, dim), dtype=np.float64), np.zeros(n, dtype=np.int64)
    taken = np.zeros((n, len(subset)), dtype=np.int64)  # a language's items are taken in order: its first taken
    rows = np.arange(n)
    for t in range(total):
        position = order[:, t % len(subset)]                # the language of each passage's t-th item
        item = t // len(subset)
        valid = item < counts[rows, position]
        for j, s in enumerate(subset):
            take = valid & (position == j)
            if take.any():
                sums[take] += raw[s][0][take, item].astype(np.float64)
                used[take] += 1
                taken[take, j] += 1
    return LanguageItems(sums.astype(np.float32), used), taken
