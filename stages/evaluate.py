#!/usr/bin/env python
"""evaluate: search each system's index with the evaluation queries and score the runs.

For every --system NAME=INDEX: a TREC run file and per-query measures (CSV) in --runs, and an entry in
metrics/retrieval.json: nDCG@10, RR@10, R@1/5/20/100 (ir-measures) and answer recall in the first
2000/5000 tokens (R@2kt, R@5kt) per query language, their macro average over `languages` ("avg"),
and English apart ("en").
"""
import argparse
from pathlib import Path

from xaug.cli import run_stage, setup
from xaug.data import PIVOT
from xaug.evaluation import Evaluator
from xaug.io import atomic_path, write_json
from xaug.metrics import write_run
from xaug.params import load_params, positive_int
from xaug.search import FaissSearcher


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--system", action="append", metavar="NAME=INDEX",
                    help="a system and its faiss index (repeatable; default baseline=data/index/baseline.faiss)")
    ap.add_argument("--queries", default="data/embeddings/queries")
    ap.add_argument("--data", default="data/mlqa")
    ap.add_argument("--runs", default="data/runs")
    ap.add_argument("--metrics", default="metrics/retrieval.json")
    args = ap.parse_args()
    log = setup()
    p = load_params(args.params)
    evaluator = Evaluator(args.data, args.queries, p.get_path("languages"),
                          positive_int(p.get_path("evaluate.depth"), "evaluate.depth"))
    metrics = {}
    for spec in args.system or ["baseline=data/index/baseline.faiss"]:
        name, _, index = spec.partition("=")
        ranking, scores = evaluator.search(FaissSearcher.load(index, p.get_path("index.search_params", "")))
        per_query = evaluator.per_query(ranking, scores)
        metrics[name] = summary = evaluator.summary(per_query)
        runs = Path(args.runs)
        write_run(runs / f"{name}.trec", ranking, scores, name)
        with atomic_path(runs / f"{name}.per_query.csv") as tmp:
            evaluator.frame(per_query).to_csv(tmp, index=False, float_format="%.6g")
        avg = summary["avg"]
        log.info("%s cross-lingual avg: R@1 %.3f RR@10 %.3f R@100 %.3f R@2kt %.3f; en R@1 %.3f", name, avg["R@1"],
                 avg["RR@10"], avg["R@100"], avg["R@2kt"], summary.get(PIVOT, {}).get("R@1", float("nan")))
    write_json(args.metrics, metrics)


if __name__ == "__main__":
    run_stage(main)
