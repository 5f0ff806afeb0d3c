"""Choosing the fusion weight off the test set: a small grid on the tuning questions.

The tune split's questions (articles of the training split that no generator or translator trained
on) search the full corpus augmented with every target language, in the corpus setting the method is
reported in (parallel_contexts: the parallel one, where its coverage does not leak the answer); for
each method and weight mode the grid point with the best question-level mean of ``tune.measure`` wins (ties: the smaller alpha, then
fewer queries). The held-out evaluation questions choose nothing.
"""
from __future__ import annotations

import numpy as np

from .errors import ConfigError
from .fusion import FusionSettings, combine
from .methods import METHODS
from .metrics import ALL_MEASURES
from .stats import cluster_means


def _question_mean(values: np.ndarray, cross: np.ndarray, clusters: np.ndarray) -> float:
    return float(cluster_means(values[cross], clusters[cross]).mean())


def tune(query_sets: dict, passages: np.ndarray, methods: dict, renormalize: dict[str, bool], weights: list[str],
         alphas: list[float], n_queries_used: list[int], n_generated: int, measure: str = "nDCG@10", log=None) -> dict:
    """``{"choices": {method: {weight: {alpha, n_queries_used, <measure>, grid}}}, ...}`` (see module doc).

    ``query_sets``: corpus setting -> the tune questions' QuerySet; each method is tuned in the setting it
    is reported in (``methods.METHODS[name].setting``)."""
    if not isinstance(n_queries_used, list) or not n_queries_used or any(
            isinstance(n, bool) or not isinstance(n, int) or not 0 < n <= n_generated for n in n_queries_used):
        raise ConfigError(f"tune.n_queries_used: expected a list of integers from 1 to xqg.n_queries ({n_generated}), "
                          f"got {n_queries_used!r}")
    if measure not in ALL_MEASURES:
        raise ConfigError(f"tune.measure: expected one of {ALL_MEASURES}, got {measure!r}")
    if not isinstance(alphas, list) or not alphas or any(isinstance(a, bool) or not isinstance(a, (int, float))
                                                         or not 0 < a <= 1 for a in alphas):
        raise ConfigError(f"tune.alphas: expected a non-empty list of numbers in (0, 1], got {alphas!r}")
    i = ALL_MEASURES.index(measure)
    baselines: dict[str, float] = {}
    for setting, queries in query_sets.items():
        if not (queries.lang >= 0).any():
            raise ConfigError("tune: the tune split has no cross-lingual questions in `languages` "
                              "(data.tune_fraction too small?)")
        baselines[setting] = _question_mean(queries.score(passages)[i], queries.lang >= 0, queries.clusters)
    choices: dict = {}
    for name, method in methods.items():
        setting = METHODS[name].setting
        queries, baseline = query_sets[setting], baselines[setting]
        cross = queries.lang >= 0
        grid_n = n_queries_used if name == "xqg" else [None]
        choices[name] = {}
        for weight in weights:
            grid = []
            for n_used in grid_n:
                items = method.reduced(n_used)
                for alpha in alphas:
                    settings = FusionSettings(alpha, weight, renormalize[name], n_used, f"augment.{name}")
                    score = _question_mean(queries.score(combine(passages, items, settings))[i], cross, queries.clusters)
                    grid.append({"alpha": alpha, "n_queries_used": n_used, measure: round(score, 6)})
            best = max(grid, key=lambda g: (g[measure], -g["alpha"], -(g["n_queries_used"] or 0)))
            choices[name][weight] = {"alpha": best["alpha"], "n_queries_used": best["n_queries_used"],
                                     "setting": setting, measure: best[measure],
                                     "gain": round(best[measure] - baseline, 6), "grid": grid}
            if log:
                log.info("%s, %s weight, %s corpus: alpha %g%s (%s %.4f, baseline %.4f)", name, weight, setting,
                         best["alpha"], "" if best["n_queries_used"] is None else f", {best['n_queries_used']} queries",
                         measure, best[measure], baseline)
    first = next(iter(query_sets.values()))
    cross = first.lang >= 0
    return {"measure": measure, "split": "tune", "languages_augmented": "all of `languages`",
            "queries": int(cross.sum()), "clusters": int(len(np.unique(first.clusters[cross]))),
            "baseline": {s: round(b, 6) for s, b in baselines.items()}, "choices": choices}
