"""The content-free controls every augmentation method is compared with in the scaling experiment:

- ``shuffled``: each language's items reassigned at random among the passages that have items (coverage
  kept); permutation j draws from ``default_rng([seed, j])`` and is evaluated on one subset per k
  (``permutation_plan``), cycling through the planned subsets;
- ``centroid``: each covered passage gets its language's mean item vector (a constant shift). For a
  leave-out method (``real_questions``) the centroid is not left out: one question is one of its
  hundreds of items.
"""
from __future__ import annotations

import numpy as np

from .fusion import LanguageItems


def shuffle(items: list[LanguageItems], rng: np.random.Generator) -> tuple[list[LanguageItems], list[np.ndarray]]:
    """Each language's items reassigned at random among the passages that have items (coverage kept), and
    where each passage's items went (per language, passage -> passage; for a leave-out, ``xaug.leave_out``)."""
    out, moves = [], []
    for lang in items:
        covered = np.flatnonzero(lang.counts > 0)
        source = rng.permutation(covered)
        sums, counts = lang.sums.copy(), lang.counts.copy()
        sums[covered], counts[covered] = lang.sums[source], lang.counts[source]
        destination = np.arange(len(lang.counts))
        destination[source] = covered
        out.append(LanguageItems(sums, counts))
        moves.append(destination)
    return out, moves


def shuffled_items(items: list[LanguageItems], rng: np.random.Generator) -> list[LanguageItems]:
    """Each language's items reassigned at random among the passages that have items (coverage kept)."""
    return shuffle(items, rng)[0]


def centroid_items(items: list[LanguageItems]) -> list[LanguageItems]:
    """Each covered passage's items replaced by its language's mean item vector (same counts)."""
    out = []
    for lang in items:
        centre = lang.sums.sum(axis=0) / max(int(lang.counts.sum()), 1)
        out.append(LanguageItems(lang.counts[:, None].astype(np.float32) * centre[None, :].astype(np.float32),
                                 lang.counts.copy()))
    return out


def permutation_plan(plan: dict[int, list[tuple[int, ...]]], perm: int) -> dict[int, list[tuple[int, ...]]]:
    """The one subset per k that shuffled permutation ``perm`` is evaluated on: permutations cycle through
    the planned subsets, so their average covers the subsets evenly at a fraction of the cost."""
    return {k: [subsets[perm % len(subsets)]] for k, subsets in plan.items()}
