"""The sweep engine of the scaling experiment: which language subsets are evaluated at each k, and the
per-query measures of one method's items fused subset by subset, averaged by k and query group.

A query's measure at k is averaged over the planned subsets of k languages that hold its language
(in-set), over those that do not (out-of-set), and over all of them (all); the corpus language's
queries (same-language) are never in-set. ``Projection`` scores a subset without building its fused
passages (exact for a Flat index). ``ScalingSettings`` is the experiment's params group (``scaling``).
"""
from __future__ import annotations

import dataclasses
import itertools
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .candidates import (CandidateSearch, ListTops, candidate_scores, column_type, correction_at, found_lists,
                         list_templates, mapped, narrowed, pack_templates, union, values_at)
from .search import build_index
from .errors import ConfigError
from .fusion import FusionSettings, LanguageItems, check_weights, combine, unit_passages
from .leave_out import OwnItems, correction, pools_without
from .metrics import ALL_MEASURES
from .params import check_int
from .queryset import QuerySet
from .ranking import integer_columns

CROSS = ("all", "in-set", "out-of-set")
SAME = "same-language"  # queries in the corpus language: what augmentation costs them
GROUPS = CROSS + (SAME,)


def check_subsets(mode) -> str:
    """``scaling.subsets``: all | first | random:R (R a positive integer)."""
    r = mode.removeprefix("random:") if isinstance(mode, str) else ""
    if mode not in ("all", "first") and not (isinstance(mode, str) and mode.startswith("random:") and r.isdigit()
                                             and int(r) > 0):
        raise ConfigError(f"scaling.subsets: expected all, first or random:R (R a positive integer), got {mode!r}")
    return mode


@dataclass
class ScalingSettings:
    """The ``scaling`` params group."""

    subsets: str = "all"     # all | first | random:R (R subsets per k)
    weights: list[str] = field(default_factory=lambda: ["fixed", "per_item"])  # the first is primary
    permutations: int = 20   # shuffled-control permutations per method
    resamples: int = 999     # sign-flip and bootstrap resamples per test, at least (more for large Holm families)
    workers: int = 2         # processes running the sweeps, threads running the tests (results do not depend on it)
    equivalence_margin: float = 0.01  # TOST margin of "no difference" between contrasted systems (nDCG@10, R@2kt)
    candidates: int = 0      # 0: every passage scored (exact); K: each query's candidates (xaug.candidates)
    candidate_index: str = "Flat"  # how each candidate list's top K is found: Flat (exact) or a faiss factory
    candidate_search: str = ""     # its faiss ParameterSpace string, e.g. nprobe=32
    candidate_train: int = 0       # vectors per cell that train each candidate index's cells, at most; 0: faiss's 256
    candidate_iterations: int = 0  # k-means iterations that train those cells; 0: faiss's 10
    query_block: int = 10000       # with candidates: queries scored at once (QuerySet.blocks); 0: all
    seeds: list[int] = field(default_factory=list)  # further training-and-sampling seeds (xaug.seeds; checked on load)

    @property
    def search(self) -> CandidateSearch:
        """How each candidate list's top K is found (``scaling.candidate_*``)."""
        return CandidateSearch(self.candidate_index, self.candidate_search, self.candidate_train,
                               self.candidate_iterations)

    def __post_init__(self):
        check_subsets(self.subsets)
        check_int(self.candidates, "scaling.candidates", minimum=0)
        check_int(self.query_block, "scaling.query_block", minimum=0, note="0 = all queries at once")
        self.search  # one-line errors
        check_weights(self.weights)
        check_int(self.permutations, "scaling.permutations", minimum=0)
        check_int(self.resamples, "scaling.resamples")
        check_int(self.workers, "scaling.workers")
        if isinstance(self.equivalence_margin, bool) or not isinstance(self.equivalence_margin, (int, float)) \
                or not 0 < self.equivalence_margin < 1:
            raise ConfigError(f"scaling.equivalence_margin: expected a number in (0, 1), got {self.equivalence_margin!r}")


def subset_plan(n: int, mode: str, seed: int = 0) -> dict[int, list[tuple[int, ...]]]:
    """k = 1..n -> the subsets of language indices evaluated at k (``scaling.subsets``)."""
    check_subsets(mode)
    if mode == "all":
        return {k: list(itertools.combinations(range(n), k)) for k in range(1, n + 1)}
    if mode == "first":
        return {k: [tuple(range(k))] for k in range(1, n + 1)}
    r, rng, plan = int(mode.removeprefix("random:")), np.random.default_rng(seed), {}
    for k in range(1, n + 1):
        if math.comb(n, k) <= r:
            plan[k] = list(itertools.combinations(range(n), k))
            continue
        chosen: set[tuple[int, ...]] = set()
        while len(chosen) < r:
            chosen.add(tuple(sorted(rng.choice(n, k, replace=False).tolist())))
        plan[k] = sorted(chosen)
    return plan


def item_means(items: list[LanguageItems]) -> list[np.ndarray]:
    """Per language, (N, d) the mean item of each passage (0 where it has none)."""
    return [item_mean(it) for it in items]


def item_mean(items: LanguageItems) -> np.ndarray:
    """(N, d) float64: one language's mean item of each passage (0 where it has none)."""
    return items.sums / np.maximum(items.counts, 1)[:, None]


def item_mean32(items: LanguageItems) -> np.ndarray:
    """``item_mean`` rounded to float32, bit for bit, without the float64 array (twice the size): each float32 sum
    divided by its count in float32 is the correctly rounded quotient, and so is the float64 quotient rounded to
    float32 (double rounding is harmless for a division when the wider format has over 2 x 24 + 1 bits). Sums not in
    float32 (the items' and the controls' are) or counts not exact in float32 take the float64 path."""
    if items.sums.dtype != np.float32 or len(items.counts) and items.counts.max() >= 1 << 24:
        return item_mean(items).astype(np.float32)
    return np.divide(items.sums, np.maximum(items.counts, 1).astype(np.float32)[:, None], dtype=np.float32)


class ListMatrices(Sequence):
    """The candidate lists' matrices of a set of items, ``[passages, mean item of each language]``, each mean
    computed when read and the last one kept: the lists read one language's mean at a time
    (``xaug.candidates.list_vectors``), so that one (N, d) float64 mean is held, not one per language (at the
    scale benchmark's P = 100k, 0.3 GB each)."""

    def __init__(self, passages: np.ndarray, items: list[LanguageItems]):
        self.passages, self.items = passages, items
        self._last: tuple[int, np.ndarray] | None = None

    def __len__(self) -> int:
        return 1 + len(self.items)

    def __getitem__(self, j: int) -> np.ndarray:
        if isinstance(j, slice) or not -len(self) <= j < len(self):
            raise IndexError(j)
        j %= len(self)
        if j == 0:
            return self.passages
        if self._last is None or self._last[0] != j:
            self._last = None  # the previous mean goes before the next is computed
            self._last = (j, item_mean(self.items[j - 1]))
        return self._last[1]


def found_tops(queries: QuerySet, passages: np.ndarray, items: list[LanguageItems],
               templates: dict | None = None) -> ListTops | None:
    """The candidate lists' tops (``xaug.candidates.found_lists``) of every query of ``queries`` for a set of
    ``items``, found once before its query blocks are scored (``block_candidates``, then
    ``SubsetScorer(..., columns=...)``), so that each list's index is built once per set of items, not once per
    block; None where there is no index to search (no candidates, or the Flat search, which scores each block's
    lists directly). ``templates``:
    the lists' trained indexes (``list_templates``), e.g. those of the method whose control ``items`` are."""
    if not queries.searches_lists:
        return None
    return found_lists(queries.vectors, ListMatrices(np.asarray(passages, dtype=np.float32), items),
                       queries.candidates, queries.judgements, [it.counts > 0 for it in items], queries.search,
                       templates)


def block_candidates(queries: QuerySet, tops: ListTops | None, blocks: list[np.ndarray]
                     ) -> list[np.ndarray | None]:
    """Per query block (``QuerySet.blocks``: consecutive rows, in order), its queries' candidates before any
    leave-out: the union of each query's relevant passage and the lists' ``tops`` (``found_tops``, ``fused_tops``),
    (rows, W) int32 in ``xaug.candidates.union``'s layout; None per block without ``tops``. The unions (narrower
    than the tops together: the lists overlap) are what a set of items keeps while its blocks are scored
    (``SubsetScorer(..., columns=...)``). Each block's rows of ``tops`` go back to the system once its union is
    built (``ListTops.release_rows``), so that the lists' tops and the unions are not held together; the unions
    are memory maps of their own (``xaug.candidates.mapped``), out of the heap, which then holds only the transient
    arrays of the search and goes back to the system whole before the blocks are scored."""
    if tops is None:
        return [None] * len(blocks)
    relevant, out = queries.judgements.relevant, []
    for rows in blocks:
        start, stop = (int(rows[0]), int(rows[-1]) + 1) if len(rows) else (0, 0)
        if len(rows) and not np.array_equal(rows, np.arange(start, stop)):
            raise ValueError("block_candidates: each block must be consecutive rows")
        columns = union(relevant[rows, None], tops.array[start:stop].reshape(len(rows), -1))
        tops.release_rows(stop)
        kept = mapped(columns.shape, column_type(columns))
        kept[...] = columns
        out.append(kept)
    return out


def trained_lists(passages: np.ndarray, items: list[LanguageItems], search) -> dict:
    """``list_templates`` of a set of items, packed (``pack_templates``) for a worker to return."""
    return pack_templates(list_templates(ListMatrices(np.asarray(passages, dtype=np.float32), items),
                                         [it.counts > 0 for it in items], search))


def fused_keys(plan: dict[int, list[tuple[int, ...]]], fusions: dict) -> list[tuple]:
    """The distinct fused corpora a set of items is scored as: (subset, alpha, weight, renormalize) of every planned
    subset under each run's fusion at its k (``fusions``: run -> k -> FusionSettings; a k a run lacks is skipped)."""
    keys: dict[tuple, None] = {}
    for fusion in fusions.values():
        for k, subsets in plan.items():
            if k not in fusion:
                continue
            f = fusion[k]
            for subset in subsets:
                keys.setdefault((tuple(subset), f.alpha, f.weight, f.renormalize), None)
    return list(keys)


def fused_vectors(passages: np.ndarray, items: list[LanguageItems], key: tuple) -> np.ndarray:
    """The passages fused with the items of ``key``'s subset under its fusion (``fused_keys``)."""
    subset, alpha, weight, renormalize = key
    return combine(passages, [items[i] for i in subset], FusionSettings(alpha, weight, renormalize))


def searched_lists(items: list[LanguageItems], centroids: bool = False) -> int:
    """How many candidate lists ``found_tops`` searches for a set of items: the passages', then per language four
    (``xaug.candidates.candidate_lists``) and one more where it leaves passages uncovered; the centroid control's
    mean items need no search (``_one_vector``)."""
    return 1 + sum(4 - centroids + int(not (it.counts > 0).all()) for it in items)


def fused_tops(queries: QuerySet, passages: np.ndarray, items: list[LanguageItems], keys: list[tuple],
               templates: dict | None = None, corrected: int | None = None) -> ListTops:
    """Per key of ``fused_keys``, every query's top K of that fused corpus (``xaug.candidates.found_lists``): the
    candidates of a set of items scored under few fusions (a control's runs at the method's alpha), exact up
    to the index's recall, in fewer lists than ``found_tops``' per-language ones where the plan is small.
    ``templates``: key -> (vectors, trained empty index) (``trained_fused`` of the same kind of items, by key:
    ``xaug.variants.fused_templates``). ``corrected`` (the passages per query a leave-out correction may lower;
    None: search to K): each run ranks by its own fused corpus, so each corpus is searched only as deep as a
    run's measures read (``QuerySet.own_search_depth``); against the per-language lists' Flat candidates its
    measures move about as far as those of the search to K (docs/design.md)."""
    depth = queries.candidates if corrected is None else queries.own_search_depth(len(passages), corrected)
    out = ListTops(len(queries.vectors), len(keys), depth)
    for at, key in enumerate(keys):
        shared = (templates or {}).get(key)
        found_lists(queries.vectors, [fused_vectors(passages, items, key)], depth, queries.judgements,
                    None, queries.search, None if shared is None else {0: shared}, remember=False, out=out, at=at)
    return out


def trained_fused(passages: np.ndarray, items: list[LanguageItems], keys: list[tuple], search, kind: str) -> dict:
    """(kind, key) -> the trained, empty index of each fused corpus of ``keys`` (``fused_tops``' templates), trained
    on ``items`` fused (a control's, or items whose fused corpora lie as its do), packed."""
    return pack_templates({(kind, key): (len(passages), build_index(fused_vectors(passages, items, key), search.index,
                                                                    "scaling.candidate_index", search.train,
                                                                    search.iterations)) for key in keys})


@dataclass
class PassageTerms:
    """The per-passage terms of ``Projection``'s norms for one set of items: ``p.p``, the norms renormalised
    fusions go back to (None: unit passages), ``p . sums`` per language and the Gram terms ``sums_a . sums_b``;
    computed once for every query block that scores the same items (``Projection(..., terms=...)``)."""

    pp: np.ndarray                # (N,) float64
    restore: np.ndarray | None    # (N,) float64, or None
    ps: list[np.ndarray]          # per language (N,) float64
    gram: dict[tuple[int, int], np.ndarray]  # (a, b), a <= b -> (N,) float64

    @classmethod
    def of(cls, passages: np.ndarray, items: list[LanguageItems]) -> "PassageTerms":
        p = np.asarray(passages, dtype=np.float32)
        pp = np.einsum("nd,nd->n", p, p, dtype=np.float64)
        # renormalised: back to unit length, or to each passage's own norm when the encoder does not
        # normalise (``xaug.fusion.restored_norms``: one similarity for the baseline and every system)
        return cls(pp, None if unit_passages(pp) else np.sqrt(pp),
                   [np.einsum("nd,nd->n", p, it.sums, dtype=np.float64) for it in items],
                   {(a, b): np.einsum("nd,nd->n", items[a].sums, items[b].sums, dtype=np.float64)
                    for a in range(len(items)) for b in range(a, len(items))})


class Projection:
    """Query scores of any fusion of a set of languages, without building the fused passages.

    With ``p' = w0 p + w1 T`` (T the summed items of the subset, w0 and w1 per passage from alpha, the
    weight mode and the item count), ``q . p' = (w0 q.p + w1 q.T) / |p'|`` and
    ``|p'|^2 = w0^2 p.p + 2 w0 w1 p.T + w1^2 T.T``: per language, ``q . sums`` (Q, N), ``p . sums`` (N,)
    and the Gram terms ``sums_a . sums_b`` (N,) are computed once, and a subset adds them up. Exact
    for an exhaustive (Flat) index; equal to ``QuerySet.score(combine(...))`` up to float rounding.

    With candidates (``queries.candidates`` = K), the (Q, N) terms become (Q, W) over each query's
    candidates (``xaug.candidates.candidate_scores``: the top K of the passages and, per language, of the
    passages it covers and of those it does not), the relevant passage and ``extra`` ((Q, m) passage
    positions, e.g. where a leave-out overwrites scores). ``tops``: the lists' tops of these queries, found
    beforehand; ``columns``: their candidates, found beforehand (``block_candidates``: the union of the relevant
    passage and the tops), to which ``extra`` is added; ``terms``: the per-passage terms of these items
    (``PassageTerms``), computed beforehand for every query block."""

    def __init__(self, queries: QuerySet, passages: np.ndarray, items: list[LanguageItems],
                 extra: list[np.ndarray] = (), tops: list[np.ndarray] | None = None,
                 columns: np.ndarray | None = None, terms: PassageTerms | None = None):
        self.queries = queries
        p = np.asarray(passages, dtype=np.float32)
        terms = PassageTerms.of(p, items) if terms is None else terms
        self.pp, self.restore, self.ps, self.gram = terms.pp, terms.restore, terms.ps, terms.gram
        self.columns = None
        if queries.candidates:  # candidates: top K of the baseline, and per language of its covered and uncovered lists
            if columns is not None:  # these queries' candidates, found beforehand: their scores, one mean at a time
                self.columns = narrowed(union(columns, *extra)) if len(extra) else integer_columns(columns)
                self.qp = values_at(queries.vectors, p, self.columns)
                qm = [values_at(queries.vectors, item_mean32(it), self.columns) for it in items]
            else:
                self.columns, (self.qp, *qm) = candidate_scores(queries.vectors, [p, *item_means(items)],
                                                                queries.candidates, queries.judgements, tuple(extra),
                                                                [it.counts > 0 for it in items], queries.search, tops)
            # the candidates as numpy's index type, once: ``np.take`` converts int32 indices on every call, twice per
            # fusion scored (a seventh of the tune stage at P = 100k, py-spy); 8 bytes per candidate while it scores
            self._at = self.columns.astype(np.intp, copy=False)
            # q . sums = q . mean item x count, in float32 in place: each product is rounded once, as a float64
            # product rounded to float32 is (counts are exact in float32); padding (-1) reads passage 0 (``clip``),
            # at columns never ranked
            self.qs = [np.multiply(m, np.take(it.counts.astype(np.float32), self._at, mode="clip"), out=m)
                       for m, it in zip(qm, items)]
        else:
            self.qp = queries.vectors @ p.T
            self.qs = [queries.vectors @ it.sums.T for it in items]
            self._at = None
        self.counts = [it.counts for it in items]
        self._items, self._scores = np.empty_like(self.qp), np.empty_like(self.qp)
        self._scale = None if self.columns is None else np.empty_like(self.qp)

    def scores(self, subset: tuple[int, ...], settings: FusionSettings) -> np.ndarray:
        count = sum(self.counts[i] for i in subset)
        covered = count > 0
        w0 = np.where(covered, 1.0 - settings.alpha, 1.0)
        w1 = np.where(covered, settings.alpha / np.maximum(count, 1) if settings.weight == "fixed" else settings.alpha,
                      0.0)
        scale0, scale1 = w0, w1
        if settings.renormalize:
            pt = sum(self.ps[i] for i in subset)
            tt = sum(self.gram[min(a, b), max(a, b)] for a in subset for b in subset)
            norm = np.sqrt(np.maximum(w0 ** 2 * self.pp + 2 * w0 * w1 * pt + w1 ** 2 * tt, 1e-24))
            if self.restore is not None:
                norm = norm / self.restore
            scale0, scale1 = w0 / norm, w1 / norm
        scale0, scale1 = scale0.astype(np.float32), scale1.astype(np.float32)
        # in buffers reused across subsets (the returned scores are valid until the next call)
        qt = np.copyto(self._items, self.qs[subset[0]]) or self._items
        for i in subset[1:]:
            qt += self.qs[i]
        if self.columns is None:
            qt *= scale1
            out = np.multiply(self.qp, scale0, out=self._scores)
        else:  # per passage -> per query and candidate, gathered into one reused buffer in turn
            qt *= np.take(scale1, self._at, out=self._scale, mode="clip")
            out = np.multiply(self.qp, np.take(scale0, self._at, out=self._scale, mode="clip"), out=self._scores)
        out += qt
        return out


@dataclass
class KResult:
    """Per-query measures (M, Q) at one k, averaged over the subsets evaluated: all of them, those that
    hold the query's language (in-set) and those that do not (out-of-set); NaN where there is none.
    With one subset (``held``: (Q,) whether it holds each query's language), in-set and out-of-set are
    ``all`` where the query's language is (is not) in it and are derived when read, not stored (the
    scaling stage's parent holds every run of a corpus setting: a third of the memory at random:1)."""

    all: np.ndarray
    _inset: np.ndarray | None
    _outset: np.ndarray | None
    subsets: int
    seconds: float
    tokens: float
    alpha: float | None = None    # the fusion weight used at this k
    items: int | None = None      # items used per passage and language (None: all)
    held: np.ndarray | None = None  # with one subset and no stored in-set/out-of-set: its languages' queries

    @property
    def inset(self) -> np.ndarray:
        return self._inset if self._inset is not None else np.where(self.held, self.all, np.nan)

    @property
    def outset(self) -> np.ndarray:
        return self._outset if self._outset is not None else np.where(self.held, np.nan, self.all)

    def group(self, name: str) -> np.ndarray:
        return {"all": self.all, "in-set": self.inset, "out-of-set": self.outset, SAME: self.all}[name]

    @classmethod
    def side_by_side(cls, parts: list["KResult"]) -> "KResult":
        """One result of the query blocks ``parts`` (``QuerySet.blocks``, in order): their measures side by side."""
        if len(parts) == 1:
            return parts[0]
        joined = {"all": np.concatenate([p.all for p in parts], axis=1)}
        if all(p.held is not None for p in parts):
            joined["held"] = np.concatenate([p.held for p in parts])
        else:
            joined.update(_inset=np.concatenate([p.inset for p in parts], axis=1),
                          _outset=np.concatenate([p.outset for p in parts], axis=1), held=None)
        return dataclasses.replace(parts[0], **joined)


def by_k_side_by_side(parts: list[dict[int, KResult]]) -> dict[int, KResult]:
    """k -> KResult of each query block (in order) as that of all the queries."""
    return {k: KResult.side_by_side([p[k] for p in parts]) for k in parts[0]}


def blocks_side_by_side(parts: list[tuple[dict[int, KResult], dict[int, np.ndarray]]]
                        ) -> tuple[dict[int, KResult], dict[int, np.ndarray]]:
    """``sweep``'s (by_k, singles) of each query block (in order) as those of all the queries. A single language's
    values that are a k's (``sweep``: a plan's only subset at k = 1) stay that k's array, not a copy of it (which a
    worker would hold and send beside it: a quarter of a method's results at one subset per k)."""
    by_k = by_k_side_by_side([b for b, _ in parts])
    singles = {}
    for i in parts[0][1]:
        k = next((k for k in parts[0][0] if all(s[i] is b[k].all for b, s in parts)), None)
        if k is not None:
            singles[i] = by_k[k].all
        else:
            singles[i] = parts[0][1][i] if len(parts) == 1 else np.concatenate([s[i] for _, s in parts], axis=1)
    return by_k, singles


@dataclass
class Sweep:
    """One variant of one method under one weight mode: k -> KResult, and each single language's values."""

    method: str
    variant: str  # method | shuffled | centroid | one_alpha | equal_items (xaug.scaling.VARIANTS)
    weight: str
    by_k: dict[int, KResult]
    singles: dict[int, np.ndarray] = field(default_factory=dict)
    renormalize: bool = True
    primary: bool = True  # the configured fusion (first weight mode, augment.<method>.renormalize)

    @property
    def name(self) -> str:
        return self.method if self.variant == "method" else f"{self.method}-{self.variant}"


def group_means(queries: QuerySet, subsets: list[tuple[int, ...]], values_of) -> tuple:
    """Per-query means (M, Q) of ``values_of(position, subset)`` over ``subsets``: over all of them, over those
    that hold the query's language (in-set) and over those that do not (out-of-set); NaN where there is none.
    -> (all, in-set, out-of-set, None), or for one subset (its values, None, None, whether it holds each query's
    language): ``KResult``'s first fields and its ``held``, the same figures without two copies."""
    if len(subsets) == 1:
        return values_of(0, subsets[0]), None, None, np.isin(queries.lang, subsets[0])
    total = np.zeros((len(ALL_MEASURES), len(queries.lang)))
    inside, outside = np.zeros_like(total), np.zeros_like(total)
    n_in = np.zeros(len(queries.lang))
    for position, subset in enumerate(subsets):
        values = values_of(position, subset)
        held = np.isin(queries.lang, subset)
        total += values
        inside += values * held
        outside += values * ~held
        n_in += held
    n_out = len(subsets) - n_in
    with np.errstate(invalid="ignore", divide="ignore"):
        return (total / len(subsets), np.where(n_in > 0, inside / n_in, np.nan),
                np.where(n_out > 0, outside / n_out, np.nan), None)


class SubsetScorer:
    """Per-query measures (M, Q) of the corpus augmented with any subset of a method's languages under any
    fusion: projected (``Projection``, a Flat index) or fused and searched, and for a leave-out method
    (``own``: per language, where each query's own question sits among the items, ``xaug.leave_out``) with
    those items left out of that query's scores. The one scorer of the sweep, the tune grid and the dial."""

    def __init__(self, queries: QuerySet, passages: np.ndarray, items: list[LanguageItems],
                 own: list[OwnItems] | None = None, tops: list[np.ndarray] | None = None,
                 columns: np.ndarray | None = None, terms: PassageTerms | None = None):
        self.queries, self.passages, self.items, self.own = queries, passages, items, own
        extra = [] if own is None else [o.passage[:, None] for o in own]  # the passages a leave-out overwrites
        self.projection = Projection(queries, passages, items, extra, tops, columns, terms) \
            if queries.factory == "Flat" else None
        self.view = queries if self.projection is None or self.projection.columns is None else \
            queries.restrict(self.projection.columns)
        self._without: tuple = (None, None)  # the last subset's pools without each query's own items
        self._pooled: dict[tuple, bool] = {}  # subset -> whether some passage has more than one of its items

    def fusion_key(self, subset: tuple[int, ...], fusion: FusionSettings) -> tuple:
        """What this scorer's measures of ``subset`` under ``fusion`` depend on: equal keys, the same measures bit
        for bit. The weight modes are one where no passage has more than one of the subset's items and the scores
        are projected without a leave-out correction (``Projection.scores``: alpha / 1 is alpha), not where
        fused passages are scored or corrected (``xaug.fusion.fuse`` pools the fixed mode's items in float64 and
        the per-item mode's in float32, which round apart)."""
        subset = tuple(subset)
        weight = fusion.weight
        if self.projection is not None and self.own is None:
            if subset not in self._pooled:
                self._pooled[subset] = int(np.sum([self.items[i].counts for i in subset], axis=0).max(initial=0)) > 1
            weight = weight if self._pooled[subset] else "fixed"
        return subset, fusion.alpha, weight, fusion.renormalize, fusion.n_items_used

    def __call__(self, subset: tuple[int, ...], fusion: FusionSettings, names: list[str] | None = None) -> np.ndarray:
        """Measures (M, Q): every one of ALL_MEASURES, or those of ``names`` (rank measures alone are cheaper)."""
        items = [self.items[i] for i in subset]
        fix = None
        if self.own is not None:
            own = [(self.own[i], self.items[i].counts) for i in subset]
            if self._without[0] != subset:  # one computation for every fusion of a subset (the tune grid's alphas)
                self._without = (subset, pools_without(self.passages, items, own))
            fix = correction(self.queries.vectors, self.passages, items, own, fusion, self._without[1])
        if self.projection:
            scores = self.projection.scores(subset, fusion)
            if fix is not None and self.view.columns is not None:
                fix = correction_at(fix, self.view.columns)
            return self.view.measures(scores if fix is None else fix.apply(scores), names)
        return self.queries.score(combine(self.passages, items, fusion), fix, names)


def sweep(queries: QuerySet, passages: np.ndarray, items: list[LanguageItems], settings: dict[int, FusionSettings],
          plan: dict[int, list[tuple[int, ...]]], seconds: list[float], tokens: list[int],
          own: list[OwnItems] | None = None, scorer: SubsetScorer | None = None, done: dict | None = None
          ) -> tuple[dict[int, KResult], dict[int, np.ndarray]]:
    """Evaluate every planned subset, each k with its own fusion ``settings[k]``; average per query by k and
    group. ``own``: per language, where each query's own question sits among the items (a leave-out method,
    ``xaug.leave_out``): those items are left out of that query's scores. ``scorer``: a ``SubsetScorer`` of
    these queries, passages, items and ``own`` to reuse (its projection and candidates serve any fusion).
    ``done``: the results of earlier sweeps with this ``scorer`` (and these queries, items, ``own``, seconds and
    tokens), by k's subsets and their fusion keys (``SubsetScorer.fusion_key``), filled as this one goes: a k whose
    subsets' keys all equal an earlier k's takes its result (the same ``KResult`` and single languages) rather
    than scoring it again. The runs of one set of items meet where their fusions do: one alpha at the largest k
    is the method's own run there and wherever its tuned alpha repeats, and the weight modes are one where
    ``fusion_key`` makes them one (projected scores, no leave-out, no passage with more than one of a subset's
    items)."""
    by_k, singles = {}, {}
    scorer = scorer if scorer is not None else SubsetScorer(queries, passages, items, own)
    for k, subsets in plan.items():
        fusion = settings[k]
        key = tuple(scorer.fusion_key(subset, fusion) for subset in subsets)
        if done is not None and key and key in done:  # (a k without subsets has no key)
            by_k[k], found = done[key]
            singles.update(found)
            continue

        def values_of(_, subset):
            values = scorer(subset, fusion)
            if k == 1:
                singles[subset[0]] = values
            return values

        means, inset, outset, held = group_means(queries, subsets, values_of)
        by_k[k] = KResult(means, inset, outset, len(subsets),
                          float(np.mean([sum(seconds[i] for i in s) for s in subsets])),
                          float(np.mean([sum(tokens[i] for i in s) for s in subsets])), fusion.alpha,
                          fusion.n_items_used, held)
        if done is not None and key:
            done[key] = (by_k[k], {i: v for i, v in singles.items() if k == 1 and (i,) in subsets})
    return by_k, singles


def average(results: list[dict[int, KResult]]) -> dict[int, KResult]:
    """The per-query mean of several sweeps (the permutations of a shuffled control), over those where defined."""
    out = {}
    for k in results[0]:
        parts = [r[k] for r in results]
        with warnings.catch_warnings():  # a query in-set (or out-of-set) under none of them stays NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            means = [np.nanmean([getattr(p, f) for p in parts], axis=0) for f in ("all", "inset", "outset")]
        out[k] = KResult(*means, sum(p.subsets for p in parts), float(np.mean([p.seconds for p in parts])),
                         float(np.mean([p.tokens for p in parts])), parts[0].alpha, parts[0].items)
    return out
