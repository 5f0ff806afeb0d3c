"""Choosing the fusion weight off the test set: a small grid on the tuning questions.

The tune split's questions (articles of the training split that no generator or translator trained
on) search the full corpus augmented with every target language, in the corpus setting the method is
reported in (parallel_contexts: the parallel one, where its coverage does not leak the answer); for
each method and weight mode the grid point with the best question-level mean of ``tune.measure`` wins (ties: the smaller alpha, then
fewer queries). The held-out evaluation questions choose nothing.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .errors import ConfigError
from .fusion import FusionSettings, combine
from .methods import METHODS, AugmentSettings
from .metrics import ALL_MEASURES
from .params import check_int
from .stats import cluster_means


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


def tune(experiment, query_sets: dict, settings: TuneSettings, augment: dict[str, AugmentSettings], n_generated: int,
         log=None) -> dict:
    """``{"choices": {method: {weight: {alpha, n_queries_used, <measure>, grid}}}, ...}`` (see module doc).

    ``experiment``: the passages, methods and weight modes (``xaug.experiment.Experiment``); ``query_sets``:
    corpus setting -> the tune questions' QuerySet; each method is tuned in the setting it is reported in
    (``methods.METHODS[name].setting``); ``augment``: method -> its ``augment.<method>`` settings (renormalize);
    ``n_generated``: ``xqg.n_queries``."""
    settings.check_generated(n_generated)
    passages, measure = experiment.passages, settings.measure
    i = ALL_MEASURES.index(measure)
    baselines: dict[str, float] = {}
    for setting, queries in query_sets.items():
        if not (queries.lang >= 0).any():
            raise ConfigError("tune: the tune split has no cross-lingual questions in `languages` "
                              "(data.tune_fraction too small?)")
        baselines[setting] = _question_mean(queries.score(passages)[i], queries.lang >= 0, queries.clusters)
    choices: dict = {}
    for name, method in experiment.methods.items():
        setting = METHODS[name].setting
        queries, baseline = query_sets[setting], baselines[setting]
        cross = queries.lang >= 0
        grid_n = settings.n_queries_used if name == "xqg" else [None]
        choices[name] = {}
        for weight in experiment.weights:
            grid = []
            for n_used in grid_n:
                items = method.reduced(n_used)
                for alpha in settings.alphas:
                    fusion = FusionSettings(alpha, weight, augment[name].renormalize, n_used, f"augment.{name}")
                    score = _question_mean(queries.score(combine(passages, items, fusion))[i], cross, queries.clusters)
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
