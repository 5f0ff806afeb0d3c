#!/usr/bin/env python
"""seeds: the spread between draws of the trained query generator and translator, pooled into the results.

For `seed` (the pipeline's own models and items) and each seed of scaling.seeds (the *_seed stages'
models, under models/seeds/<seed>, and items, under --seeds-root/<seed>), the methods a trained model
produces (xqg, translate; those of `methods`) are tuned on the tune split with that draw's items (alpha
and xqg's number of queries per k, under the first weight mode of scaling.weights) and swept over every
planned subset of k languages under their configured fusion, with their centroid controls, beside the
normalisation baseline (its strength from --tuning). Gains over the baseline, method minus centroid,
method minus normalisation and xqg minus translate are averaged per relevant passage for each draw and
pooled: mean over draws and passages, 95% CI and p from resampling draws and passages together (Owen's
pigeonhole bootstrap), Holm per family, TOST within scaling.equivalence_margin (xaug/seeds.py). Writes
- plots/seeds.csv: every row (setting, kind, k, query group, measure), pooled and per draw;
- metrics/seeds.json: the cross-lingual queries' rows, each draw's delta and tuned alphas;
- plots/seeds.png: each draw's nDCG@10 gain against k and the pooled gain with its CI (global corpus).
"""
from xaug.cli import one_blas_thread, reexec_with_malloc_settings, release_memory, run

if __name__ == "__main__":
    reexec_with_malloc_settings()
one_blas_thread()  # the tune grid runs in scaling.workers processes: one BLAS thread each (before numpy loads)

from xaug.evaluation import EvaluateSettings  # noqa: E402
from xaug.experiment import Experiment  # noqa: E402
from xaug.formats import write_table  # noqa: E402
from xaug.io import read_json, write_json  # noqa: E402
from xaug.methods import METHODS, augment_settings, normalisation_strength  # noqa: E402
from xaug.params import from_params  # noqa: E402
from xaug.plots import plot_seeds  # noqa: E402
from xaug.seeds import (SEEDED, draw_experiment, draw_folders, draw_fusion, draw_quality, draw_rows,  # noqa: E402
                        pooled_table, references, seeds_report)
from xaug.sweep import ScalingSettings, subset_plan  # noqa: E402
from xaug.tuning import TuneSettings  # noqa: E402


def arguments(ap):
    ap.add_argument("--passages", default="data/embeddings/passages")
    ap.add_argument("--queries", default="data/embeddings/queries")
    ap.add_argument("--tune-queries", default="data/embeddings/tune_queries")
    ap.add_argument("--data", default="data/mlqa")
    ap.add_argument("--generated-root", default="data/generated")
    ap.add_argument("--items-root", default="data/items")
    ap.add_argument("--seeds-root", default="data/seeds", help="<seed>/generated and <seed>/items of each further seed")
    ap.add_argument("--tuning", default="metrics/tuning.json", help="the tune stage's report (normalisation strength)")
    ap.add_argument("--models-metrics", default="metrics", help="the first draw's train_xqg.json, translation.json "
                    "and generation.json (the others': --seeds-root/<seed>/metrics)")
    ap.add_argument("--table", default="plots/seeds.csv")
    ap.add_argument("--metrics", default="metrics/seeds.json")
    ap.add_argument("--figure", default="plots/seeds.png")


def main(args, p, log):
    scaling = from_params(ScalingSettings, p.get_path("scaling"),
                          only=("subsets", "weights", "resamples", "workers", "equivalence_margin", "seeds"))
    tune_settings = from_params(TuneSettings, p.get_path("tune"))
    reported = from_params(EvaluateSettings, p.get_path("evaluate"), only=("settings",)).settings
    seeded = [m for m in SEEDED if m in p.get_path("methods")]
    augment = {m: augment_settings(p, m, only=("renormalize",)) for m in seeded}
    first = p.seed()
    seeds = [first, *scaling.seeds]
    if not seeded:
        log.info("no seeded method in `methods` (%s): nothing to repeat", ", ".join(SEEDED))
    exp = Experiment.from_params(p, args.passages, args.generated_root, args.items_root)
    tuning = read_json(args.tuning)
    betas = {s: normalisation_strength(tuning, s) for s in reported}
    tune_settings_of = sorted({METHODS[m].setting for m in seeded} | set(reported))
    tune_sets = dict(exp.query_sets(args.data, args.tune_queries, tune_settings_of, split="tune"))
    plan = subset_plan(len(exp.languages), scaling.subsets, first)
    experiments, fusions, choices, quality = {}, {}, {}, {}
    for seed in seeds:
        generated, items, metrics = draw_folders(seed, first, args.generated_root, args.items_root,
                                                 args.models_metrics, args.seeds_root)
        quality[seed] = draw_quality(metrics)
        log.info("seed %d: %s from %s and %s; models %s", seed, ", ".join(seeded), generated, items, quality[seed])
        experiments[seed] = draw_experiment(exp, generated, items)
        fusions[seed], choices[seed] = draw_fusion(p, experiments[seed], tune_sets, tune_settings, augment, plan,
                                                   scaling.workers, log)
    del tune_sets
    release_memory()
    draws = {seed: {} for seed in seeds}
    for setting, queries in exp.query_sets(args.data, args.queries, reported):  # one setting's queries at a time
        release_memory()
        reference = references(exp.passages, queries, betas[setting])  # the same for every draw
        for seed in seeds:
            draws[seed].update(draw_rows(experiments[seed], setting, queries, fusions[seed], plan, reference))
        del queries, reference
        release_memory()
    table = pooled_table(draws, scaling.resamples, first, scaling.equivalence_margin)
    write_table(args.table, table)
    write_json(args.metrics, seeds_report(table, seeds, choices, scaling.equivalence_margin, quality))
    plot_seeds(table, seeds, args.figure)
    for _, row in table[(table["kind"] == "gain") & (table["group"] == "all") & (table["measure"] == "nDCG@10")
                        & (table["setting"] == reported[0])].iterrows():
        log.info("%s, k=%d: nDCG@10 gain %+.4f [%+.4f, %+.4f] over %d draws (sd between draws %.4f; by seed %s)",
                 row["a"], row["k"], row["delta"], row["ci_low"], row["ci_high"], row["draws"], row["sd_draws"],
                 " ".join(f"{row[f'delta_{s}']:+.4f}" for s in seeds))


if __name__ == "__main__":
    run(main, __doc__, arguments)
