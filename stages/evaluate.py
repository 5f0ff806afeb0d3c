#!/usr/bin/env python
"""evaluate: search each system's index with the evaluation queries and score the runs.

For every --system NAME=INDEX and corpus setting in evaluate.settings (`global`: every query
searches all corpus paragraphs; `parallel`: a query in L searches those with an L parallel):
a TREC run file and per-query measures (CSV) in --runs, and an entry in metrics/retrieval.json
(global) or metrics/retrieval_parallel.json: nDCG@10, RR@10, R@1/5/20/100 (ir-measures) and answer recall in the first
2000/5000 tokens (R@2kt, R@5kt) per query language, their macro average over `languages` ("avg"),
and the corpus language (data.corpus_language, as prepare recorded it) apart under its code ("en").
"""
from pathlib import Path

from xaug.cli import run
from xaug.evaluation import Evaluator
from xaug.io import atomic_path, write_json
from xaug.methods import check_methods
from xaug.metrics import write_run
from xaug.params import positive_int
from xaug.search import FaissSearcher


def arguments(ap):
    ap.add_argument("--system", action="append", metavar="NAME=INDEX",
                    help="a system and its faiss index (repeatable); default: baseline and every method in "
                         "`methods` of params.yaml, from --index-dir/<name>.faiss")
    ap.add_argument("--index-dir", default="data/index")
    ap.add_argument("--queries", default="data/embeddings/queries")
    ap.add_argument("--data", default="data/mlqa")
    ap.add_argument("--runs", default="data/runs")
    ap.add_argument("--metrics", default="metrics/retrieval.json")


def main(args, p, log):
    depth = positive_int(p.get_path("evaluate.depth"), "evaluate.depth")
    systems = args.system or [f"{name}={Path(args.index_dir) / name}.faiss"
                              for name in ["baseline", *check_methods(p.get_path("methods", []))]]
    searchers = {}
    for spec in systems:
        name, _, index = spec.partition("=")
        searchers[name] = FaissSearcher.load(index, p.get_path("index.search_params", ""))
    for setting in p.get_path("evaluate.settings", ["global"]):
        evaluator = Evaluator(args.data, args.queries, p.get_path("languages"), depth, setting)
        suffix = "" if setting == "global" else f".{setting}"
        metrics = {}
        for name, searcher in searchers.items():
            ranking, scores = evaluator.search(searcher)
            per_query = evaluator.per_query(ranking, scores)
            metrics[name] = summary = evaluator.summary(per_query)
            runs = Path(args.runs)
            write_run(runs / f"{name}{suffix}.trec", ranking, scores, name)
            with atomic_path(runs / f"{name}{suffix}.per_query.csv") as tmp:
                evaluator.frame(per_query).to_csv(tmp, index=False, float_format="%.6g")
            avg = summary["avg"]
            log.info("%s, %s corpus, cross-lingual avg: R@1 %.3f nDCG@10 %.3f R@100 %.3f R@2kt %.3f; %s R@1 %.3f", name,
                     setting, avg["R@1"], avg["nDCG@10"], avg["R@100"], avg["R@2kt"], evaluator.corpus_language,
                     summary.get(evaluator.corpus_language, {}).get("R@1", float("nan")))
        out = Path(args.metrics)
        write_json(out if setting == "global" else out.with_name(f"{out.stem}_{setting}{out.suffix}"), metrics)


if __name__ == "__main__":
    run(main, __doc__, arguments)
