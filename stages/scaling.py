#!/usr/bin/env python
"""scaling: accuracy and cost of each method for k = 0..n_languages target languages, and the comparison.

For every corpus setting (evaluate.settings), method (`methods`) and k, the corpus is augmented with
the first k languages, searched with index.factory and scored; queries are split into in-set
(language among the k) and out-of-set; nDCG@10 and R@2kt are tested against the baseline (paired
two-sided t-test, Holm over k). Methods in scaling.control are also run with their items shuffled
across passages (<method>-shuffled): a content-free control. Writes
- plots/scaling.csv: one row per setting, method, k and query group;
- plots/scaling/<method>[.<setting>].csv: one row per k, for the DVC plots in dvc.yaml;
- plots/scaling.png (global corpus), plots/scaling_parallel.png, plots/cost.png;
- metrics/comparison.json: per setting and k, xqg minus each translation method on the same queries
  (paired t-test, Holm over k).
"""
import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from xaug.cli import run_stage, setup
from xaug.evaluation import Evaluator, check_setting
from xaug.io import atomic_path, write_json
from xaug.methods import check_methods, fusion_settings, load_method
from xaug.params import load_params, positive_int
from xaug.scaling import compare, per_query_by_k, plot_cost, plot_scaling, shuffled_control, sweep, write_plot_tables
from xaug.search import read_ids


def comparison_report(frame: pd.DataFrame) -> dict:
    """{setting: {"xqg-translate": {k: {group: {delta/p/p_holm per measure, queries}}}}}."""
    report: dict = {}
    for _, row in frame.iterrows():
        entry = {key: (None if pd.isna(v) else round(float(v), 6)) for key, v in row.items()
                 if key.startswith(("delta_", "p_"))}
        entry["queries"] = int(row["queries"])
        report.setdefault(row["setting"], {}).setdefault(f"{row['a']}-{row['b']}", {}) \
              .setdefault(str(int(row["k"])), {})[row["group"]] = entry
    return report


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--method", action="append", help="a method (repeatable; default: `methods` of params.yaml)")
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--passages", default="data/embeddings/passages")
    ap.add_argument("--queries", default="data/embeddings/queries")
    ap.add_argument("--data", default="data/mlqa")
    ap.add_argument("--generated-root", default="data/generated")
    ap.add_argument("--plots", default="plots")
    ap.add_argument("--comparison", default="metrics/comparison.json")
    args = ap.parse_args()
    log = setup()
    p = load_params(args.params)
    languages, k = p.get_path("languages"), p.get_path("n_languages")
    methods = args.method or check_methods(p.get_path("methods"))
    controls = set(p.get_path("scaling.control", []))
    depth = positive_int(p.get_path("evaluate.depth"), "evaluate.depth")
    passages, ids = np.load(args.passages + ".npy"), read_ids(args.passages + ".ids.txt")
    inputs = {m: load_method(Path(args.generated_root) / m, m, languages, k, fusion_settings(p, m)) for m in methods}
    frames, comparisons = [], []
    for setting in p.get_path("evaluate.settings", ["global"]):
        evaluator = Evaluator(args.data, args.queries, languages, depth, check_setting(setting))
        per_k = {}
        for m in methods:
            runs = [inputs[m]] + ([shuffled_control(inputs[m], p.get_path("seed"))] if m in controls else [])
            for run in runs:
                per_k[run.name] = per_query_by_k(evaluator, passages, ids, run, k, p.get_path("index.factory"))
                frames.append(sweep(evaluator, passages, ids, languages, run, k, per_k=per_k[run.name]))
        if "xqg" in per_k:
            for other in ("translate", "translate_oracle"):
                if other in per_k and k > 0:
                    comparisons.append(compare(evaluator, languages, "xqg", per_k["xqg"], other, per_k[other]))
    frame = pd.concat(frames, ignore_index=True)
    plots = Path(args.plots)
    with atomic_path(plots / "scaling.csv") as tmp:
        frame.to_csv(tmp, index=False, float_format="%.6g")
    write_plot_tables(frame, plots / "scaling")
    for setting, part in frame.groupby("setting"):
        name = "scaling.png" if setting == "global" else f"scaling_{setting}.png"
        plot_scaling(part, plots / name, title=f"{setting} corpus; ")
    plot_cost(frame[frame["setting"] == frame["setting"].iloc[0]], plots / "cost.png")
    write_json(args.comparison, comparison_report(pd.concat(comparisons, ignore_index=True)) if comparisons else {})
    for _, row in frame[frame["group"] == "all"].iterrows():
        log.info("%s, %s corpus, k=%d: nDCG@10 %.4f (%+.4f, p_holm %s)", row["method"], row["setting"], row["k"],
                 row["nDCG@10"], row["delta_nDCG@10"],
                 "-" if pd.isna(row.get("p_holm_nDCG@10")) else f"{row['p_holm_nDCG@10']:.2g}")


if __name__ == "__main__":
    run_stage(main)
