#!/usr/bin/env python
"""scaling: how each method's gain grows with the number k of target languages, measured on languages alone.

For every corpus setting (evaluate.settings), method (`methods`), weight mode (scaling.weights; the
first is primary) and k = 1..len(languages), every subset of k languages (scaling.subsets) augments
the corpus with alpha (and n_queries_used) from augment.<method> or, where `auto`, the tune stage's
choice; per query, measures are averaged over the subsets that hold its language (in-set), those
that do not (out-of-set) and all. Under the primary weight mode each method also runs with its items
shuffled across the passages that have items (scaling.permutations times) and with its language
centroids: content-free controls. Gains and contrasts are tested per question (sign-flip test,
95% cluster-bootstrap CI, scaling.resamples resamples; Holm per family). Writes
- plots/scaling.csv: gains over the baseline (every setting, method, control, weight mode, k, group);
- plots/contrasts.csv and metrics/comparison.json: method vs its controls, and between methods;
- metrics/transfer.json and plots/transfer.png: gain for queries in Y with passages augmented by X alone;
- plots/scaling.png, plots/scaling_parallel.png, plots/weight_modes.png, plots/cost.png;
- plots/scaling/<method>[.<setting>].csv: one row per k, for the DVC plots in dvc.yaml.
"""
import os

from xaug.cli import reexec_with_malloc_settings

if __name__ == "__main__":
    reexec_with_malloc_settings()
# The sweeps run in scaling.workers processes: one BLAS thread each (set before numpy loads).
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

from pathlib import Path  # noqa: E402

import pandas as pd  # noqa: E402

from xaug.cli import run  # noqa: E402
from xaug.errors import ConfigError  # noqa: E402
from xaug.evaluation import check_setting  # noqa: E402
from xaug.experiment import Experiment  # noqa: E402
from xaug.io import atomic_path, read_json, write_json  # noqa: E402
from xaug.methods import fusion_settings  # noqa: E402
from xaug.params import positive_int  # noqa: E402
from xaug.plots import plot_cost, plot_scaling, plot_transfer, plot_weight_modes, write_plot_tables  # noqa: E402
from xaug.scaling import run_setting, subset_plan  # noqa: E402


def comparison_report(contrasts: pd.DataFrame) -> dict:
    """{setting: {"a - b": {k: {group: {delta/ci/p/p_holm per tested measure, queries, clusters}}}}}."""
    report: dict = {}
    for _, row in contrasts.iterrows():
        entry = {key: (None if pd.isna(v) else round(float(v), 6)) for key, v in row.items()
                 if key.startswith(("delta_", "ci_", "p_"))}
        entry.update(queries=int(row["queries"]), clusters=int(row["clusters"]))
        report.setdefault(row["setting"], {}).setdefault(f"{row['a']} - {row['b']}", {}) \
              .setdefault(str(int(row["k"])), {})[row["group"]] = entry
    return report


def arguments(ap):
    ap.add_argument("--passages", default="data/embeddings/passages")
    ap.add_argument("--queries", default="data/embeddings/queries")
    ap.add_argument("--data", default="data/mlqa")
    ap.add_argument("--generated-root", default="data/generated")
    ap.add_argument("--tuning", default="metrics/tuning.json")
    ap.add_argument("--plots", default="plots")
    ap.add_argument("--comparison", default="metrics/comparison.json")
    ap.add_argument("--transfer", default="metrics/transfer.json")


def main(args, p, log):
    exp = Experiment.from_params(p, args.passages, args.generated_root)
    settings_list = [check_setting(s) for s in p.get_path("evaluate.settings")]
    permutations = p.get_path("scaling.permutations")
    if isinstance(permutations, bool) or not isinstance(permutations, int) or permutations < 0:
        raise ConfigError(f"scaling.permutations: expected an integer >= 0, got {permutations!r}")
    resamples = positive_int(p.get_path("scaling.resamples"), "scaling.resamples")
    workers = positive_int(p.get_path("scaling.workers"), "scaling.workers")
    seed = p.seed()
    plan = subset_plan(len(exp.languages), p.get_path("scaling.subsets"), seed)
    tuning = read_json(args.tuning) if Path(args.tuning).is_file() else None
    weights = exp.weights
    fusion = {m: {w: fusion_settings(p, m, tuning, w) for w in weights} for m in exp.methods}
    gains, contrasts, transfers = [], [], {}
    for setting in settings_list:
        g, c, t = run_setting(exp.queries(args.data, args.queries, setting), exp.passages, exp.methods, fusion, plan,
                              weights, permutations, seed, resamples, exp.languages, workers)
        gains.append(g)
        contrasts.append(c)
        transfers[setting] = t
    gains, contrasts = pd.concat(gains, ignore_index=True), pd.concat(contrasts, ignore_index=True)
    plots = Path(args.plots)
    with atomic_path(plots / "scaling.csv") as tmp:
        gains.to_csv(tmp, index=False, float_format="%.6g")
    with atomic_path(plots / "contrasts.csv") as tmp:
        contrasts.to_csv(tmp, index=False, float_format="%.6g")
    write_plot_tables(gains, plots / "scaling", weights[0])
    for setting, part in gains.groupby("setting"):
        plot_scaling(part, plots / ("scaling.png" if setting == "global" else f"scaling_{setting}.png"), weights[0],
                     title=f"{setting} corpus; ")
    plot_weight_modes(gains, plots / "weight_modes.png")
    plot_cost(gains, plots / "cost.png", weights[0])
    plot_transfer(transfers, plots / "transfer.png")
    write_json(args.comparison, comparison_report(contrasts))
    write_json(args.transfer, transfers)
    top = gains[(gains["group"] == "all") & (gains["variant"] == "method") & (gains["k"] == len(exp.languages))]
    for _, row in top.iterrows():
        log.info("%s, %s corpus, %s weight, k=%d: nDCG@10 %.4f, gain %+.4f [%+.4f, %+.4f] (p_holm %.2g, %d questions)",
                 row["method"], row["setting"], row["weight"], row["k"], row["nDCG@10"], row["delta_nDCG@10"],
                 row["ci_low_nDCG@10"], row["ci_high_nDCG@10"], row["p_holm_nDCG@10"], row["clusters"])


if __name__ == "__main__":
    run(main, __doc__, arguments)
