"""The scaling experiment: retrieval accuracy of each method as the number k of target languages grows.

Design (what it measures is languages, not weight or order):
- for every k, every subset of k languages (``scaling.subsets``: all | first | random:R) augments
  the corpus; a query's measure at k is averaged over the subsets that hold its language (in-set),
  over those that do not (out-of-set), and over all of them (all);
- the fusion weight is fixed across k (``fixed``); the reference's growing sum (``per_item``) runs
  beside it, to show what that confound does;
- every method gets content-free controls under the first weight mode: ``shuffled`` (its items
  reassigned across the passages that have items, keeping coverage; ``scaling.permutations``
  permutations, each evaluated on one subset per k, cycling through the subsets; averaged, and
  their spread as a null distribution) and ``centroid`` (each covered passage gets its language's
  mean item vector);
- gains are tested at the level of the question (``xaug.stats``), Holm over each table's family;
- k = 1 gives the transfer matrix: the gain for queries in Y when passages are augmented with X alone.
"""
from __future__ import annotations

import itertools
import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from tqdm import tqdm

from .errors import ConfigError
from .fusion import FusionSettings, LanguageItems, combine
from .metrics import ALL_MEASURES
from .ranking import RankScorer
from .search import FaissSearcher
from .stats import cluster_means, cluster_test, holm

TESTED = ("nDCG@10", "R@2kt")
CROSS = ("all", "in-set", "out-of-set")
SAME = "same-language"  # queries in the corpus language: what augmentation costs them
GROUPS = CROSS + (SAME,)


def subset_plan(n: int, mode: str, seed: int = 0) -> dict[int, list[tuple[int, ...]]]:
    """k = 1..n -> the subsets of language indices evaluated at k (``scaling.subsets``)."""
    if mode == "all":
        return {k: list(itertools.combinations(range(n), k)) for k in range(1, n + 1)}
    if mode == "first":
        return {k: [tuple(range(k))] for k in range(1, n + 1)}
    r = mode.removeprefix("random:") if isinstance(mode, str) else ""
    if not (isinstance(mode, str) and mode.startswith("random:") and r.isdigit() and int(r) > 0):
        raise ConfigError(f"scaling.subsets: expected all, first or random:R (R a positive integer), got {mode!r}")
    r, rng, plan = int(r), np.random.default_rng(seed), {}
    for k in range(1, n + 1):
        if math.comb(n, k) <= r:
            plan[k] = list(itertools.combinations(range(n), k))
            continue
        chosen: set[tuple[int, ...]] = set()
        while len(chosen) < r:
            chosen.add(tuple(sorted(rng.choice(n, k, replace=False).tolist())))
        plan[k] = sorted(chosen)
    return plan


@dataclass
class QuerySet:
    """The evaluation queries of one corpus setting, and a scorer of passage matrices against them."""

    vectors: np.ndarray       # (Q, dim)
    lang: np.ndarray          # (Q,) index into `languages`; -1 = the corpus language
    clusters: np.ndarray      # (Q,) question id: a question and its translations form one cluster
    scorer: RankScorer
    setting: str
    factory: str = "Flat"
    search_params: str = ""

    @classmethod
    def from_evaluator(cls, evaluator, languages: list[str], passage_ids: list[str], factory: str = "Flat",
                       search_params: str = "") -> "QuerySet":
        index = {lang: i for i, lang in enumerate(languages)}
        lang = np.array([index.get(evaluator.query_lang[q], -1) for q in evaluator.query_ids])
        clusters = np.array([evaluator.query_cluster[q] for q in evaluator.query_ids])
        return cls(np.ascontiguousarray(evaluator.query_vectors, dtype=np.float32), lang, clusters,
                   RankScorer.from_evaluator(evaluator, passage_ids), evaluator.setting, factory, search_params)

    def measures(self, scores: np.ndarray) -> np.ndarray:
        """Every measure of ALL_MEASURES per query, (M, Q), from a (Q, N) score matrix."""
        values = self.scorer.score(scores)
        return np.stack([values[m] for m in ALL_MEASURES])

    def score(self, passages: np.ndarray) -> np.ndarray:
        """Every measure of ALL_MEASURES per query, (M, Q), for the corpus as ``passages``."""
        if self.factory == "Flat":
            scores = self.vectors @ np.asarray(passages, dtype=np.float32).T
        else:  # an approximate index ranks only what it finds
            searcher = FaissSearcher.build(passages, [str(i) for i in range(len(passages))], self.factory,
                                           self.search_params)
            found, idx = searcher.search_positions(self.vectors, len(passages))
            scores = np.full((len(self.vectors), len(passages)), -np.inf, dtype=np.float32)
            rows = np.repeat(np.arange(len(idx)), idx.shape[1]).reshape(idx.shape)
            scores[rows[idx >= 0], idx[idx >= 0]] = found[idx >= 0]
        return self.measures(scores)


class Projection:
    """Query scores of any fusion of a set of languages, without building the fused passages.

    With ``p' = w0 p + w1 T`` (T the summed items of the subset, w0 and w1 per passage from alpha, the
    weight mode and the item count), ``q . p' = (w0 q.p + w1 q.T) / |p'|`` and
    ``|p'|^2 = w0^2 p.p + 2 w0 w1 p.T + w1^2 T.T``: per language, ``q . sums`` (Q, N), ``p . sums`` (N,)
    and the Gram terms ``sums_a . sums_b`` (N,) are computed once, and a subset adds them up. Exact
    for an exhaustive (Flat) index; equal to ``QuerySet.score(combine(...))`` up to float rounding."""

    def __init__(self, queries: "QuerySet", passages: np.ndarray, items: list[LanguageItems]):
        self.queries = queries
        p = np.asarray(passages, dtype=np.float32)
        self.qp = queries.vectors @ p.T
        self.pp = np.einsum("nd,nd->n", p, p, dtype=np.float64)
        self.qs = [queries.vectors @ it.sums.T for it in items]
        self.ps = [np.einsum("nd,nd->n", p, it.sums, dtype=np.float64) for it in items]
        self.gram = {(a, b): np.einsum("nd,nd->n", items[a].sums, items[b].sums, dtype=np.float64)
                     for a in range(len(items)) for b in range(a, len(items))}
        self.counts = [it.counts for it in items]
        self._items, self._scores = np.empty_like(self.qp), np.empty_like(self.qp)

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
            scale0, scale1 = w0 / norm, w1 / norm
        # in two buffers reused across subsets (the returned scores are valid until the next call)
        qt = np.copyto(self._items, self.qs[subset[0]]) or self._items
        for i in subset[1:]:
            qt += self.qs[i]
        qt *= scale1.astype(np.float32)
        out = np.multiply(self.qp, scale0.astype(np.float32), out=self._scores)
        out += qt
        return out


@dataclass
class KResult:
    """Per-query measures (M, Q) at one k, averaged over the subsets evaluated: all of them, those that
    hold the query's language (in-set) and those that do not (out-of-set); NaN where there is none."""

    all: np.ndarray
    inset: np.ndarray
    outset: np.ndarray
    subsets: int
    seconds: float
    tokens: float

    def group(self, name: str) -> np.ndarray:
        return {"all": self.all, "in-set": self.inset, "out-of-set": self.outset, SAME: self.all}[name]


@dataclass
class Sweep:
    """One variant of one method under one weight mode: k -> KResult, and each single language's values."""

    method: str
    variant: str  # method | shuffled | centroid
    weight: str
    by_k: dict[int, KResult]
    singles: dict[int, np.ndarray] = field(default_factory=dict)
    null: list[dict[int, KResult]] = field(default_factory=list)  # shuffled: one sweep per permutation

    @property
    def name(self) -> str:
        return self.method if self.variant == "method" else f"{self.method}-{self.variant}"


def sweep(queries: QuerySet, passages: np.ndarray, items: list[LanguageItems], settings: FusionSettings,
          plan: dict[int, list[tuple[int, ...]]], seconds: list[float], tokens: list[int],
          ) -> tuple[dict[int, KResult], dict[int, np.ndarray]]:
    """Evaluate every planned subset; average per query by k and group."""
    by_k, singles = {}, {}
    projection = Projection(queries, passages, items) if queries.factory == "Flat" else None
    for k, subsets in plan.items():
        total = np.zeros((len(ALL_MEASURES), len(queries.lang)))
        inside, outside = np.zeros_like(total), np.zeros_like(total)
        n_in = np.zeros(len(queries.lang))
        for subset in subsets:
            values = queries.measures(projection.scores(subset, settings)) if projection else \
                queries.score(combine(passages, [items[i] for i in subset], settings))
            held = np.isin(queries.lang, subset)
            total += values
            inside += values * held
            outside += values * ~held
            n_in += held
            if k == 1:
                singles[subset[0]] = values
        n_out = len(subsets) - n_in
        with np.errstate(invalid="ignore", divide="ignore"):
            by_k[k] = KResult(total / len(subsets), np.where(n_in > 0, inside / n_in, np.nan),
                              np.where(n_out > 0, outside / n_out, np.nan), len(subsets),
                              float(np.mean([sum(seconds[i] for i in s) for s in subsets])),
                              float(np.mean([sum(tokens[i] for i in s) for s in subsets])))
    return by_k, singles


def shuffled_items(items: list[LanguageItems], rng: np.random.Generator) -> list[LanguageItems]:
    """Each language's items reassigned at random among the passages that have items (coverage kept)."""
    out = []
    for lang in items:
        covered = np.flatnonzero(lang.counts > 0)
        source = rng.permutation(covered)
        sums, counts = lang.sums.copy(), lang.counts.copy()
        sums[covered], counts[covered] = lang.sums[source], lang.counts[source]
        out.append(LanguageItems(sums, counts))
    return out


def centroid_items(items: list[LanguageItems]) -> list[LanguageItems]:
    """Each covered passage's items replaced by its language's mean item vector (same counts)."""
    out = []
    for lang in items:
        centre = lang.sums.sum(axis=0) / max(int(lang.counts.sum()), 1)
        out.append(LanguageItems(lang.counts[:, None].astype(np.float32) * centre[None, :].astype(np.float32),
                                 lang.counts.copy()))
    return out


def average(results: list[dict[int, KResult]]) -> dict[int, KResult]:
    """The per-query mean of several sweeps (the permutations of a shuffled control), over those where defined."""
    out = {}
    for k in results[0]:
        parts = [r[k] for r in results]
        with warnings.catch_warnings():  # a query in-set (or out-of-set) under none of them stays NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            means = [np.nanmean([getattr(p, f) for p in parts], axis=0) for f in ("all", "inset", "outset")]
        out[k] = KResult(*means, sum(p.subsets for p in parts), float(np.mean([p.seconds for p in parts])),
                         float(np.mean([p.tokens for p in parts])))
    return out


# --- tables -------------------------------------------------------------------------------------------


def _members(queries: QuerySet, group: str, values: np.ndarray) -> np.ndarray:
    defined = ~np.isnan(values[0])
    return defined & ((queries.lang < 0) if group == SAME else (queries.lang >= 0))


class _Tests:
    """Cluster-level tests collected from many rows, run as few vectorised calls (rows sharing members)."""

    def __init__(self, queries: QuerySet, resamples: int, seed: int):
        self.queries, self.resamples, self.seed = queries, resamples, seed
        self.pending: dict[bytes, list] = {}

    def add(self, row: dict, measure: str, diff: np.ndarray, members: np.ndarray) -> None:
        self.pending.setdefault(members.tobytes(), []).append((row, measure, diff[members], members))

    def cluster_diffs(self, diff: np.ndarray, members: np.ndarray) -> np.ndarray:
        return cluster_means(diff[members], self.queries.clusters[members])

    def run(self) -> None:
        for entries in self.pending.values():
            members = entries[0][3]
            labels = self.queries.clusters[members]
            diffs = cluster_means(np.stack([e[2] for e in entries]), labels)
            for start in range(0, len(diffs), 64):  # bounded memory: rows x clusters x resample batch
                chunk = slice(start, start + 64)
                t = cluster_test(diffs[chunk], self.resamples, self.seed)
                for (row, m, _, _), d, lo, hi, p in zip(entries[chunk], t.delta, t.low, t.high, t.p):
                    row.update({f"delta_{m}": d, f"ci_low_{m}": lo, f"ci_high_{m}": hi, f"p_{m}": p})
                    row["clusters"] = t.clusters
        self.pending.clear()


def _holm(frame: pd.DataFrame) -> pd.DataFrame:
    for m in TESTED:
        frame[f"p_holm_{m}"] = np.nan
        for _, idx in frame.groupby("family").groups.items():
            frame.loc[idx, f"p_holm_{m}"] = holm(frame.loc[idx, f"p_{m}"].to_numpy(dtype=float))
    return frame


def gain_table(queries: QuerySet, baseline: np.ndarray, sweeps: list[Sweep], resamples: int, seed: int) -> pd.DataFrame:
    """One row per (variant, weight mode, k, group): mean measures, and per tested measure the question-level
    gain over the baseline on the same queries with its 95% CI and p (Holm over each family: one corpus
    setting, weight mode, kind (method | control), group and measure; methods x k)."""
    tests, rows = _Tests(queries, resamples, seed), []
    for s in sweeps:
        for k, res in s.by_k.items():
            for group in GROUPS:
                values = res.group(group)
                members = _members(queries, group, values)
                if not members.any():
                    continue
                row = {"setting": queries.setting, "method": s.name, "base_method": s.method, "variant": s.variant,
                       "weight": s.weight, "k": k, "group": group, "queries": int(members.sum()),
                       "subsets": res.subsets, "generation_seconds": round(res.seconds, 2),
                       "generated_tokens": round(res.tokens, 1),
                       "family": f"{queries.setting}|{s.weight}|{'method' if s.variant == 'method' else 'control'}|{group}"}
                row.update({m: float(values[i][members].mean()) for i, m in enumerate(ALL_MEASURES)})
                for m in TESTED:
                    i = ALL_MEASURES.index(m)
                    tests.add(row, m, values[i] - baseline[i], members)
                rows.append(row)
    tests.run()
    return _holm(pd.DataFrame(rows)) if rows else pd.DataFrame()


def contrast_table(queries: QuerySet, pairs: list[tuple[Sweep, Sweep, str]], baseline: np.ndarray, resamples: int,
                   seed: int) -> pd.DataFrame:
    """``a - b`` on the same queries at every k and group (question-level delta, CI, p; Holm per family:
    setting, kind of contrast, group, measure). For a shuffled control ``b``, also ``p_perm_<m>``: the share
    of its permutations whose question-level gain reaches the method's (one-sided, (1 + #) / (1 + R))."""
    tests, rows = _Tests(queries, resamples, seed), []
    for a, b, kind in pairs:
        for k in a.by_k:
            if k not in b.by_k:
                continue
            for group in GROUPS:
                va, vb = a.by_k[k].group(group), b.by_k[k].group(group)
                members = _members(queries, group, va)
                if not members.any():
                    continue
                row = {"setting": queries.setting, "a": a.name, "b": b.name, "weight": a.weight, "kind": kind, "k": k,
                       "group": group, "queries": int(members.sum()), "family": f"{queries.setting}|{kind}|{group}"}
                for m in TESTED:
                    i = ALL_MEASURES.index(m)
                    tests.add(row, m, va[i] - vb[i], members)
                    if b.null:
                        observed = tests.cluster_diffs(va[i] - baseline[i], members).mean()
                        # a permutation covers one subset per k: its group holds the questions defined there
                        null = np.array([np.nanmean(tests.cluster_diffs(r[k].group(group)[i] - baseline[i],
                                                                        members)) for r in b.null])
                        row[f"p_perm_{m}"] = (1 + int(np.sum(null >= observed))) / (1 + len(null))
                rows.append(row)
    tests.run()
    return _holm(pd.DataFrame(rows)) if rows else pd.DataFrame()


def transfer(queries: QuerySet, baseline: np.ndarray, s: Sweep, languages: list[str], resamples: int, seed: int,
             measure: str = "nDCG@10") -> dict:
    """Gain for queries in Y when passages are augmented with X alone (rows X, columns Y), and the
    question-level test of same-language (diagonal) against other-language (off-diagonal) augmentation."""
    i = ALL_MEASURES.index(measure)
    gain = {x: s.singles[x][i] - baseline[i] for x in s.singles}
    matrix = [[float(np.mean(gain[x][queries.lang == y])) if x in gain and (queries.lang == y).any() else None
               for y in range(len(languages))] for x in range(len(languages))]
    cross = queries.lang >= 0
    if len(gain) < len(languages) or len(languages) < 2 or not cross.any():
        return {"measure": measure, "languages": languages, "gain": matrix}
    lang = np.where(cross, queries.lang, 0)
    stacked = np.stack([gain[x] for x in range(len(languages))])                 # (X, Q)
    diagonal = stacked[lang, np.arange(len(lang))]
    off = (stacked.sum(axis=0) - diagonal) / (len(languages) - 1)
    labels = queries.clusters[cross]
    parts = cluster_means(np.stack([diagonal[cross], off[cross], diagonal[cross] - off[cross]]), labels)
    t = cluster_test(parts, resamples, seed)
    summary = {name: {"delta": round(float(t.delta[j]), 6), "ci_low": round(float(t.low[j]), 6),
                      "ci_high": round(float(t.high[j]), 6), "p": round(float(t.p[j]), 6)}
               for j, name in enumerate(("diagonal", "off_diagonal", "diagonal_minus_off_diagonal"))}
    return {"measure": measure, "languages": languages, "gain": [[None if v is None else round(v, 6) for v in r]
                                                                 for r in matrix],
            "queries": {languages[y]: int((queries.lang == y).sum()) for y in range(len(languages))},
            "clusters": t.clusters, **summary}


_TASK_CONTEXT: dict = {}  # what forked workers inherit: queries, passages, methods, fusion settings, plan


def _run_variant(task: tuple[str, str, str, int]) -> tuple[dict[int, KResult], dict[int, np.ndarray]]:
    """One sweep: method ``name`` under ``weight``, as itself, a shuffled permutation or its centroids."""
    name, variant, weight, perm = task
    ctx = _TASK_CONTEXT
    method, fusion, plan = ctx["methods"][name], ctx["settings"][name][weight], ctx["plan"]
    items = method.reduced(fusion.n_items_used)
    if variant == "shuffled":
        items = shuffled_items(items, np.random.default_rng([ctx["seed"], perm]))
        plan = permutation_plan(plan, perm)
    elif variant == "centroid":
        items = centroid_items(items)
    return sweep(ctx["queries"], ctx["passages"], items, fusion, plan, method.seconds, method.tokens)


def permutation_plan(plan: dict[int, list[tuple[int, ...]]], perm: int) -> dict[int, list[tuple[int, ...]]]:
    """The one subset per k that shuffled permutation ``perm`` is evaluated on: permutations cycle through
    the planned subsets, so their average covers the subsets evenly at a fraction of the cost."""
    return {k: [subsets[perm % len(subsets)]] for k, subsets in plan.items()}


def _map(tasks: list, workers: int, desc: str) -> list:
    """``_run_variant`` over ``tasks`` in ``workers`` forked processes (in order; 1 = in this process)."""
    if workers <= 1:
        return [_run_variant(t) for t in tqdm(tasks, desc=desc, unit="sweep", mininterval=5)]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
        return list(tqdm(pool.map(_run_variant, tasks), total=len(tasks), desc=desc, unit="sweep", mininterval=5))


def run_setting(queries: QuerySet, passages: np.ndarray, methods: dict, settings: dict, plan: dict, weights: list[str],
                permutations: int, seed: int, resamples: int, languages: list[str], workers: int = 1):
    """Every method, weight mode and control of one corpus setting: (gains, contrasts, transfer).

    Each sweep (a method under a weight mode, one shuffled permutation, the centroids) covers every
    planned subset; sweeps run in ``workers`` processes. Permutation j of any method draws from
    ``default_rng([seed, j])``, so results do not depend on ``workers``."""
    passages = np.asarray(passages, dtype=np.float32)
    baseline = queries.score(passages)
    first = weights[0]
    tasks = [(n, "method", w, 0) for n in methods for w in weights]
    tasks += [(n, "shuffled", first, j) for n in methods for j in range(permutations)]
    tasks += [(n, "centroid", first, 0) for n in methods]
    _TASK_CONTEXT.update(queries=queries, passages=passages, methods=methods, settings=settings, plan=plan, seed=seed)
    try:
        results = dict(zip(tasks, _map(tasks, workers, f"scaling ({queries.setting})")))
    finally:
        _TASK_CONTEXT.clear()
    sweeps: dict[tuple[str, str, str], Sweep] = {}
    for (n, variant, w, _), (by_k, singles) in results.items():
        if variant != "shuffled":
            sweeps[n, variant, w] = Sweep(n, variant, w, by_k, singles)
    for n in methods:
        null = [results[n, "shuffled", first, j][0] for j in range(permutations)]
        if null:
            sweeps[n, "shuffled", first] = Sweep(n, "shuffled", first, average(null), null=null)
    gains = pd.concat([_baseline_rows(queries, first, baseline),
                       gain_table(queries, baseline, list(sweeps.values()), resamples, seed)], ignore_index=True)
    pairs = [(sweeps[n, "method", first], sweeps[n, v, first], f"method-{v}")
             for n in methods for v in ("shuffled", "centroid") if (n, v, first) in sweeps]
    pairs += [(sweeps[a, "method", first], sweeps[b, "method", first], "between-methods")
              for a, b in itertools.combinations(list(methods), 2)]
    contrasts = contrast_table(queries, pairs, baseline, resamples, seed)
    transfers = {n: transfer(queries, baseline, sweeps[n, "method", first], languages, resamples, seed)
                 for n in methods if sweeps[n, "method", first].singles}
    return gains, contrasts, transfers


def _baseline_rows(queries: QuerySet, weight: str, baseline: np.ndarray) -> pd.DataFrame:
    rows = []
    for group in ("all", SAME):
        members = _members(queries, group, baseline)
        if members.any():
            rows.append({"setting": queries.setting, "method": "baseline", "base_method": "baseline",
                         "variant": "method", "weight": weight, "k": 0, "group": group,
                         "queries": int(members.sum()),
                         "clusters": len(np.unique(queries.clusters[members])), "subsets": 1,
                         "generation_seconds": 0.0, "generated_tokens": 0.0, "family": "",
                         **{m: float(baseline[i][members].mean()) for i, m in enumerate(ALL_MEASURES)}})
    return pd.DataFrame(rows)
