#!/usr/bin/env python
"""Where one set of items of the scaling stage spends its time: a method's own items, a shuffled permutation,
the centroids or equal items, swept in one process (one thread) under cProfile, on a finished workspace
(e.g. the scale benchmark's P = 100k work folder, up to its tune stage).

The set runs as in the stage (``xaug.scaling._run_items``): the method's candidate-list indexes trained first
(``list_templates_of``, timed apart), then every run of that set (weight modes x renormalize states and one
alpha for the method's own items; both renormalize states for a control). Writes the wall seconds of the
load, the indexes and the set, and the cumulative seconds of the engine's parts (finding each list's top K:
faiss's IVF search and training; the candidates' exact scores; the restricted judgements; the ranking and
measures), with the 30 functions of the largest cumulative time.

    python benchmarks/scaling_set.py --workspace /work/scale100/P100000 --method xqg --kind shuffled \\
        --out benchmarks/results/scaling_set_p100k.json
"""
from __future__ import annotations

import os
import sys

from xaug.cli import one_blas_thread, reexec_with_malloc_settings

if __name__ == "__main__":
    reexec_with_malloc_settings()  # as the stage runs
one_blas_thread()

import argparse  # noqa: E402
import cProfile  # noqa: E402
import json  # noqa: E402
import pstats  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from xaug import scaling  # noqa: E402
from xaug.experiment import Experiment  # noqa: E402
from xaug.io import read_json  # noqa: E402
from xaug.methods import augment_settings, fusion_settings  # noqa: E402
from xaug.params import from_params, load_params  # noqa: E402
from xaug.sweep import ScalingSettings, subset_plan  # noqa: E402

def parts() -> dict:
    """The engine's parts, each by the function whose cumulative time counts it: a Python function by its code
    (file, first line, name, as cProfile keys it), faiss's kernels by their built-in names."""
    from xaug import candidates, queryset, ranking, sweep

    def key(function):
        code = function.__code__
        return (code.co_filename, code.co_firstlineno, code.co_name)

    return {"list_tops (each list's top K)": key(candidates.list_tops),
            "faiss IVF search": ("~", 0, "<built-in method faiss._swigfaiss.IndexIVF_search>"),
            "faiss IVF train": ("~", 0, "<built-in method faiss._swigfaiss.IndexIVF_train>"),
            "Projection (per query block)": key(sweep.Projection.__init__),
            "candidate_scores (union and exact scores)": key(candidates.candidate_scores),
            "values_at (exact scores)": key(candidates.values_at),
            "union": key(candidates.union),
            "restricted judgements": key(ranking.Judgements.restricted),
            "measures": key(queryset.QuerySet.measures),
            "RankScorer.score": key(ranking.RankScorer.score)}


def cumulative(stats: pstats.Stats, key: tuple) -> float:
    return round(stats.stats[key][3], 1) if key in stats.stats else 0.0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workspace", type=Path, required=True, help="a run up to the tune stage")
    ap.add_argument("--setting", default="global", choices=["global", "parallel"])
    ap.add_argument("--method", default="xqg")
    ap.add_argument("--kind", default="shuffled", choices=["method", "shuffled", "centroid", "equal_items"])
    ap.add_argument("--perm", type=int, default=0, help="the shuffled permutation")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    out = args.out.resolve()
    os.chdir(args.workspace)
    started = time.perf_counter()
    p = load_params("params.yaml")
    settings = from_params(ScalingSettings, p.get_path("scaling"))
    exp = Experiment.from_params(p, "data/embeddings/passages", "data/generated", "data/items")
    tuning = read_json("metrics/tuning.json")
    configured = augment_settings(p, args.method, only=("renormalize",)).renormalize
    ks = range(1, len(exp.languages) + 1)
    fusion = {args.method: {(w, r): {k: fusion_settings(p, args.method, tuning, w, k, r) for k in ks}
                            for w in exp.weights for r in (configured, not configured)}}
    queries = exp.queries("data/mlqa", "data/embeddings/queries", args.setting)
    load = time.perf_counter() - started
    started = time.perf_counter()
    one = Experiment(**{**vars(exp), "methods": {args.method: exp.methods[args.method]}})
    plan = subset_plan(len(exp.languages), settings.subsets, p.seed())
    templates = scaling.list_templates_of(one, fusion, 1, plan, args.perm + 1, {args.method: configured})
    indexes = time.perf_counter() - started
    scaling._TASK_CONTEXT.update(queries=queries, passages=np.asarray(exp.passages, dtype=np.float32),
                                 methods=exp.methods, settings=fusion, seed=p.seed(), templates=templates, plan=plan)
    profile = cProfile.Profile()
    started = time.perf_counter()
    profile.enable()
    _, tasks = scaling.item_tasks([args.method], exp.weights, {args.method: configured}, args.perm + 1)
    task = next(t for t in tasks if t[1] == args.kind and t[2] == (args.perm if args.kind == "shuffled" else 0))
    scaling._run_items(task)
    profile.disable()
    seconds = time.perf_counter() - started
    stats = pstats.Stats(profile)
    top = sorted(stats.stats.items(), key=lambda item: -item[1][3])[:30]
    report = {"workspace": str(args.workspace), "setting": args.setting, "method": args.method, "kind": args.kind,
              "queries": int(len(queries.vectors)), "passages": int(len(exp.passages)),
              "query_blocks": len(queries.blocks()), "candidates": exp.candidates,
              "search": [exp.search.index, exp.search.params], "load_seconds": round(load, 1),
              "list_indexes_seconds": round(indexes, 1), "set_seconds": round(seconds, 1),
              "parts_cumulative_seconds": {label: cumulative(stats, key) for label, key in parts().items()},
              "top_cumulative": [{"function": f"{Path(path).name}:{line}({function})", "calls": row[1],
                                  "cumulative_s": round(row[3], 1), "own_s": round(row[2], 1)}
                                 for (path, line, function), row in top]}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k != "top_cumulative"}, indent=1))


if __name__ == "__main__":
    sys.exit(main())
