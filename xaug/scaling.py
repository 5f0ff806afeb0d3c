"""The scaling experiment: retrieval accuracy of each method as the number k of target languages grows.

Design (what it measures is languages, not weight, normalisation or order):
- for every k, every subset of k languages (``scaling.subsets``: all | first | random:R) augments
  the corpus; a query's measure at k is averaged over the subsets that hold its language (in-set),
  over those that do not (out-of-set), and over all of them (all) (``xaug.sweep``);
- each k uses its own alpha, tuned on the tune split (``xaug.tuning``); the largest k's alpha at every
  k runs beside it (``one_alpha``);
- the fusion weight is fixed across k (``fixed``); the reference's growing sum (``per_item``) runs
  beside it, to show what that confound does;
- every method and control runs with the fused vectors renormalized and raw (each with its own alpha),
  beside a normalisation baseline that augments nothing (``xaug.hubness``);
- ``equal_items`` holds the number of items per passage at k = 1's at every k (``xaug.equal_items``), so
  that more languages and more items are measured apart;
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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from .candidates import unpack_templates
from .cli import release_memory
from .controls import centroid_items
from .coverage import coverage
from .formats import write_table
from .hubness import centred
from .io import write_json
from .metrics import ALL_MEASURES
from .plots import plot_cost, plot_scaling, plot_transfer, plot_variants, plot_weight_modes, write_plot_tables
from .pool import forked_map
from .queryset import QuerySet
from .sweep import KResult, ScalingSettings, Sweep, average, subset_plan, trained_fused, trained_lists
from .tables import baseline_rows, comparison_report, contrast_table, gain_table, transfer
from .variants import FUSED, corpus_keys, items_sweeps, uses_fused


VARIANTS = ("method", "shuffled", "centroid", "one_alpha", "equal_items")
TASK_ORDER = ("centroid", "method", "shuffled", "equal_items")  # the sets of items a pool runs, longest first
_TASK_CONTEXT: dict = {}  # what forked workers inherit: queries, passages, methods, fusion settings, plan


def _fusions_of(name: str, runs: tuple, settings: dict) -> dict:
    """run (variant, weight, renormalize) -> k -> FusionSettings of method ``name``: the method with alpha per k, with
    one alpha (the largest k's) at every k, or a control (``settings``: method -> (weight, renormalize) -> k ->
    FusionSettings)."""
    fusions = {}
    for variant, weight, renormalize in runs:
        fusion = settings[name][weight, renormalize]  # k -> FusionSettings
        fusions[variant, weight, renormalize] = {k: fusion[max(fusion)] for k in fusion} if variant == "one_alpha" \
            else fusion
    return fusions


def _run_items(task: tuple[str, str, int, tuple]) -> dict[tuple[str, str, bool], tuple[dict, dict]]:
    """``items_sweeps`` of one set of items of method ``name`` (``kind``, permutation ``perm``) under each run of
    ``runs`` ((variant, weight, renormalize): the method with alpha per k, with one alpha (the largest k's) at
    every k, a control), with the queries, passages and fusion settings the workers inherit."""
    name, kind, perm, runs = task
    ctx = _TASK_CONTEXT
    return items_sweeps(ctx["queries"], ctx["passages"], ctx["methods"][name], _fusions_of(name, runs, ctx["settings"]),
                        ctx["plan"], kind, perm, ctx["seed"], ctx.get("templates", {}).get(name))


def _train_lists(task: tuple[str, int | None, list]) -> dict:
    """The trained candidate-list indexes of method ``name``'s items (``n_used`` per passage), where a set of them
    searches its per-language lists, and those of the fused corpora of the sets that score from them (``sets``:
    (kind, ``corpus_keys``) per set of items: its own, its controls), packed. The method's own fused corpora and a
    shuffled permutation's are trained on the method's own items fused (a permutation's: the same vectors,
    rearranged among the passages), once where their keys meet; the centroids' on the centroids fused: one vector
    added to every covered passage with a large alpha draws the corpus together, into a few of the method's cells,
    which every query's probes would then scan."""
    name, n_used, sets = task
    ctx = _TASK_CONTEXT
    items = ctx["methods"][name].reduced(n_used)
    scored = [(kind, keys) for kind, keys in sets if keys]  # the sets with runs at this items count
    prefixes = ctx["search"].prefixes(ctx["passages"].shape[1])  # as ``items_sweeps`` decides
    # as for the centroids' items, which keep the method's counts (the lists' coverage)
    fused = [(kind, keys) for kind, keys in scored
             if uses_fused(kind, keys, items, ctx["candidates"], ctx["depth"], prefixes)]
    # the lists, unless every set scores from its fused corpora (no ``sets``: no plan, the lists alone)
    packed = trained_lists(ctx["passages"], items, ctx["search"]) if not sets or len(fused) < len(scored) else {}
    for vectors_of in ("method", "centroid"):  # the items whose fused corpora the indexes are trained on
        kinds = [kind for kind in FUSED if (kind == "centroid") == (vectors_of == "centroid")]
        keys = list(dict.fromkeys(key for kind, found in fused if kind in kinds for key in found))
        if not keys:
            continue
        trained = trained_fused(ctx["passages"], centroid_items(items) if vectors_of == "centroid" else items, keys,
                                ctx["search"], vectors_of)
        packed.update({(kind, key): trained[vectors_of, key] for kind, found in fused if kind in kinds
                       for key in found})
    return packed


def list_templates_of(experiment, fusion: dict, workers: int, plan: dict | None = None, permutations: int = 0,
                      renormalize: dict | None = None) -> dict[str, dict]:
    """method -> items count -> its items' trained candidate-list indexes (``xaug.candidates.list_templates``),
    trained once for the stage in ``workers`` processes and shared by every set of the method's items (its own,
    its controls) in every corpus setting; with ``plan`` (and the stage's ``permutations`` and configured
    ``renormalize`` states), also those of the fused corpora its sets of items score from (keyed by
    (kind, ``xaug.variants.corpus_keys``' key): ``_train_lists``), and its lists only where a set searches them.
    Empty where no list is searched with a trainable index."""
    search = experiment.search
    if not experiment.candidates or search.exact or experiment.index.factory != "Flat":
        return {}
    counts = {name: list(dict.fromkeys(f.n_items_used for runs in fusion[name].values() for f in runs.values()))
              for name in experiment.methods}
    controls: dict[tuple, list] = {}
    if plan is not None:
        configured = {n: (renormalize or {}).get(n, True) for n in experiment.methods}
        for name, kind, j, runs in item_tasks(list(experiment.methods), experiment.weights, configured,
                                              permutations)[1]:
            for n in counts[name] if kind in FUSED else ():
                controls.setdefault((name, n), []).append(
                    (kind, corpus_keys(kind, plan, _fusions_of(name, runs, fusion), n, j)))
    tasks = [(name, n, controls.get((name, n), [])) for name in experiment.methods for n in counts[name]]
    _TASK_CONTEXT.update(passages=np.asarray(experiment.passages, dtype=np.float32), methods=experiment.methods,
                         search=search, candidates=experiment.candidates, depth=experiment.depth)
    try:
        packed = forked_map(_train_lists, tasks, workers, "candidate list indexes", "sets")
    finally:
        _TASK_CONTEXT.clear()
    out: dict[str, dict] = {}
    for (name, n, _), lists in zip(tasks, packed):
        out.setdefault(name, {})[n] = unpack_templates(lists)
    return out


def _constant(s: Sweep, ks, variant: str, k_from: int | None = None) -> Sweep:
    """A sweep whose every k holds one result: ``s``'s at ``k_from`` (the k = 1 reference of a contrast) or its
    only one (a system that does not depend on k), in every group."""
    r = s.by_k[k_from if k_from is not None else next(iter(s.by_k))]
    same = KResult(r.all, r.all if k_from is None else r.inset, r.all if k_from is None else r.outset, r.subsets,
                   r.seconds, r.tokens, r.alpha, r.items)
    return Sweep(s.method, variant, s.weight, {k: same for k in ks}, renormalize=s.renormalize, primary=s.primary)


def item_tasks(names: list[str], weights: list[str], configured: dict[str, bool], permutations: int
               ) -> tuple[list[tuple], list[tuple]]:
    """The sweeps of one corpus setting in the tables' row order, (method, variant, weight, renormalize,
    permutation), and the tasks that run them, kind by kind in ``TASK_ORDER``: one per set of items
    (``_run_items``: method, kind, permutation, its runs), whose runs share a scorer. ``configured``: method ->
    its configured renormalize state."""
    first = weights[0]
    states = {n: (configured[n], not configured[n]) for n in names}
    order = [(n, "method", w, r, 0) for n in names for w in weights for r in states[n]]
    order += [(n, v, first, configured[n], 0) for n in names for v in ("one_alpha", "equal_items")]
    order += [(n, "shuffled", first, r, j) for n in names for r in states[n] for j in range(permutations)]
    order += [(n, "centroid", first, r, 0) for n in names for r in states[n]]
    groups: dict[tuple[str, str, int], list] = {}
    for n, variant, w, r, j in order:  # one alpha scores the method's own items
        groups.setdefault((n, "method" if variant == "one_alpha" else variant, j), []).append((variant, w, r))
    tasks = [(n, kind, j, tuple(runs)) for (n, kind, j), runs in groups.items()]
    # the longest sets first, so that no worker waits long for the other's last one: a method's centroids (the
    # leave-out method's searched the longest at P = 100k) and its own items, then its shuffled permutations and
    # equal items; results are keyed by task, so the order changes no result
    return order, sorted(tasks, key=lambda task: TASK_ORDER.index(task[1]))


def run_setting(queries: QuerySet, passages: np.ndarray, methods: dict, settings: dict, plan: dict, weights: list[str],
                permutations: int, seed: int, resamples: int, languages: list[str], workers: int = 1,
                margin: float = 0.01, renormalize: dict | None = None, beta: float | None = 0.0,
                templates: dict | None = None):
    """Every method, weight mode, renormalize state and control of one corpus setting: (gains, contrasts, transfer).

    ``settings``: method -> (weight, renormalize) -> k -> FusionSettings; ``renormalize``: method -> its
    configured state (default on; the other state runs beside it); ``beta``: the normalisation baseline's
    strength (``xaug.hubness``; None: no normalisation baseline). Each sweep (a method under a weight mode and
    renormalize state, one shuffled permutation, the centroids, one alpha, equal items) covers every planned
    subset; sweeps run in ``workers`` processes, and the tables' tests (gains, contrasts, transfer) in as many
    threads. Permutation j of any method draws from ``default_rng([seed, j])``, so results do not depend on
    ``workers``. ``margin``: the equivalence margin of the contrasts. ``templates``: method -> items count ->
    trained candidate-list indexes (``list_templates_of``) that every set of its items searches."""
    passages = np.asarray(passages, dtype=np.float32)
    baseline = queries.score(passages)
    first = weights[0]
    configured = {n: (renormalize or {}).get(n, True) for n in methods}
    states = {n: (configured[n], not configured[n]) for n in methods}
    order, tasks = item_tasks(list(methods), weights, configured, permutations)
    _TASK_CONTEXT.update(queries=queries, passages=passages, methods=methods, settings=settings, plan=plan, seed=seed,
                         templates=templates or {})
    try:
        done = forked_map(_run_items, tasks, workers, f"scaling ({queries.setting})", "items")
    finally:
        _TASK_CONTEXT.clear()
    found = {(n, variant, w, r, j): result for (n, _, j, _), out in zip(tasks, done)
             for (variant, w, r), result in out.items()}
    results = {key: found[key] for key in order}
    sweeps: dict[tuple[str, str, str, bool], Sweep] = {}
    for (n, variant, w, r, _), (by_k, singles) in results.items():
        if variant != "shuffled":
            sweeps[n, variant, w, r] = Sweep(n, variant, w, by_k, singles, r, w == first and r == configured[n])
    for n in methods:
        for r in states[n]:
            null = [results[n, "shuffled", first, r, j][0] for j in range(permutations)]
            if null:
                sweeps[n, "shuffled", first, r] = Sweep(n, "shuffled", first, average(null), renormalize=r,
                                                        primary=r == configured[n])
    undefined = np.full((len(ALL_MEASURES), len(queries.lang)), np.nan)  # no subsets: no in-set or out-of-set
    normalisation = None if beta is None else Sweep(
        "normalisation", "method", first, {0: KResult(queries.score(centred(passages, beta)), undefined, undefined,
                                                      1, 0.0, 0.0)})
    gains = pd.concat([baseline_rows(queries, first, baseline),
                       gain_table(queries, baseline, list(sweeps.values()) + [normalisation] * (beta is not None),
                                  resamples, seed, workers)], ignore_index=True)
    ks = list(plan)
    pairs = [(sweeps[n, "method", first, r], sweeps[n, v, first, r], f"method-{v}")
             for n in methods for r in states[n] for v in ("shuffled", "centroid") if (n, v, first, r) in sweeps]
    pairs += [(sweeps[n, "method", first, r], _constant(normalisation, ks, "method"), "method-normalisation")
              for n in methods for r in states[n] if normalisation is not None]
    pairs += [(sweeps[a, "method", first, configured[a]], sweeps[b, "method", first, configured[b]], "between-methods")
              for a, b in itertools.combinations(list(methods), 2)]
    for n in methods:  # from k = 2: at k = 1 equal items are the method itself
        equal = sweeps[n, "equal_items", first, configured[n]]
        beyond = Sweep(n, "equal_items", first, {k: r for k, r in equal.by_k.items() if k > 1},
                       renormalize=equal.renormalize, primary=equal.primary)
        pairs += [(beyond, _constant(equal, ks, "equal_items-k1", k_from=1), "languages-at-equal-items"),
                  (sweeps[n, "method", first, configured[n]], beyond, "items-at-equal-languages")]
    contrasts = contrast_table(queries, pairs, resamples, seed, margin, workers)
    shown = [n for n in methods if sweeps[n, "method", first, configured[n]].singles]
    with ThreadPoolExecutor(max(1, workers)) as pool:  # the tests' numpy work runs outside the GIL
        done = pool.map(lambda n: transfer(queries, baseline, sweeps[n, "method", first, configured[n]], languages,
                                           resamples, seed), shown)
        transfers = dict(zip(shown, done))
    return gains, contrasts, transfers


def run_scaling(experiment, settings: ScalingSettings, corpus_settings: list[str], fusion: dict, seed: int, data_dir,
                queries_prefix, renormalize: dict, betas: dict, log=None) -> tuple[pd.DataFrame, pd.DataFrame, dict, dict]:
    """``run_setting`` over every corpus setting of ``corpus_settings`` (``evaluate.settings``) for the methods of
    ``experiment`` (``xaug.experiment.Experiment``; ``fusion``: method -> (weight mode, renormalize) -> k ->
    FusionSettings; ``renormalize``: method -> its configured state; ``betas``: setting -> the normalisation
    baseline's strength): (gains, contrasts, transfers by setting, coverage by setting: ``xaug.coverage``).
    A setting whose queries rank exactly as an earlier setting's (XQuAD: every passage has a parallel in every
    language, so ``parallel`` is ``global``) takes that setting's results instead of running them again."""
    plan = subset_plan(len(experiment.languages), settings.subsets, seed)
    templates = list_templates_of(experiment, fusion, settings.workers, plan, settings.permutations,
                                  renormalize)  # once for every setting
    gains, contrasts, transfers, covered = [], [], {}, {}
    done: dict[str, tuple[tuple, tuple]] = {}  # setting -> (its queries' ranking_key, its results)
    for setting, queries in experiment.query_sets(data_dir, queries_prefix, corpus_settings):  # read once
        release_memory()  # what building its answer pairs freed (twice their size), before the workers fork
        covered[setting] = {name: coverage(queries, method) for name, method in experiment.methods.items()}
        key = queries.ranking_key()
        same = next((s for s, (k, _) in done.items() if k == key and betas[s] == betas[setting]), None)
        if same is not None:
            g, c, t = done[same][1]
            g, c = g.assign(setting=setting), c.assign(setting=setting)
            if log:
                log.info("%s corpus: every query ranks the passages as in the %s corpus; its results are those",
                         setting, same)
        else:
            g, c, t = run_setting(queries, experiment.passages,
                                  experiment.methods, fusion, plan, experiment.weights, settings.permutations, seed,
                                  settings.resamples, experiment.languages, settings.workers,
                                  settings.equivalence_margin, renormalize, betas[setting], templates)
            done[setting] = (key, (g, c, t))
        del queries  # what only this setting's queries hold (a dense scorer), before the next setting's
        release_memory()
        gains.append(g)
        contrasts.append(c)
        transfers[setting] = t
    return pd.concat(gains, ignore_index=True), pd.concat(contrasts, ignore_index=True), transfers, covered


def write_scaling_outputs(gains: pd.DataFrame, contrasts: pd.DataFrame, transfers: dict, weights: list[str], plots,
                          comparison, transfer_path, covered: dict | None = None, coverage_path=None) -> None:
    """The scaling stage's tables (pandas CSV), figures and JSON reports (see stages/scaling.py)."""
    plots = Path(plots)
    write_table(plots / "scaling.csv", gains)
    write_table(plots / "contrasts.csv", contrasts)
    write_plot_tables(gains, plots / "scaling", weights[0])
    for setting, part in gains.groupby("setting"):
        plot_scaling(part, plots / ("scaling.png" if setting == "global" else f"scaling_{setting}.png"), weights[0],
                     title=f"{setting} corpus; ")
    plot_weight_modes(gains, plots / "weight_modes.png")
    plot_variants(gains, plots / "variants.png", weights[0])
    plot_cost(gains, plots / "cost.png", weights[0])
    plot_transfer(transfers, plots / "transfer.png")
    write_json(comparison, comparison_report(contrasts))
    write_json(transfer_path, transfers)
    if coverage_path is not None:
        write_json(coverage_path, covered or {})
