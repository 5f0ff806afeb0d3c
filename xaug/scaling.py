"""The scaling experiment: retrieval accuracy of each method as the number k of target languages grows.

Design (what it measures is languages, not weight or order):
- for every k, every subset of k languages (``scaling.subsets``: all | first | random:R) augments
  the corpus; a query's measure at k is averaged over the subsets that hold its language (in-set),
  over those that do not (out-of-set), and over all of them (all) (``xaug.sweep``);
- the fusion weight is fixed across k (``fixed``); the reference's growing sum (``per_item``) runs
  beside it, to show what that confound does;
- every method gets content-free controls under the first weight mode, with the method's own alpha, so
  that method minus control isolates content at the same weight (``xaug.controls``): ``shuffled``
  (``scaling.permutations`` permutations, averaged) and ``centroid``;
- gains are tested at the level of the relevant passage (``xaug.tables``, ``xaug.stats``), Holm over each
  table's family; contrasts also carry an equivalence test (TOST) within ``scaling.equivalence_margin``;
- k = 1 gives the transfer matrix: the gain for queries in Y when passages are augmented with X alone.

This module runs the sweeps of every corpus setting (``run_setting``, ``run_scaling``) and writes the
stage's outputs (``write_scaling_outputs``).
"""
from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd

from .controls import centroid_items, permutation_plan, shuffled_items
from .formats import write_table
from .io import write_json
from .plots import plot_cost, plot_scaling, plot_transfer, plot_weight_modes, write_plot_tables
from .pool import forked_map
from .queryset import QuerySet
from .sweep import KResult, ScalingSettings, Sweep, average, subset_plan, sweep
from .tables import baseline_rows, comparison_report, contrast_table, gain_table, transfer


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


def run_setting(queries: QuerySet, passages: np.ndarray, methods: dict, settings: dict, plan: dict, weights: list[str],
                permutations: int, seed: int, resamples: int, languages: list[str], workers: int = 1,
                margin: float = 0.01):
    """Every method, weight mode and control of one corpus setting: (gains, contrasts, transfer).

    Each sweep (a method under a weight mode, one shuffled permutation, the centroids) covers every
    planned subset; sweeps run in ``workers`` processes. Permutation j of any method draws from
    ``default_rng([seed, j])``, so results do not depend on ``workers``. ``margin``: the equivalence margin
    of the contrasts."""
    passages = np.asarray(passages, dtype=np.float32)
    baseline = queries.score(passages)
    first = weights[0]
    tasks = [(n, "method", w, 0) for n in methods for w in weights]
    tasks += [(n, "shuffled", first, j) for n in methods for j in range(permutations)]
    tasks += [(n, "centroid", first, 0) for n in methods]
    _TASK_CONTEXT.update(queries=queries, passages=passages, methods=methods, settings=settings, plan=plan, seed=seed)
    try:
        results = dict(zip(tasks, forked_map(_run_variant, tasks, workers, f"scaling ({queries.setting})", "sweep")))
    finally:
        _TASK_CONTEXT.clear()
    sweeps: dict[tuple[str, str, str], Sweep] = {}
    for (n, variant, w, _), (by_k, singles) in results.items():
        if variant != "shuffled":
            sweeps[n, variant, w] = Sweep(n, variant, w, by_k, singles)
    for n in methods:
        null = [results[n, "shuffled", first, j][0] for j in range(permutations)]
        if null:
            sweeps[n, "shuffled", first] = Sweep(n, "shuffled", first, average(null))
    gains = pd.concat([baseline_rows(queries, first, baseline),
                       gain_table(queries, baseline, list(sweeps.values()), resamples, seed)], ignore_index=True)
    pairs = [(sweeps[n, "method", first], sweeps[n, v, first], f"method-{v}")
             for n in methods for v in ("shuffled", "centroid") if (n, v, first) in sweeps]
    pairs += [(sweeps[a, "method", first], sweeps[b, "method", first], "between-methods")
              for a, b in itertools.combinations(list(methods), 2)]
    contrasts = contrast_table(queries, pairs, resamples, seed, margin)
    transfers = {n: transfer(queries, baseline, sweeps[n, "method", first], languages, resamples, seed)
                 for n in methods if sweeps[n, "method", first].singles}
    return gains, contrasts, transfers


def run_scaling(experiment, settings: ScalingSettings, corpus_settings: list[str], fusion: dict, seed: int, data_dir,
                queries_prefix) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """``run_setting`` over every corpus setting of ``corpus_settings`` (``evaluate.settings``) for the methods of
    ``experiment`` (``xaug.experiment.Experiment``; ``fusion``: method -> weight mode -> FusionSettings):
    (gains, contrasts, transfers by setting)."""
    plan = subset_plan(len(experiment.languages), settings.subsets, seed)
    gains, contrasts, transfers = [], [], {}
    for setting in corpus_settings:
        g, c, t = run_setting(experiment.queries(data_dir, queries_prefix, setting), experiment.passages,
                              experiment.methods, fusion, plan, experiment.weights, settings.permutations, seed,
                              settings.resamples, experiment.languages, settings.workers,
                              settings.equivalence_margin)
        gains.append(g)
        contrasts.append(c)
        transfers[setting] = t
    return pd.concat(gains, ignore_index=True), pd.concat(contrasts, ignore_index=True), transfers


def write_scaling_outputs(gains: pd.DataFrame, contrasts: pd.DataFrame, transfers: dict, weights: list[str], plots,
                          comparison, transfer_path) -> None:
    """The scaling stage's tables (pandas CSV), figures and JSON reports (see stages/scaling.py)."""
    plots = Path(plots)
    write_table(plots / "scaling.csv", gains)
    write_table(plots / "contrasts.csv", contrasts)
    write_plot_tables(gains, plots / "scaling", weights[0])
    for setting, part in gains.groupby("setting"):
        plot_scaling(part, plots / ("scaling.png" if setting == "global" else f"scaling_{setting}.png"), weights[0],
                     title=f"{setting} corpus; ")
    plot_weight_modes(gains, plots / "weight_modes.png")
    plot_cost(gains, plots / "cost.png", weights[0])
    plot_transfer(transfers, plots / "transfer.png")
    write_json(comparison, comparison_report(contrasts))
    write_json(transfer_path, transfers)
