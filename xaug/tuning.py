"""Choosing the fusion weight off the test set: a small grid on the tuning questions, for every k.

The tune split's questions (articles of the training split that no generator or translator trained
on) search the full corpus, in the corpus setting the method is reported in (parallel_contexts: the
parallel one, where its coverage does not leak the answer). For each method, weight mode, renormalize
state (on and off) and number k of augmenting languages, each grid point (alpha x n_queries_used, the
latter for xqg only) is scored by the question-level mean of ``tune.measure`` averaged over the planned
subsets of k languages (``scaling.subsets``), and the best point wins (ties: the smaller alpha, then
fewer queries): the sweep then uses each k's own choice. The normalisation baseline's strength
(``xaug.hubness``) is chosen the same way, per corpus setting. The held-out evaluation questions choose
nothing.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .errors import ConfigError
from .fusion import FusionSettings
from .hubness import centred, centring_grid
from .methods import METHODS, NORMS, AugmentSettings
from .metrics import ALL_MEASURES
from .params import check_int
from .pool import forked_map
from .stats import cluster_means
from .sweep import PassageTerms, SubsetScorer, block_candidates, found_tops


@dataclass
class TuneSettings:
    """The ``tune`` params group: the grid (alphas x n_queries_used, the latter for xqg only) and the measure."""

    alphas: list[float] = field(default_factory=lambda: [0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9])
    n_queries_used: list[int] = field(default_factory=lambda: [1, 2, 3])  # each <= xqg.n_queries
    measure: str = "nDCG@10"

    def __post_init__(self):
        if not isinstance(self.n_queries_used, list) or not self.n_queries_used:
            raise ConfigError(f"tune.n_queries_used: expected a non-empty list of positive integers, "
                              f"got {self.n_queries_used!r}")
        for n in self.n_queries_used:
            check_int(n, "tune.n_queries_used")
        if self.measure not in ALL_MEASURES:
            raise ConfigError(f"tune.measure: expected one of {ALL_MEASURES}, got {self.measure!r}")
        if not isinstance(self.alphas, list) or not self.alphas or any(
                isinstance(a, bool) or not isinstance(a, (int, float)) or not 0 < a <= 1 for a in self.alphas):
            raise ConfigError(f"tune.alphas: expected a non-empty list of numbers in (0, 1], got {self.alphas!r}")

    def check_generated(self, n_generated: int) -> None:
        """Each ``n_queries_used`` at most the ``n_generated`` queries generated per passage (``xqg.n_queries``)."""
        for n in self.n_queries_used:
            check_int(n, "tune.n_queries_used", maximum=n_generated, note="each at most xqg.n_queries")


def _question_mean(values: np.ndarray, cross: np.ndarray, clusters: np.ndarray) -> float:
    return float(cluster_means(values[cross], clusters[cross]).mean())


def best_point(grid: list[dict], measure: str) -> dict:
    """The winning grid point: the best ``measure``; ties: the smaller alpha, then fewer queries."""
    return max(grid, key=lambda g: (g[measure], -g["alpha"], -(g["n_queries_used"] or 0)))


def alpha_grid(scorer: SubsetScorer, plan: dict[int, list[tuple[int, ...]]], alphas: list[float], weight: str,
               renormalize: bool, n_used: int | None, name: str, measure: str) -> dict[int, list[dict]]:
    """k -> one grid point per alpha: the question-level mean of ``measure`` over the cross-lingual queries of
    ``scorer``, averaged over the planned subsets of k languages."""
    values = grid_values(scorer, plan, alphas, weight, renormalize, n_used, name, measure)
    return grid_points(values, scorer.queries, alphas, n_used, measure)


def grid_values(scorer: SubsetScorer, plan: dict[int, list[tuple[int, ...]]], alphas: list[float], weight: str,
                renormalize: bool, n_used: int | None, name: str, measure: str) -> dict[int, np.ndarray]:
    """k -> (subsets, alphas, Q) per-query ``measure`` of ``scorer``'s queries under each planned subset and alpha."""
    return {k: np.array([[scorer(subset, FusionSettings(alpha, weight, renormalize, n_used, f"augment.{name}"),
                                 [measure])[0] for alpha in alphas] for subset in subsets])
            for k, subsets in plan.items()}


def grid_points(values: dict[int, np.ndarray], queries, alphas: list[float], n_used: int | None,
                measure: str) -> dict[int, list[dict]]:
    """``alpha_grid``'s points from ``grid_values`` (of every query of ``queries``): per subset the
    question-level mean over the cross-lingual queries, averaged over the subsets."""
    cross = queries.lang >= 0
    out = {}
    for k, per_subset in values.items():
        sums = np.zeros(len(alphas))
        for subset_values in per_subset:
            for j in range(len(alphas)):
                sums[j] += _question_mean(subset_values[j], cross, queries.clusters)
        out[k] = [{"alpha": alpha, "n_queries_used": n_used, measure: round(float(s / len(per_subset)), 6)}
                  for alpha, s in zip(alphas, sums)]
    return out


def choose_alphas(scorer: SubsetScorer, plan: dict[int, list[tuple[int, ...]]], alphas: list[float], weight: str,
                  renormalize: bool, name: str, measure: str) -> dict[int, float]:
    """k -> the grid's best alpha (``best_point``) for one method's items (all of them per passage)."""
    grid = alpha_grid(scorer, plan, alphas, weight, renormalize, None, name, measure)
    return {k: best_point(points, measure)["alpha"] for k, points in grid.items()}


_CONTEXT: dict = {}  # what forked workers inherit: passages, query sets, methods, plan, grid


def _grid_task(task: tuple[str, int | None, tuple]) -> dict[tuple[str, bool], dict[int, list[dict]]]:
    """One method's items (``n_used`` per passage and language) under each (weight mode, renormalize state) of
    ``fusions``: -> k -> its grid points (alpha). One scorer per query block serves them all (its candidates
    are found once); the blocks' per-query values are joined before the question-level means."""
    name, n_used, fusions = task
    ctx = _CONTEXT
    queries = ctx["query_sets"][METHODS[name].setting]
    method = ctx["methods"][name]
    items, own = method.reduced(n_used), method.own(queries.questions)
    parts = []  # per query block: (weight, renormalize) -> k -> (subsets, alphas, block) values
    blocks = queries.blocks()  # each candidate list searched once for every block; each block keeps its union
    columns = block_candidates(queries, found_tops(queries, ctx["passages"], items), blocks)
    terms = PassageTerms.of(ctx["passages"], items) if queries.factory == "Flat" else None  # once for every block
    for rows, some_columns in zip(blocks, columns):
        some = queries.take(rows)
        scorer = SubsetScorer(some, ctx["passages"], items, None if own is None else [o.take(rows) for o in own],
                              columns=some_columns, terms=terms)
        parts.append({fusion: grid_values(scorer, ctx["plan"], ctx["alphas"], *fusion, n_used, name, ctx["measure"])
                      for fusion in fusions})
        del scorer
    return {fusion: grid_points({k: np.concatenate([p[fusion][k] for p in parts], axis=-1) for k in parts[0][fusion]},
                                queries, ctx["alphas"], n_used, ctx["measure"]) for fusion in fusions}


def _centring_task(beta: float) -> dict[str, float]:
    """The normalisation baseline at strength ``beta`` (``xaug.hubness.centred``): setting -> the question-level
    mean measure of the tune queries."""
    ctx = _CONTEXT
    moved = centred(ctx["passages"], beta)  # one matrix for every setting: its candidate index is trained once
    return {setting: round(_question_mean(queries.score(moved, names=[ctx["measure"]])[0], queries.lang >= 0,
                                          queries.clusters), 6) for setting, queries in ctx["query_sets"].items()}


def _tune_task(task: tuple[str, object]):
    kind, what = task
    return _grid_task(what) if kind == "items" else _centring_task(what)


def tune(experiment, query_sets: dict, settings: TuneSettings, augment: dict[str, AugmentSettings], n_generated: int,
         plan: dict[int, list[tuple[int, ...]]], workers: int = 1, log=None) -> dict:
    """``{"choices": {method: {weight: {"renormalized"|"raw": {setting, by_k, grid}}}}, "normalisation": ...}``.

    ``experiment``: the passages, methods and weight modes (``xaug.experiment.Experiment``); ``query_sets``:
    corpus setting -> the tune questions' QuerySet; each method is tuned in the setting it is reported in
    (``methods.METHODS[name].setting``); ``augment``: method -> its ``augment.<method>`` settings (its
    configured renormalize state is listed first); ``n_generated``: ``xqg.n_queries``; ``plan``: k -> the
    subsets of language indices averaged at k (``xaug.sweep.subset_plan``); ``workers``: processes."""
    settings.check_generated(n_generated)
    passages, measure = experiment.passages, settings.measure
    baselines: dict[str, float] = {}
    for setting, queries in query_sets.items():
        if not (queries.lang >= 0).any():
            raise ConfigError("tune: the tune split has no cross-lingual questions in `languages` "
                              "(data.tune_fraction too small?)")
        baselines[setting] = _question_mean(queries.score(passages, names=[measure])[0], queries.lang >= 0,
                                            queries.clusters)
    tasks = [(name, weight, renormalize, n_used)
             for name in experiment.methods for weight in experiment.weights
             for renormalize in (augment[name].renormalize, not augment[name].renormalize)
             for n_used in (settings.n_queries_used if name == "xqg" else [None])]
    groups = [(name, n_used, tuple((w, r) for n, w, r, u in tasks if (n, u) == (name, n_used)))
              for name, n_used in dict.fromkeys((n, u) for n, _, _, u in tasks)]  # one scorer per set of items
    betas = centring_grid(settings.alphas)
    _CONTEXT.update(passages=passages, query_sets=query_sets, methods=experiment.methods, plan=plan,
                    measure=measure, alphas=list(settings.alphas))
    try:  # the methods' grids and the normalisation baseline's strengths in one pool: both cores kept busy
        done = forked_map(_tune_task, [("items", g) for g in groups] + [("centring", b) for b in betas], workers,
                          "tune", "tasks")
    finally:
        _CONTEXT.clear()
    grids = {(name, w, r, n_used): grid for (name, n_used, _), out in zip(groups, done)
             for (w, r), grid in out.items()}
    centring = dict(zip(betas, done[len(groups):]))
    results = [grids[task] for task in tasks]
    choices: dict = {}
    for (name, weight, renormalize, _), by_k in zip(tasks, results):
        setting = METHODS[name].setting
        entry = choices.setdefault(name, {}).setdefault(weight, {}).setdefault(
            NORMS[renormalize], {"setting": setting, "by_k": {}, "grid": {}})
        for k, points in by_k.items():
            entry["grid"].setdefault(str(k), []).extend(points)
    for name, weights in choices.items():
        for weight, norms in weights.items():
            for norm, entry in norms.items():
                base = baselines[entry["setting"]]
                for k, grid in entry["grid"].items():
                    best = best_point(grid, measure)
                    entry["by_k"][k] = {"alpha": best["alpha"], "n_queries_used": best["n_queries_used"],
                                        measure: best[measure], "gain": round(best[measure] - base, 6)}
                if log:
                    log.info("%s, %s weight, %s, %s corpus: alpha by k %s", name, weight, norm, entry["setting"],
                             " ".join(f"{c['alpha']:g}" + ("" if c["n_queries_used"] is None else
                                                           f"/{c['n_queries_used']}q")
                                      for c in entry["by_k"].values()))
    normalisation = {}
    grids = {setting: [{"beta": beta, measure: centring[beta][setting]} for beta in betas] for setting in query_sets}
    for setting, grid in grids.items():
        best = max(grid, key=lambda g: (g[measure], -abs(g["beta"])))
        normalisation[setting] = {"beta": best["beta"], measure: best[measure],
                                  "gain": round(best[measure] - baselines[setting], 6), "grid": grid}
        if log:
            log.info("normalisation baseline, %s corpus: beta %g (%s %.4f, baseline %.4f)", setting, best["beta"],
                     measure, best[measure], baselines[setting])
    first = next(iter(query_sets.values()))
    cross = first.lang >= 0
    return {"measure": measure, "split": "tune", "languages_augmented": "each subset of k languages of `languages`",
            "subsets": {str(k): len(s) for k, s in plan.items()},
            "queries": int(cross.sum()), "clusters": int(len(np.unique(first.clusters[cross]))),
            "baseline": {s: round(b, 6) for s, b in baselines.items()}, "normalisation": normalisation,
            "choices": choices}
