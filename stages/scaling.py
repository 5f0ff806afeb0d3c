#!/usr/bin/env python
"""scaling: accuracy and cost of each method for k = 0..n_languages target languages.

For every k, the corpus is augmented with the first k languages, searched with index.factory and
scored; queries are split into in-set (language among the k) and out-of-set; nDCG@10 and R@2kt are
tested against the baseline (paired two-sided t-test, Holm over k). With --control, each method is
also run with its items shuffled across passages (<method>-shuffled), a content-free control. Writes plots/scaling.csv (one
row per method, k, query group) and plots/scaling.png, plots/cost.png.
"""
import argparse
from pathlib import Path

import numpy as np

from xaug.cli import run_stage, setup
from xaug.evaluation import Evaluator
from xaug.io import atomic_path
from xaug.methods import fusion_settings, load_method
from xaug.params import load_params, positive_int
from xaug.scaling import plot_cost, plot_scaling, shuffled_control, sweep
from xaug.search import read_ids


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--method", action="append", required=True, help="a method (repeatable)")
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--passages", default="data/embeddings/passages")
    ap.add_argument("--queries", default="data/embeddings/queries")
    ap.add_argument("--data", default="data/mlqa")
    ap.add_argument("--generated-root", default="data/generated")
    ap.add_argument("--plots", default="plots")
    ap.add_argument("--control", action="store_true", help="add the shuffled-items control of every method")
    args = ap.parse_args()
    log = setup()
    p = load_params(args.params)
    languages, k = p.get_path("languages"), p.get_path("n_languages")
    evaluator = Evaluator(args.data, args.queries, languages, positive_int(p.get_path("evaluate.depth"), "evaluate.depth"))
    passages, ids = np.load(args.passages + ".npy"), read_ids(args.passages + ".ids.txt")
    frames = []
    for method in args.method:
        inputs = load_method(Path(args.generated_root) / method, method, languages, k, fusion_settings(p, method))
        runs = [inputs, shuffled_control(inputs, p.get_path("seed"))] if args.control else [inputs]
        for run in runs:
            frames.append(sweep(evaluator, passages, ids, languages, run, k, p.get_path("index.factory")))
    import pandas as pd

    frame = pd.concat(frames, ignore_index=True)
    plots = Path(args.plots)
    with atomic_path(plots / "scaling.csv") as tmp:
        frame.to_csv(tmp, index=False, float_format="%.6g")
    plot_scaling(frame, plots / "scaling.png")
    plot_cost(frame, plots / "cost.png")
    for _, row in frame[frame["group"] == "all"].iterrows():
        log.info("%s k=%d: nDCG@10 %.4f (%+.4f, p_holm %s)", row["method"], row["k"], row["nDCG@10"],
                 row["delta_nDCG@10"], "-" if pd.isna(row.get("p_holm_nDCG@10")) else f"{row['p_holm_nDCG@10']:.2g}")


if __name__ == "__main__":
    run_stage(main)
