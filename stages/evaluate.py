#!/usr/bin/env python
"""evaluate: search each system's index with the evaluation queries and score the runs.

For every --system NAME=INDEX and corpus setting in evaluate.settings (`global`: every query
searches all corpus paragraphs; `parallel`: a query in L searches those with an L parallel):
a TREC run file and per-query measures (CSV) in --runs, and an entry in metrics/retrieval.json
(global) or metrics/retrieval_parallel.json: nDCG@10, RR@10, R@1/5/20/100 (ir-measures) and answer recall in the first
2000/5000 tokens (R@2kt, R@5kt) per query language, their macro average over `languages` ("avg"),
and the corpus language (data.corpus_language, as prepare recorded it) apart under its code ("en").
A method whose items are the evaluated questions (real_questions) is scored leave-question-out: the
passages holding a query's own question's items are rescored without them (--augmented
<name>.leave_out.npz, from the augment stage).
"""
from pathlib import Path

from xaug.cli import run
from xaug.evaluation import (EvaluateSettings, Evaluator, default_systems, evaluate_systems, load_systems,
                             metrics_path, system_indexes)
from xaug.formats import read_leave_out
from xaug.io import write_json
from xaug.methods import METHODS, check_methods
from xaug.params import from_params
from xaug.search import IndexSettings


def arguments(ap):
    ap.add_argument("--system", action="append", metavar="NAME=INDEX",
                    help="a system and its faiss index (repeatable); default: baseline and every method in "
                         "`methods` of params.yaml, from --index-dir/<name>.faiss")
    ap.add_argument("--index-dir", default="data/index")
    ap.add_argument("--augmented", default="data/augmented",
                    help="folder of <name>.leave_out.npz for methods scored leave-question-out")
    ap.add_argument("--queries", default="data/embeddings/queries")
    ap.add_argument("--data", default="data/mlqa")
    ap.add_argument("--runs", default="data/runs")
    ap.add_argument("--metrics", default="metrics/retrieval.json")


def main(args, p, log):
    settings = from_params(EvaluateSettings, p.get_path("evaluate"))
    specs = args.system or default_systems(args.index_dir, check_methods(p.get_path("methods", [])))
    index = from_params(IndexSettings, p.get_path("index"), only=("search_params",))
    names = list(system_indexes(specs))  # every index file exists, or a one-line error now
    left_out = {name: read_leave_out(Path(args.augmented) / f"{name}.leave_out.npz") for name in names
                if name in METHODS and METHODS[name].leave_out}
    first = Evaluator(args.data, args.queries, p.get_path("languages"), settings.depth, settings.settings[0])
    evaluators = [first, *(first.in_setting(setting) for setting in settings.settings[1:])]
    metrics = {setting: {} for setting in settings.settings}
    for name, searcher in load_systems(specs, index.search_params):  # one index in memory at a time
        for evaluator in evaluators:
            summary = evaluate_systems(evaluator, {name: searcher}, args.runs, left_out)[name]
            metrics[evaluator.setting][name] = summary
            avg = summary["avg"]
            log.info("%s, %s corpus, cross-lingual avg: R@1 %.3f nDCG@10 %.3f R@100 %.3f R@2kt %.3f; %s R@1 %.3f", name,
                     evaluator.setting, avg["R@1"], avg["nDCG@10"], avg["R@100"], avg["R@2kt"],
                     evaluator.corpus_language, summary.get(evaluator.corpus_language, {}).get("R@1", float("nan")))
        del searcher
    for setting, by_system in metrics.items():
        write_json(metrics_path(args.metrics, setting), by_system)


if __name__ == "__main__":
    run(main, __doc__, arguments)
