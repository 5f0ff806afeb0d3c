#!/usr/bin/env python
"""scaling: how each method's gain grows with the number k of target languages, measured on languages alone.

For every corpus setting (evaluate.settings), method (`methods`), weight mode (scaling.weights; the
first is primary), renormalize state (on and off; augment.<method>.renormalize is primary) and
k = 1..len(languages), every subset of k languages (scaling.subsets) augments the corpus with that
k's alpha (and n_queries_used) from augment.<method> or, where `auto`, the tune stage's choice; per
query, measures are averaged over the subsets that hold its language (in-set), those that do not
(out-of-set) and all. Under the primary weight mode each method also runs with one alpha at every k,
with equal items at every k, with its items shuffled across the passages that have items
(scaling.permutations times) and with its language centroids (content-free controls), and beside the
normalisation baseline (centring, its strength from the tune stage). Gains and contrasts are tested
per relevant passage (sign-flip test, 95% cluster-bootstrap CI, scaling.resamples resamples at least;
Holm per family; TOST within scaling.equivalence_margin). Writes
- plots/scaling.csv: gains over the baseline (every setting, method, variant, weight mode, renormalize
  state, k, group; `primary` marks the configured fusion);
- plots/contrasts.csv and metrics/comparison.json: method vs its controls and the normalisation
  baseline, between methods, and languages vs items;
- metrics/transfer.json and plots/transfer.png: gain for queries in Y with passages augmented by X alone;
- metrics/coverage.json: per setting, method and language, the share of candidate passages with items and
  of cross-lingual queries whose relevant passage has items (after leave-out): coverage's own effect;
- plots/scaling.png, plots/scaling_parallel.png, plots/weight_modes.png, plots/variants.png, plots/cost.png;
- plots/scaling/<method>[.raw][.<setting>].csv: one row per k, for the DVC plots in dvc.yaml.
"""
from xaug.cli import one_blas_thread, reexec_with_malloc_settings, run

if __name__ == "__main__":
    reexec_with_malloc_settings()
one_blas_thread()  # the sweeps run in scaling.workers processes: one BLAS thread each (before numpy loads)

from pathlib import Path  # noqa: E402

from xaug.evaluation import EvaluateSettings  # noqa: E402
from xaug.experiment import Experiment  # noqa: E402
from xaug.io import read_json  # noqa: E402
from xaug.methods import augment_settings, fusion_settings, normalisation_strength  # noqa: E402
from xaug.params import from_params  # noqa: E402
from xaug.scaling import run_scaling, write_scaling_outputs  # noqa: E402
from xaug.sweep import ScalingSettings  # noqa: E402


def arguments(ap):
    ap.add_argument("--passages", default="data/embeddings/passages")
    ap.add_argument("--queries", default="data/embeddings/queries")
    ap.add_argument("--data", default="data/mlqa")
    ap.add_argument("--generated-root", default="data/generated")
    ap.add_argument("--items-root", default=None, help="folders of each method's <lang> items folders "
                    "(default: --generated-root)")
    ap.add_argument("--tuning", default="metrics/tuning.json")
    ap.add_argument("--plots", default="plots")
    ap.add_argument("--comparison", default="metrics/comparison.json")
    ap.add_argument("--transfer", default="metrics/transfer.json")
    ap.add_argument("--coverage", default="metrics/coverage.json")


def main(args, p, log):
    settings = from_params(ScalingSettings, p.get_path("scaling"))
    corpus_settings = from_params(EvaluateSettings, p.get_path("evaluate"), only=("settings",)).settings
    exp = Experiment.from_params(p, args.passages, args.generated_root, args.items_root)
    seed = p.seed()
    tuning = read_json(args.tuning) if Path(args.tuning).is_file() else None
    renormalize = {m: augment_settings(p, m, only=("renormalize",)).renormalize for m in exp.methods}
    ks = range(1, len(exp.languages) + 1)
    fusion = {m: {(w, r): {k: fusion_settings(p, m, tuning, w, k, r) for k in ks}
                  for w in exp.weights for r in (renormalize[m], not renormalize[m])} for m in exp.methods}
    betas = {s: normalisation_strength(tuning, s) for s in corpus_settings}
    if tuning is None:
        log.info("no normalisation baseline: %s not found (the tune stage chooses its strength)", args.tuning)
    gains, contrasts, transfers, covered = run_scaling(exp, settings, corpus_settings, fusion, seed, args.data,
                                                       args.queries, renormalize, betas, log)
    write_scaling_outputs(gains, contrasts, transfers, exp.weights, args.plots, args.comparison, args.transfer,
                          covered, args.coverage)
    top = gains[(gains["group"] == "all") & (gains["variant"] == "method") & (gains["k"] == len(exp.languages))
                & gains["primary"]]
    for _, row in top.iterrows():
        log.info("%s, %s corpus, %s weight, k=%d: nDCG@10 %.4f, gain %+.4f [%+.4f, %+.4f] (p_holm %.2g, %d questions)",
                 row["method"], row["setting"], row["weight"], row["k"], row["nDCG@10"], row["delta_nDCG@10"],
                 row["ci_low_nDCG@10"], row["ci_high_nDCG@10"], row["p_holm_nDCG@10"], row["clusters"])


if __name__ == "__main__":
    run(main, __doc__, arguments)
