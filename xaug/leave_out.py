"""Leave-question-out scoring, for methods whose items are the evaluated questions themselves (``real_questions``).

A passage's real questions include the one being evaluated. When a query of question q is scored (in any
language), no item made from q may be in any passage: only the passages that hold q's items change (in the
method itself, q's own passage; in the shuffled control, wherever the shuffle moved them), so each such
(query, passage) score is recomputed from the passage's pool without q's items, and every other score
stays. That is exact for any fusion (fixed or per-item weight, renormalised or raw) and costs one fused
vector per affected pair.

``OwnItems`` says where each owner's (a query's, or a question's) item sits in one language: passage, slot
and vector. ``left_out`` fuses the affected passages without them; ``correction`` turns that into the
scores to overwrite in a (queries x passages) score matrix, and ``rerank`` into a run (the evaluate
stage, from the vectors the augment stage writes).
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass

import numpy as np

from .errors import ConfigError
from .fusion import FusionSettings, LanguageItems, fuse


@dataclass
class OwnItems:
    """Where each owner's own question sits among one language's items."""

    passage: np.ndarray   # (R,) int64: the passage holding it; -1: no item of that question in this language
    position: np.ndarray  # (R,) int64: its slot among the passage's items
    vectors: np.ndarray   # (R, dim) float32

    def take(self, rows: np.ndarray) -> "OwnItems":
        """The owners ``rows``, in that order."""
        return OwnItems(self.passage[rows], self.position[rows], self.vectors[rows])

    def moved(self, destination: np.ndarray) -> "OwnItems":
        """The same items after passage i's items moved to passage ``destination[i]`` (a shuffled control)."""
        held = self.passage >= 0
        return OwnItems(np.where(held, destination[np.where(held, self.passage, 0)], -1), self.position, self.vectors)


def own_items(owners: np.ndarray, items: np.ndarray, sources: np.ndarray) -> OwnItems:
    """For each owner (a question id; several owners may share one, as a question's translations do), its
    question's item in one language: ``items`` (n, m, dim) with ``sources`` (n, m) the question id of each."""
    owners = np.asarray(owners)
    passage, position = np.nonzero(np.asarray(sources) != "")  # each item with a question, in row-major order
    questions = np.asarray(sources)[passage, position]
    order = np.argsort(questions, kind="stable")
    questions, passage, position = questions[order], passage[order], position[order]
    twice = np.flatnonzero(questions[1:] == questions[:-1])
    if len(twice):
        raise ConfigError(f"question {questions[twice[0]]}: more than one item in one language (a real question has one)")
    out = OwnItems(np.full(len(owners), -1, np.int64), np.zeros(len(owners), np.int64),
                   np.zeros((len(owners), items.shape[2]), dtype=np.float32))
    if not len(questions):
        return out
    at = np.minimum(np.searchsorted(questions, owners), len(questions) - 1)
    found = questions[at] == owners
    out.passage[found], out.position[found] = passage[at[found]], position[at[found]]
    out.vectors[found] = items[out.passage[found], out.position[found]]
    return out


@dataclass
class PoolsWithout:
    """Every (owner, passage) pair where the passage's pool holds the owner's items, and that passage's pool
    without them, before fusion (so one computation serves every alpha)."""

    rows: np.ndarray      # (R,) owner rows
    cols: np.ndarray      # (R,) passage positions
    passages: np.ndarray  # (R, dim) the passages' own vectors
    sums: np.ndarray      # (R, dim) float32: the pool's item sum without the owner's items
    counts: np.ndarray    # (R,) the pool's item count without them

    def fused(self, settings: FusionSettings) -> np.ndarray:
        return fuse(self.passages, self.sums, self.counts, settings)


def pools_without(passages: np.ndarray, pool: list[LanguageItems],
                  own: list[tuple[OwnItems, np.ndarray]]) -> PoolsWithout:
    """``pool``: the ``LanguageItems`` whose sums and counts add up to each passage's pool; ``own``: per language
    in the pool, where each owner's item sits and how many leading items of that language each passage's
    pool uses (an item in a later slot is not in the pool)."""
    owners, where, vectors = [], [], []
    for items, used in own:
        held = items.passage >= 0
        held[held] &= items.position[held] < np.asarray(used)[items.passage[held]]
        owners.append(np.flatnonzero(held))
        where.append(items.passage[held])
        vectors.append(items.vectors[held])
    dim = np.shape(passages)[1]
    if not own or not sum(len(o) for o in owners):
        empty = np.zeros(0, np.int64)
        return PoolsWithout(empty, empty, np.zeros((0, dim), np.float32), np.zeros((0, dim), np.float32), empty)
    n = len(passages)
    pairs, index = np.unique(np.concatenate(owners) * n + np.concatenate(where), return_inverse=True)
    removed = np.zeros((len(pairs), dim), dtype=np.float64)
    start = 0
    for rows_, vectors_ in zip(owners, vectors):  # an owner has one item per language: no pair twice in a language
        removed[index[start:start + len(rows_)]] += vectors_  # (np.add.at's order and sums, without its slowness)
        start += len(rows_)
    removed_count = np.bincount(index, minlength=len(pairs))
    rows, cols = pairs // n, pairs % n
    sums = sum(lang.sums[cols].astype(np.float64) for lang in pool)
    counts = sum(np.asarray(lang.counts)[cols] for lang in pool)
    return PoolsWithout(rows, cols, np.asarray(passages)[cols], (sums - removed).astype(np.float32),
                        counts - removed_count)


def left_out(passages: np.ndarray, pool: list[LanguageItems], own: list[tuple[OwnItems, np.ndarray]],
             settings: FusionSettings) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every (owner, passage) pair where the passage's pool holds the owner's items, and that passage fused
    without them: (owner rows, passage positions, fused vectors) (``pools_without``)."""
    without = pools_without(passages, pool, own)
    return without.rows, without.cols, without.fused(settings)


@dataclass
class Correction:
    """Scores to overwrite in a (queries x passages) score matrix."""

    rows: np.ndarray
    cols: np.ndarray
    scores: np.ndarray

    def apply(self, scores: np.ndarray) -> np.ndarray:
        """``scores`` with the corrected entries (in place)."""
        if len(self.rows):
            scores[self.rows, self.cols] = self.scores
        return scores


def correction(queries: np.ndarray, passages: np.ndarray, pool: list[LanguageItems],
               own: list[tuple[OwnItems, np.ndarray]], settings: FusionSettings,
               without: PoolsWithout | None = None) -> Correction:
    """The scores of ``queries`` (Q, dim; the owners of ``own``) for the passages holding their own question's
    items, those items left out (``left_out``; ``without``: ``pools_without`` of the same arguments, computed
    once for several fusions)."""
    without = without or pools_without(passages, pool, own)
    fused = without.fused(settings)
    return Correction(without.rows, without.cols,
                      np.einsum("rd,rd->r", np.asarray(queries, dtype=np.float32)[without.rows], fused))


def rerank(ranking: list[str], scores: list[float], passage: str, score: float, depth: int) -> tuple[list, list]:
    """A run's top ``depth`` after ``passage``'s score became ``score`` (it goes after equal scores). Exact when
    ``ranking`` held the top ``depth + 1`` of the search, ``passage`` among them or not."""
    kept = [(s, p) for p, s in zip(ranking, scores) if p != passage]
    kept.insert(bisect.bisect_right([-s for s, _ in kept], -score), (score, passage))
    kept = kept[:depth]
    return [p for _, p in kept], [s for s, _ in kept]


def question_left_out(passages: np.ndarray, raw: list[tuple[np.ndarray, np.ndarray]], sources: list[np.ndarray],
                      settings: FusionSettings) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For every question with items among ``raw`` (per language: items (n, m, dim), counts (n,); ``sources``
    their question ids), the passages holding them fused by ``settings`` without them: (question ids,
    passage positions, fused vectors). What the evaluate stage rescores (``rerank``)."""
    owners = np.unique(np.concatenate([s[s != ""] for s in sources])) if sources else np.zeros(0, str)
    pool = [LanguageItems.from_items(items, counts, settings.n_items_used, settings.param) for items, counts in raw]
    own = [(own_items(owners, items, s), lang.counts) for (items, _), s, lang in zip(raw, sources, pool)]
    rows, cols, fused = left_out(passages, pool, own, settings)
    return owners[rows], cols, fused
