#!/usr/bin/env python
"""tune: choose each method's fusion weight (alpha, and for xqg the number of queries) on the tune split.

The tune questions (training-split articles no generator or translator trained on) search the corpus
augmented with every language of `languages`, in the corpus setting each method is reported in
(global; parallel_contexts: parallel), for each method in `methods` and weight mode in
scaling.weights, over the grid tune.alphas x tune.n_queries_used (xqg only); the best question-level
mean of tune.measure wins. Writes the grid and the choices to metrics/tuning.json, which
augment.<method>.alpha: auto (and n_queries_used: auto) and the scaling stage read. The held-out
evaluation questions are not read.
"""

from xaug.cli import run
from xaug.experiment import Experiment
from xaug.io import write_json
from xaug.methods import METHODS, augment_settings
from xaug.params import from_params
from xaug.tuning import TuneSettings, tune


def arguments(ap):
    ap.add_argument("--passages", default="data/embeddings/passages")
    ap.add_argument("--queries", default="data/embeddings/tune_queries")
    ap.add_argument("--data", default="data/mlqa")
    ap.add_argument("--generated-root", default="data/generated")
    ap.add_argument("--out", default="metrics/tuning.json")


def main(args, p, log):
    settings = from_params(TuneSettings, p.get_path("tune"))
    exp = Experiment.from_params(p, args.passages, args.generated_root)
    corpus_settings = sorted({METHODS[m].setting for m in exp.methods})
    query_sets = {s: exp.queries(args.data, args.queries, s, split="tune") for s in corpus_settings}
    augment = {m: augment_settings(p, m, only=("renormalize",)) for m in exp.methods}
    report = tune(exp, query_sets, settings, augment, p.get_path("xqg.n_queries"), log)
    write_json(args.out, report)


if __name__ == "__main__":
    run(main, __doc__, arguments)
