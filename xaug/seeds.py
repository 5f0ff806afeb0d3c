"""Seeds: how much the results move with the draw of the trained query generator and translator.

The scaling stage measures one draw of each trained model (``seed``). The ``*_seed`` stages train the
query generator and the translator again, and sample the queries, with each seed of ``scaling.seeds``;
they read the first draw's encoder states of the sources (a warm model's encoder is frozen and built
the same for every seed; other models encode their sources themselves). For every draw, ``seed``
first, the seeds stage repeats what a draw changes (``draw_fusion``, then ``draw_rows`` per corpus setting):

- alpha per k (and xqg's number of queries) tuned on the tune split with that draw's items
  (``xaug.tuning``, under the first weight mode of ``scaling.weights``);
- the sweep of each seeded method (``SEEDED``) under its configured fusion and its centroid control
  (content-free, at the method's own alpha), beside the normalisation baseline (``xaug.hubness``, at
  the tune stage's strength: it augments nothing, so no draw changes it).

Each row (a method's gain over the baseline; method minus its centroid control; method minus the
normalisation baseline; xqg minus translate; every k, cross-lingual query group, corpus setting and
tested measure) is averaged within relevant-passage clusters per draw, and the draws are pooled by
``xaug.stats.crossed_test``: the mean over draws and clusters, its CI and p from resampling draws and
clusters together, Holm per family (setting, kind, group, measure: methods x k), and TOST within
``scaling.equivalence_margin``. Each draw's own delta and cluster-bootstrap CI (conditional on that draw)
stay beside it. The first draw's rows are the scaling stage's configured-fusion rows (same alpha, same
sweep); with candidates from an index (``scaling.candidates``) where a set scores from its fused corpora
(``xaug.variants.uses_fused``), this sweep's are its one run's and the scaling stage's those of all its runs, so
the rows agree within the engine's tolerance (docs/design.md), not exactly.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from .hubness import centred
from .io import read_json
from .methods import fusion_settings, load_method
from .metrics import ALL_MEASURES
from .stats import cluster_means, cluster_test, crossed_test, family_resamples, holm
from .sweep import CROSS
from .tables import TESTED
from .tuning import tune
from .variants import items_sweeps

SEEDED = ("xqg", "translate")  # the methods whose items a trained model produces
KINDS = ("gain", "method-centroid", "method-normalisation", "between-methods")


def draw_folders(seed: int, first: int, generated_root, items_root, metrics, seeds_root) -> tuple[Path, Path, Path]:
    """A draw's texts, items and its models' metrics: the pipeline's own for the first draw (``seed``), and
    ``<seeds_root>/<seed>/generated``, ``.../items`` and ``.../metrics`` (the ``*_seed`` stages') for the others."""
    if seed == first:
        return Path(generated_root), Path(items_root), Path(metrics)
    return tuple(Path(seeds_root) / str(seed) / name for name in ("generated", "items", "metrics"))


def draw_quality(folder) -> dict:
    """What one draw's models produce, from their stages' metrics in ``folder`` (``metrics`` for the first draw,
    ``<seeds_root>/<seed>/metrics`` for the others): the query generator's best tune loss and round-trip R@10
    (average and per language), the translator's best tune loss and held-out chrF (average over languages)."""
    folder = Path(folder)
    train, translation = read_json(folder / "train_xqg.json"), read_json(folder / "translation.json")
    generated = read_json(folder / "generation.json")["xqg"]
    heldout = translation.get("heldout", {})

    def chrf(kind):
        values = [r[f"chrF_{kind}"] for r in heldout.values() if f"chrF_{kind}" in r]
        return round(float(np.mean(values)), 2) if values else None

    return {"xqg_tune_loss": train.get("tune_loss"), "xqg_round_trip_R@10": generated["avg"]["R@10"],
            "xqg_round_trip_R@10_by_language": {lang: r["R@10"] for lang, r in generated.items() if lang != "avg"},
            "translator_tune_loss": translation.get("tune_loss"), "translator_chrF_question": chrf("question"),
            "translator_chrF_sentence": chrf("sentence")}


def draw_experiment(experiment, generated_root, items_root):
    """``experiment`` (``xaug.experiment.Experiment``) with the seeded methods' items of one draw, under the
    first weight mode alone."""
    names = [m for m in SEEDED if m in experiment.methods]
    methods = {m: load_method(Path(generated_root) / m, m, experiment.languages, Path(items_root) / m)
               for m in names}
    return replace(experiment, methods=methods, weights=experiment.weights[:1])


def method_sweep(queries, passages, method, fusion: dict, plan: dict, control: bool = False) -> dict:
    """k -> KResult of ``method``'s items (``control``: its centroid control) under ``fusion`` (k -> FusionSettings),
    as the scaling stage sweeps them (``xaug.variants.items_sweeps``)."""
    return items_sweeps(queries, passages, method, {"run": fusion}, plan, "centroid" if control else "method")["run"][0]


def draw_fusion(p, experiment, tune_sets: dict, tune_settings, augment: dict, plan: dict, workers: int = 1,
                log=None) -> tuple[dict, dict]:
    """One draw's tuning (``xaug.tuning.tune``) on ``tune_sets`` (setting -> the tune split's queries):
    (method -> k -> its FusionSettings, choices: method -> k -> {alpha, n_queries_used})."""
    report = tune(experiment, tune_sets, tune_settings, augment, p.get_path("xqg.n_queries"), plan, workers, log)
    first = experiment.weights[0]
    fusion = {m: {k: fusion_settings(p, m, report, first, k, augment[m].renormalize) for k in plan}
              for m in experiment.methods}
    choices = {m: {str(k): {"alpha": f.alpha, "n_queries_used": f.n_items_used} for k, f in by_k.items()}
               for m, by_k in fusion.items()}
    return fusion, choices


def references(passages: np.ndarray, queries, beta: float | None) -> tuple[np.ndarray, np.ndarray | None]:
    """What every draw is compared with in one corpus setting (``queries``): the baseline's measures per query
    and the normalisation baseline's (``xaug.hubness``, strength ``beta``; None without one). Neither augments
    anything, so the stage scores them once per setting for all its draws."""
    return queries.score(passages), None if beta is None else queries.score(centred(passages, beta))


def draw_rows(experiment, setting: str, queries, fusion: dict, plan: dict,
              reference: tuple[np.ndarray, np.ndarray | None]) -> dict:
    """One draw in one corpus setting (``queries``, loaded by the caller one setting at a time, so that a stage
    never holds two settings' judgements): per row key (setting, kind, a, b, k, group, measure),
    ``(labels, cluster means)`` of the per-query differences over the row's cross-lingual queries, under the
    draw's ``fusion`` (``draw_fusion``), against ``reference`` (``references``: the baseline's and the
    normalisation baseline's measures)."""
    rows: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}
    passages = experiment.passages
    baseline, normalisation = reference
    sweeps = {}
    for name, method in experiment.methods.items():
        sweeps[name] = method_sweep(queries, passages, method, fusion[name], plan)
        sweeps[f"{name}-centroid"] = method_sweep(queries, passages, method, fusion[name], plan, control=True)
    pairs = []
    for name in experiment.methods:
        pairs.append(("gain", name, "baseline", sweeps[name], lambda k, g: baseline))
        pairs.append(("method-centroid", name, f"{name}-centroid", sweeps[name],
                      lambda k, g, c=sweeps[f"{name}-centroid"]: c[k].group(g)))
        if normalisation is not None:
            pairs.append(("method-normalisation", name, "normalisation", sweeps[name],
                          lambda k, g: normalisation))
    if all(m in experiment.methods for m in SEEDED):
        pairs.append(("between-methods", SEEDED[0], SEEDED[1], sweeps[SEEDED[0]],
                      lambda k, g: sweeps[SEEDED[1]][k].group(g)))
    for kind, a, b, by_k, other in pairs:
        for k, result in by_k.items():
            for group in CROSS:
                values = result.group(group)
                diff = values - other(k, group)
                members = (queries.lang >= 0) & ~np.isnan(diff[0])
                if not members.any():
                    continue
                labels = queries.clusters[members]
                for measure in TESTED:
                    i = ALL_MEASURES.index(measure)
                    rows[setting, kind, a, b, k, group, measure] = (np.unique(labels),
                                                                    cluster_means(diff[i][members], labels))
    return rows


def pooled_table(draws: dict[int, dict], resamples: int, seed: int, margin: float) -> pd.DataFrame:
    """The draws' rows (seed -> ``draw_rows``' rows) pooled: one row per key, every draw scoring the same clusters.
    Columns: the key, ``delta`` (mean over draws and clusters), ``ci_low``/``ci_high``, ``p``, ``p_holm`` (per
    family), ``p_tost`` (contrasts), ``sd_draws`` (of the draws' own deltas), ``draws``, ``clusters``,
    ``resamples``, and per draw ``delta_<seed>``, ``ci_low_<seed>``, ``ci_high_<seed>`` (its clusters alone)."""
    seeds = list(draws)
    keys = list(draws[seeds[0]])
    if not keys:
        return pd.DataFrame(columns=["setting", "kind", "a", "b", "k", "group", "measure", "delta", "ci_low",
                                     "ci_high", "p", "p_holm", "p_tost", "sd_draws", "draws", "clusters"])
    for s in seeds[1:]:
        if list(draws[s]) != keys:
            raise ValueError(f"seed {s}: its rows differ from seed {seeds[0]}'s")
    family = {key: "|".join(map(str, (key[0], key[1], key[5], key[6]))) for key in keys}
    largest = max(Counter(family.values()).values(), default=1)
    resamples = family_resamples(resamples, largest)
    by_members: dict[bytes, list] = {}
    for key in keys:
        labels = draws[seeds[0]][key][0]
        for s in seeds[1:]:
            if not np.array_equal(draws[s][key][0], labels):
                raise ValueError(f"seed {s}: {key} scores other passages than seed {seeds[0]}")
        by_members.setdefault(labels.tobytes(), []).append(key)
    out = []
    for group_keys in by_members.values():
        diffs = np.stack([np.stack([draws[s][key][1] for key in group_keys]) for s in seeds])  # (draws, rows, C)
        contrast = [key[1] != "gain" for key in group_keys]
        pooled = crossed_test(diffs, resamples, seed, margin=margin)
        conditional = [cluster_test(diffs[j], resamples, seed) for j in range(len(seeds))]
        for r, key in enumerate(group_keys):
            row = dict(zip(("setting", "kind", "a", "b", "k", "group", "measure"), key))
            row.update(delta=pooled.delta[r], ci_low=pooled.low[r], ci_high=pooled.high[r], p=pooled.p[r],
                       p_tost=pooled.p_tost[r] if contrast[r] else np.nan, sd_draws=pooled.between[r],
                       draws=pooled.draws, clusters=pooled.clusters, resamples=resamples, family=family[key])
            for s, t in zip(seeds, conditional):
                row.update({f"delta_{s}": t.delta[r], f"ci_low_{s}": t.low[r], f"ci_high_{s}": t.high[r]})
            out.append(row)
    table = pd.DataFrame(out)
    table["p_holm"] = np.nan
    for _, index in table.groupby("family").groups.items():
        table.loc[index, "p_holm"] = holm(table.loc[index, "p"].to_numpy(dtype=float))
    order = {key: i for i, key in enumerate(keys)}
    position = table.apply(lambda row: order[tuple(row[c] for c in ("setting", "kind", "a", "b", "k", "group",
                                                                     "measure"))], axis=1)
    return table.iloc[np.argsort(position.to_numpy(), kind="stable")].reset_index(drop=True)


def seeds_report(table: pd.DataFrame, seeds: list[int], choices: dict, margin: float, quality: dict | None = None) -> dict:
    """metrics/seeds.json: the draws' seeds, each draw's models' quality (``draw_quality``) and tuned choices, and
    the pooled rows of the cross-lingual queries as a whole (group all): setting -> kind -> "a" or "a - b" -> k ->
    measure -> figures."""
    report = {"seeds": seeds, "equivalence_margin": margin,
              "quality": {str(s): (quality or {}).get(s) for s in seeds},
              "tuning": {str(s): choices[s] for s in seeds}, "rows": {}}
    for _, row in table[table["group"] == "all"].iterrows():
        name = row["a"] if row["kind"] == "gain" else f"{row['a']} - {row['b']}"
        figures = {"delta": row["delta"], "ci_low": row["ci_low"], "ci_high": row["ci_high"], "p": row["p"],
                   "p_holm": row["p_holm"], "sd_draws": row["sd_draws"],
                   "by_seed": {str(s): row[f"delta_{s}"] for s in seeds}}
        if row["kind"] != "gain":
            figures["p_tost"] = row["p_tost"]
        figures = {k: (round(float(v), 6) if not isinstance(v, dict) else {s: round(float(x), 6) for s, x in v.items()})
                   for k, v in figures.items()}
        report["rows"].setdefault(row["setting"], {}).setdefault(row["kind"], {}).setdefault(name, {}).setdefault(
            str(int(row["k"])), {})[row["measure"]] = figures
    report["clusters"] = {setting: int(part["clusters"].max()) for setting, part in table.groupby("setting")}
    return report

