#!/usr/bin/env python
"""dial: gain against generator quality on XQuAD, from the human ceilings to the embedded generators.

For every fraction r of dial.fractions, each side mixes its human ceiling with the embedded generator's
output (xaug/dial.py): the query side replaces r of each passage's real-question items by its generated
queries (scored leave-question-out), the passage side r of the human translations by the translator's
output. Each mix's quality (round-trip R@10 of the query items; chrF of the passage texts against the
human translation) and its nDCG@10 gain over the baseline at every k (every subset of k languages,
scaling.subsets), each mix with its own alpha per k, chosen on the tune split's questions over the
tune.alphas grid (the ceiling's weight mode and renormalize state), tested per relevant passage
(sign-flip test, bootstrap CI, Holm over the dial). Writes
- --table (plots/xquad/dial.csv): side, fraction, quality, k, the mix's alpha and the gain with CI and p;
- --metrics (metrics/xquad/dial.json): quality per side and fraction, and per k the query-side quality at
  which its gain reaches the passage side's at r = 0 (human translations) and r = 1 (the embedded
  translator), with a cluster-bootstrap CI;
- --plot (plots/xquad/dial.png): gain against quality per k, both sides, the embedded generators at r = 1.
"""
from pathlib import Path

import numpy as np
import pandas as pd

from xaug.cli import run
from xaug.dial import SIDES, DialSettings, crossings, dial_values, mixed_passages, mixed_questions, passage_chrf, \
    round_trip, tuned_fusion
from xaug.errors import ConfigError
from xaug.experiment import Experiment
from xaug.formats import read_texts, write_table
from xaug.io import read_json, write_json
from xaug.methods import METHODS, fusion_settings
from xaug.params import from_params
from xaug.plots import plot_dial
from xaug.stats import cluster_means, cluster_test, family_resamples, holm
from xaug.sweep import ScalingSettings, subset_plan
from xaug.tuning import TuneSettings

MEASURE = "nDCG@10"


def arguments(ap):
    ap.add_argument("--passages", default="data/xquad/embeddings/passages")
    ap.add_argument("--queries", default="data/xquad/embeddings/queries")
    ap.add_argument("--tune-queries", default="data/xquad/embeddings/tune_queries")
    ap.add_argument("--data", default="data/xquad/prepared")
    ap.add_argument("--generated-root", default="data/xquad/generated")
    ap.add_argument("--items-root", default=None, help="folders of each method's <lang> items folders "
                    "(default: --generated-root)")
    ap.add_argument("--tuning", default="metrics/xquad/tuning.json")
    ap.add_argument("--table", default="plots/xquad/dial.csv")
    ap.add_argument("--metrics", default="metrics/xquad/dial.json")
    ap.add_argument("--plot", default="plots/xquad/dial.png")


def main(args, p, log):
    settings = from_params(DialSettings, p.get_path("dial"))
    scaling = from_params(ScalingSettings, p.get_path("scaling"), only=("subsets", "resamples"))
    grid = from_params(TuneSettings, p.get_path("tune"), only=("alphas", "measure"))
    needed = [m for pair in SIDES.values() for m in pair]
    missing = [m for m in needed if m not in p.get_path("methods")]
    if missing:
        raise ConfigError(f"methods: the dial mixes {', '.join(needed)}; {', '.join(missing)} missing")
    tuning = read_json(args.tuning)
    exp = Experiment.from_params(p, args.passages, args.generated_root, args.items_root)
    languages, seed, passages, passage_ids, items = exp.languages, p.seed(), exp.passages, exp.passage_ids, exp.methods
    base = {side: {k: fusion_settings(p, c, tuning, k=k) for k in range(1, len(languages) + 1)}
            for side, (c, _) in SIDES.items()}  # the weight mode and renormalize state of each side's ceiling
    setting = METHODS[SIDES["query"][0]].setting
    queries = exp.queries(args.data, args.queries, setting)
    tune_queries = exp.queries(args.data, args.tune_queries, setting, split="tune")
    root = Path(args.generated_root)
    plan = subset_plan(len(languages), scaling.subsets, seed)
    cross = queries.lang >= 0
    baseline = queries.score(passages, names=[MEASURE])[0]
    texts = {m: [read_texts(root / m, lang) for lang in languages] for m in SIDES["passage"]}
    rows, gains = [], {}
    for side, (ceiling, generator) in SIDES.items():
        for r in settings.fractions:
            if side == "query":
                mix = mixed_questions(items[ceiling], items[generator], r, seed)
                quality = round_trip(mix, passages)
            else:
                mix, used = mixed_passages(items[ceiling], items[generator], r, seed)
                quality = passage_chrf(texts[ceiling], texts[generator], used, passage_ids)
            fusion = tuned_fusion(tune_queries, passages, mix, base[side], plan, grid.alphas, grid.measure)
            for k, values in dial_values(queries, passages, mix, fusion, plan, MEASURE).items():
                gains[side, r, k] = np.where(cross, values - baseline, np.nan)
                rows.append({"side": side, "fraction": r, "quality": round(quality, 4), "k": k,
                             "alpha": fusion[k].alpha})
            log.info("%s side, r = %g: quality %.3f, alpha by k %s", side, r, quality,
                     " ".join(f"{f.alpha:g}" for f in fusion.values()))
    diffs = np.stack([cluster_means(gains[row["side"], row["fraction"], row["k"]], queries.clusters) for row in rows])
    diffs = diffs[:, ~np.isnan(diffs).any(axis=0)]  # clusters with cross-lingual queries
    test = cluster_test(diffs, family_resamples(scaling.resamples, len(rows)), seed)
    table = pd.DataFrame(rows).assign(**{f"delta_{MEASURE}": test.delta, f"ci_low_{MEASURE}": test.low,
                                         f"ci_high_{MEASURE}": test.high, f"p_holm_{MEASURE}": holm(test.p),
                                         "clusters": test.clusters})
    write_table(args.table, table)
    quality = {side: {f"{r:g}": float(table[(table.side == side) & (table.fraction == r)]["quality"].iloc[0])
                      for r in settings.fractions} for side in SIDES}
    by_k = {}
    for k in plan:
        q = np.stack([gains["query", r, k] for r in settings.fractions])
        pg = np.stack([gains["passage", r, k] for r in settings.fractions])
        by_k[str(k)] = crossings(np.array(list(quality["query"].values())), q, pg, queries.clusters,
                                 scaling.resamples, seed)
    write_json(args.metrics, {"measure": MEASURE, "setting": setting, "fractions": settings.fractions,
                              "quality": quality, "quality_measures": {"query": "round-trip R@10",
                                                                       "passage": "chrF against the human translation"},
                              "crossings": by_k})
    plot_dial(table, args.plot, MEASURE)
    for k, c in by_k.items():
        log.info("k=%s: query-side quality that matches human translations %s, the embedded translator %s", k,
                 c["human_translation"]["quality"], c["embedded_translator"]["quality"])


if __name__ == "__main__":
    run(main, __doc__, arguments)
