#!/usr/bin/env python
"""tune: choose each method's fusion weight (alpha, and for xqg the number of queries) on the tune split.

The tune questions (training-split articles no generator or translator trained on) search the corpus
augmented with each planned subset of k languages of `languages` (scaling.subsets), in the corpus
setting each method is reported in (global; parallel_contexts: parallel), for each method in
`methods`, weight mode in scaling.weights, renormalize state (on and off) and k, over the grid
tune.alphas x tune.n_queries_used (xqg only); the best question-level mean of tune.measure, averaged
over the subsets of k, wins for that k. The normalisation baseline's strength is chosen the same way
(xaug/hubness.py). Writes the grid and the choices per k to metrics/tuning.json, which
augment.<method>.alpha: auto (and n_queries_used: auto) and the scaling stage read. The held-out
evaluation questions are not read.
"""

from xaug.cli import one_blas_thread, reexec_with_malloc_settings, run

if __name__ == "__main__":
    reexec_with_malloc_settings()
one_blas_thread()  # the grid runs in scaling.workers processes: one BLAS thread each (before numpy loads)

from xaug.evaluation import EvaluateSettings  # noqa: E402
from xaug.experiment import Experiment  # noqa: E402
from xaug.io import write_json  # noqa: E402
from xaug.methods import METHODS, augment_settings, check_methods  # noqa: E402
from xaug.params import from_params  # noqa: E402
from xaug.sweep import ScalingSettings, subset_plan  # noqa: E402
from xaug.tuning import TuneSettings, tune  # noqa: E402


def arguments(ap):
    ap.add_argument("--passages", default="data/embeddings/passages")
    ap.add_argument("--queries", default="data/embeddings/tune_queries")
    ap.add_argument("--data", default="data/mlqa")
    ap.add_argument("--generated-root", default="data/generated")
    ap.add_argument("--items-root", default=None, help="folders of each method's <lang> items folders "
                    "(default: --generated-root)")
    ap.add_argument("--out", default="metrics/tuning.json")


def main(args, p, log):
    settings = from_params(TuneSettings, p.get_path("tune"))
    scaling = from_params(ScalingSettings, p.get_path("scaling"), only=("subsets", "workers"))
    reported = from_params(EvaluateSettings, p.get_path("evaluate"), only=("settings",)).settings
    augment = {m: augment_settings(p, m, only=("renormalize",)) for m in check_methods(p.get_path("methods"))}
    exp = Experiment.from_params(p, args.passages, args.generated_root, args.items_root)
    corpus_settings = sorted({METHODS[m].setting for m in exp.methods} | set(reported))
    query_sets = dict(exp.query_sets(args.data, args.queries, corpus_settings, split="tune"))
    plan = subset_plan(len(exp.languages), scaling.subsets, p.seed())
    report = tune(exp, query_sets, settings, augment, p.get_path("xqg.n_queries"), plan, scaling.workers, log)
    write_json(args.out, report)


if __name__ == "__main__":
    run(main, __doc__, arguments)
