"""The statistics tables of the scaling experiment, built from its sweeps: gains over the baseline,
contrasts (a method against its controls and against the other methods), the transfer matrix, and the
comparison report of the contrasts.

Every gain is tested at the level of the relevant passage (``xaug.stats``): per tested measure a delta
(the mean over passage clusters of the per-cluster mean difference) with its 95% CI and p, Holm over each
table's family, with enough resamples for that family (``resamples`` column); contrasts also carry the
TOST p of equivalence within ``scaling.equivalence_margin``.
"""
from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd

from .metrics import ALL_MEASURES
from .queryset import QuerySet
from .stats import cluster_means, cluster_test, equivalence_test, family_resamples, holm
from .sweep import GROUPS, SAME, Sweep

TESTED = ("nDCG@10", "R@2kt")
MEANS_BYTES = 32 << 20  # per-query differences (float64) averaged within clusters at once, per thread, at most


def _members(queries: QuerySet, group: str, values: np.ndarray) -> np.ndarray:
    defined = ~np.isnan(values[0])
    return defined & ((queries.lang < 0) if group == SAME else (queries.lang >= 0))


class _Tests:
    """Cluster-level tests collected from many rows, run as few vectorised calls (rows sharing members).
    Every test of a table gets the resamples its largest Holm family needs (``xaug.stats.family_resamples``);
    with a ``margin``, also the equivalence (TOST) p."""

    def __init__(self, queries: QuerySet, resamples: int, seed: int, margin: float | None = None, workers: int = 1):
        self.queries, self.resamples, self.seed, self.margin, self.workers = queries, resamples, seed, margin, workers
        self.pending: dict[bytes, list] = {}
        self.rows: list[dict] = []

    def add_row(self, row: dict, diffs: np.ndarray, members: np.ndarray) -> None:
        """A row of the table, tested on each ``TESTED`` measure of ``diffs`` (measures x queries) over ``members``."""
        for m in TESTED:
            self.add(row, m, diffs[ALL_MEASURES.index(m)], members)
        self.rows.append(row)

    def table(self) -> pd.DataFrame:
        """The rows with their tests run and Holm applied per family."""
        self.run()
        return _holm(pd.DataFrame(self.rows)) if self.rows else pd.DataFrame()

    def add(self, row: dict, measure: str, diff: np.ndarray, members: np.ndarray) -> None:
        self.pending.setdefault(members.tobytes(), []).append((row, measure, diff[members], members))

    def run(self) -> None:
        """Every pending test, the groups of rows sharing members in ``workers`` threads (numpy's draws, counts and
        matrix products run outside the GIL; each group's draws are its own generator's, so the results do not
        depend on ``workers``)."""
        largest = max(Counter(row["family"] for row in self.rows).values(), default=1)
        resamples = family_resamples(self.resamples, largest)
        groups = list(self.pending.values())
        with ThreadPoolExecutor(max(1, self.workers)) as pool:
            done = list(pool.map(lambda entries: self._test(entries, resamples), groups))
        for entries, (t, tost) in zip(groups, done):
            for j, ((row, m, _, _), d, lo, hi, p) in enumerate(zip(entries, t.delta, t.low, t.high, t.p)):
                row.update({f"delta_{m}": d, f"ci_low_{m}": lo, f"ci_high_{m}": hi, f"p_{m}": p})
                if tost is not None:
                    row[f"p_tost_{m}"] = tost[j]
                row.update(clusters=t.clusters, resamples=resamples)
        self.pending.clear()

    def _test(self, entries: list, resamples: int):
        """The cluster test (and TOST p with a margin) of one group's rows (``add``'s entries, one members mask).
        The rows are averaged within clusters ``MEANS_BYTES`` of them at a time: a table's largest group (every
        row of the "all" group: hundreds of rows over 80,000 queries at P = 100k) would otherwise stack them all
        and hold several times their size at once, in each thread."""
        labels = self.queries.clusters[entries[0][3]]
        step = max(1, MEANS_BYTES // (8 * max(len(labels), 1)))
        diffs = np.concatenate([cluster_means(np.stack([e[2] for e in entries[i:i + step]]), labels)
                                for i in range(0, len(entries), step)])
        t = cluster_test(diffs, resamples, self.seed)  # memory bounded within (xaug.stats._row_chunks)
        return t, equivalence_test(diffs, self.margin, resamples, self.seed) if self.margin else None


def _holm(frame: pd.DataFrame) -> pd.DataFrame:
    for m in TESTED:
        frame[f"p_holm_{m}"] = np.nan
        for _, idx in frame.groupby("family").groups.items():
            frame.loc[idx, f"p_holm_{m}"] = holm(frame.loc[idx, f"p_{m}"].to_numpy(dtype=float))
    return frame


def _kind(s: Sweep) -> str:
    """The Holm family kind of a sweep's gains: the methods, their content-free controls, the variants of a
    method's fusion (one alpha, equal items), the normalisation baseline."""
    if s.method == "normalisation":
        return "normalisation"
    return {"method": "method", "shuffled": "control", "centroid": "control"}.get(s.variant, "variant")


def baseline_rows(queries: QuerySet, weight: str, baseline: np.ndarray) -> pd.DataFrame:
    """The baseline's rows of the gains table (k = 0; all cross-lingual queries and the corpus language's)."""
    rows = []
    for group in ("all", SAME):
        members = _members(queries, group, baseline)
        if members.any():
            rows.append({"setting": queries.setting, "method": "baseline", "base_method": "baseline",
                         "variant": "method", "weight": weight, "renormalize": False, "primary": True, "alpha": 0.0,
                         "items": np.nan, "k": 0, "group": group,
                         "queries": int(members.sum()),
                         "clusters": len(np.unique(queries.clusters[members])), "subsets": 1,
                         "generation_seconds": 0.0, "generated_tokens": 0.0, "family": "",
                         **{m: float(baseline[i][members].mean()) for i, m in enumerate(ALL_MEASURES)}})
    return pd.DataFrame(rows)


def gain_table(queries: QuerySet, baseline: np.ndarray, sweeps: list[Sweep], resamples: int, seed: int,
               workers: int = 1) -> pd.DataFrame:
    """One row per (variant, weight mode, renormalize state, k, group): mean measures, and per tested measure the
    passage-level gain over the baseline on the same queries with its 95% CI and p (Holm over each family: one
    corpus setting, weight mode, renormalize state, kind (``_kind``), group and measure; methods x k).
    ``primary``: the configured fusion (the headline); ``workers``: threads running the tests (the same results)."""
    tests = _Tests(queries, resamples, seed, workers=workers)
    for s in sweeps:
        for k, res in s.by_k.items():
            for group in GROUPS:
                values = res.group(group)
                members = _members(queries, group, values)
                if not members.any():
                    continue
                norm = "renormalized" if s.renormalize else "raw"
                row = {"setting": queries.setting, "method": s.name, "base_method": s.method, "variant": s.variant,
                       "weight": s.weight, "renormalize": s.renormalize, "primary": s.primary,
                       "alpha": np.nan if res.alpha is None else res.alpha,
                       "items": np.nan if res.items is None else res.items, "k": k, "group": group,
                       "queries": int(members.sum()), "subsets": res.subsets,
                       "generation_seconds": round(res.seconds, 2), "generated_tokens": round(res.tokens, 1),
                       "family": f"{queries.setting}|{s.weight}|{norm}|{_kind(s)}|{group}"}
                row.update({m: float(values[i][members].mean()) for i, m in enumerate(ALL_MEASURES)})
                tests.add_row(row, values - baseline, members)
    return tests.table()


def contrast_table(queries: QuerySet, pairs: list[tuple[Sweep, Sweep, str]], resamples: int, seed: int,
                   margin: float, workers: int = 1) -> pd.DataFrame:
    """``a - b`` on the same queries at every k of both and group (passage-level delta, CI, p; Holm per family:
    setting, renormalize state, kind of contrast, group, measure), and ``p_tost_<m>``: the TOST p that the difference lies
    within ``margin`` (``scaling.equivalence_margin``), for the claims of no difference; ``workers``: threads
    running the tests (the same results)."""
    tests = _Tests(queries, resamples, seed, margin, workers)
    for a, b, kind in pairs:
        for k in a.by_k:
            if k not in b.by_k:
                continue
            for group in GROUPS:
                va, vb = a.by_k[k].group(group), b.by_k[k].group(group)
                members = _members(queries, group, va)
                if not members.any():
                    continue
                norm = "renormalized" if a.renormalize else "raw"
                row = {"setting": queries.setting, "a": a.name, "b": b.name, "weight": a.weight,
                       "renormalize": a.renormalize, "primary": a.primary, "kind": kind, "k": k, "group": group,
                       "queries": int(members.sum()), "family": f"{queries.setting}|{norm}|{kind}|{group}",
                       "margin": margin}
                tests.add_row(row, va - vb, members)
    return tests.table()


def transfer(queries: QuerySet, baseline: np.ndarray, s: Sweep, languages: list[str], resamples: int, seed: int,
             measure: str = "nDCG@10") -> dict:
    """Gain for queries in Y when passages are augmented with X alone (rows X, columns Y) with each cell's
    passage-level test (``ci_low``, ``ci_high`` and Holm ``p_holm`` over the cells), and the test of
    same-language (diagonal) against other-language (off-diagonal) augmentation."""
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
    cells = _transfer_cells(queries, stacked, len(languages), resamples, seed)
    return {"measure": measure, "languages": languages, "gain": [[None if v is None else round(v, 6) for v in r]
                                                                 for r in matrix], **cells,
            "queries": {languages[y]: int((queries.lang == y).sum()) for y in range(len(languages))},
            "clusters": t.clusters, **summary}


def _transfer_cells(queries: QuerySet, gains: np.ndarray, n: int, resamples: int, seed: int) -> dict:
    """Each transfer cell's passage-level 95% CI and Holm p over the n x n cells (one family), rows X
    (augmenting language), columns Y (query language): ``gains`` (X, Q) holds every query's gain under X."""
    low, high, p = (np.full((n, n), np.nan) for _ in range(3))
    resamples = family_resamples(resamples, n * n)
    for y in range(n):
        members = queries.lang == y
        if members.any():
            t = cluster_test(cluster_means(gains[:, members], queries.clusters[members]), resamples, seed)
            low[:, y], high[:, y], p[:, y] = t.low, t.high, t.p
    p = holm(p.ravel()).reshape(n, n)

    def rounded(m):
        return [[None if np.isnan(v) else round(float(v), 6) for v in row] for row in m]

    return {"ci_low": rounded(low), "ci_high": rounded(high), "p_holm": rounded(p), "cell_resamples": resamples}


def comparison_report(contrasts: pd.DataFrame) -> dict:
    """{setting: {"a - b": {k: {group: {delta/ci/p/p_holm per tested measure, queries, clusters}}}}}; a contrast
    under the other renormalize state than the configured one is keyed "a - b (raw)" (or "(renormalized)")."""
    report: dict = {}
    for _, row in contrasts.iterrows():
        entry = {key: (None if pd.isna(v) else round(float(v), 6)) for key, v in row.items()
                 if key.startswith(("delta_", "ci_", "p_"))}
        entry.update(queries=int(row["queries"]), clusters=int(row["clusters"]))
        name = f"{row['a']} - {row['b']}" + ("" if row["primary"] else
                                             " (renormalized)" if row["renormalize"] else " (raw)")
        report.setdefault(row["setting"], {}).setdefault(name, {}).setdefault(str(int(row["k"])), {})[row["group"]] = entry
    return report
