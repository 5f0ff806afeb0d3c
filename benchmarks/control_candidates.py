#!/usr/bin/env python
"""How far the scaling stage's controls (and methods) move from their exact measures when their candidates are
searched in an index, on a sample of a finished workspace's evaluation questions (e.g. the scale benchmark's
P = 100k work folder, where the dense path does not fit).

A control (a shuffled permutation, the centroids) is scored under few fusions: the method's alpha at each k with
both renormalize states. Its candidates are the top of each of its fused corpora (``xaug.sweep.fused_tops``).
Per corpus setting, method and control, the control's runs (``xaug.variants.items_sweeps``, as the scaling stage
runs them, on ``--queries`` questions drawn with a fixed seed) are scored with those candidates found:

- ``Flat``: every passage scored for each list, which takes the candidates from the per-language lists
  (``found_tops``: fused corpora are searched with an index only), so the reference is those lists' exact top K,
  which approximate each run's own top (docs/design.md); an exhaustive index of the fused corpora
  (``'IVF1,Flat|nprobe=1'``: one cell, every passage scanned) gives each run's exact top instead;
- each ``--index`` spec: the fused corpora in an index of that faiss factory, trained as the scaling stage trains
  them (``xaug.sweep.trained_fused``) and searched to K;
- each ``--depth-index`` spec: the same, searched only to each run's own depth (``QuerySet.own_search_depth``:
  ``evaluate.depth``, the passages a leave-out correction may lower and a margin, for an inverted file of whole
  vectors), what the scaling stage does; the specs of ``--index`` are searched to K.

``--kinds method`` adds each method's own items, which the scaling stage scores from their fused corpora where
those cost less to search than their per-language lists (``xaug.variants.uses_fused``). Here they are scored
from their lists (``xaug.sweep.found_tops``, the lists' indexes trained as ``xaug.sweep.trained_lists`` trains
them) for every search but an exhaustive reference, from their fused corpora for that reference (every run's
exact top), and with ``--method-fused`` from their fused corpora searched with each ``--depth-index`` spec too.

For each, the largest and mean absolute difference of every measure's mean (each run, k and group ``all``) from
the reference's (``--reference``, ``Flat`` unless named; ``--also-flat`` scores ``Flat`` beside another
reference), each measure's mean signed difference (its bias), and the CPU seconds of the set's sweeps (one
process, one thread, the index training included).

    python benchmarks/control_candidates.py --workspace /work/scale/P100000 --queries 5000 \\
        --index 'IVF1024,Flat|nprobe=16' 'IVF1024,Flat|nprobe=16|40|5' \\
        --depth-index 'IVF1024,Flat|nprobe=16|40|5' \\
        --out benchmarks/results/control_candidates_p100k.json
    python benchmarks/control_candidates.py --workspace /work/scale/P100000 --queries 2000 \\
        --reference 'IVF1,Flat|nprobe=1' --also-flat --depth-index 'IVF1024,Flat|nprobe=16|40|5' \\
        --out benchmarks/results/control_candidates_exact_p100k.json

A spec is ``FACTORY|PARAMS[|TRAIN[|ITERATIONS]]`` (``scaling.candidate_index``, ``candidate_search``,
``candidate_train``, ``candidate_iterations``).
"""
from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import faiss  # noqa: E402
import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from xaug import variants  # noqa: E402
from xaug.candidates import CandidateSearch, unpack_templates  # noqa: E402
from xaug.controls import centroid_items  # noqa: E402
from xaug.evaluation import EvaluateSettings  # noqa: E402
from xaug.experiment import Experiment  # noqa: E402
from xaug.io import read_json  # noqa: E402
from xaug.methods import augment_settings, fusion_settings  # noqa: E402
from xaug.metrics import ALL_MEASURES  # noqa: E402
from xaug.params import from_params, load_params  # noqa: E402
from xaug.scaling import _fusions_of, item_tasks  # noqa: E402
from xaug.sweep import ScalingSettings, fused_tops, subset_plan, trained_fused, trained_lists  # noqa: E402
from xaug.variants import corpus_keys, uses_fused  # noqa: E402

from benchmarks.candidate_index import search_of  # noqa: E402  (the specs are those of candidate_index.py)


def to_k(queries, passages, items, keys, templates=None, corrected=None):
    """``fused_tops`` with every fused corpus searched to K."""
    return fused_tops(queries, passages, items, keys, templates)


def every_corpus(*_):
    """``uses_fused`` for a method's own items scored from their fused corpora."""
    return True


def no_corpus(*_):
    """``uses_fused`` for a method's own items scored from their per-language lists."""
    return False


def means(results: dict) -> dict:
    """(run, k) -> the mean of every measure over the queries (group ``all``)."""
    return {(run, k): np.nanmean(r.all, axis=1) for run, (by_k, _) in results.items() for k, r in by_k.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workspace", type=Path, required=True, help="a run up to the tune stage (data/, params.yaml)")
    ap.add_argument("--index", nargs="*", default=[], metavar="FACTORY|PARAMS[|TRAIN[|ITERATIONS]]",
                    help="specs searched to K")
    ap.add_argument("--depth-index", nargs="*", default=[], metavar="FACTORY|PARAMS[|TRAIN[|ITERATIONS]]",
                    help="specs searched to the runs' own depth")
    ap.add_argument("--reference", default="Flat", metavar="FACTORY|PARAMS[|TRAIN[|ITERATIONS]]",
                    help="the search every other is compared with (Flat: the per-language lists' exact top K; "
                         "'IVF1,Flat|nprobe=1': each run's exact top)")
    ap.add_argument("--also-flat", action="store_true", help="with another --reference, score Flat as well")
    ap.add_argument("--queries", type=int, default=5000, help="evaluation questions drawn per corpus setting")
    ap.add_argument("--methods", nargs="*", default=None)
    ap.add_argument("--kinds", nargs="+", default=["shuffled", "centroid"],
                    choices=["method", "shuffled", "centroid"],
                    help="sets of items compared; a method's own items are scored from their per-language lists, "
                         "and from their fused corpora for a reference other than Flat (and with --method-fused)")
    ap.add_argument("--method-fused", action="store_true",
                    help="score a method's own items from their fused corpora too, with each --depth-index spec")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    root, out = args.workspace.resolve(), args.out.resolve()
    os.chdir(root)
    faiss.omp_set_num_threads(1)
    p = load_params("params.yaml")
    scaling = from_params(ScalingSettings, p.get_path("scaling"))
    exp = Experiment.from_params(p, "data/embeddings/passages", "data/generated", "data/items")
    seed = p.seed()
    tuning = read_json("metrics/tuning.json")
    renormalize = {m: augment_settings(p, m, only=("renormalize",)).renormalize for m in exp.methods}
    ks = range(1, len(exp.languages) + 1)
    fusion = {m: {(w, r): {k: fusion_settings(p, m, tuning, w, k, r) for k in ks}
                  for w in exp.weights for r in (renormalize[m], not renormalize[m])} for m in exp.methods}
    plan = subset_plan(len(exp.languages), scaling.subsets, seed)
    names = args.methods or list(exp.methods)
    tasks = [t for t in item_tasks(names, exp.weights, renormalize, scaling.permutations)[1]
             if t[1] in args.kinds and t[2] == 0]  # the first permutation of each method, its centroids, its own
    passages = np.asarray(exp.passages, dtype=np.float32)
    settings = from_params(EvaluateSettings, p.get_path("evaluate"), only=("settings",)).settings
    rows = []
    for setting, queries in exp.query_sets("data/mlqa", "data/embeddings/queries", settings):
        rng = np.random.default_rng(0)
        picked = np.sort(rng.choice(len(queries.vectors), min(args.queries, len(queries.vectors)), replace=False))
        some = dataclasses.replace(queries.take(picked), block=0)
        for name, kind, perm, runs in tasks:
            method = exp.methods[name]
            fusions = _fusions_of(name, runs, fusion)
            n_used = next(iter(dict.fromkeys(f.n_items_used for fu in fusions.values() for f in fu.values())))
            items = method.reduced(n_used)
            own = kind == "method"
            keys = corpus_keys(kind, plan, fusions, n_used, perm)
            fused = centroid_items(items) if kind == "centroid" else items
            if not own and not uses_fused(kind, keys, fused, some.candidates, some.judgements.depth,
                                          some.search.prefixes(some.vectors.shape[1])):
                print(f"{setting} {name} {kind}: scored from the per-language lists, skipped", flush=True)
                continue
            reference = None
            # (label, search, to its runs' depth, a method's own items from their lists)
            variants_run = [(f"{args.reference} (reference)", search_of(args.reference), False,
                             own and search_of(args.reference).exact)]
            if args.also_flat and args.reference != "Flat":
                variants_run.append(("Flat", CandidateSearch("Flat"), False, own))
            variants_run += [(spec, search_of(spec), False, own) for spec in args.index]
            variants_run += [(spec + " (own depth)", search_of(spec), True, own) for spec in args.depth_index]
            if own and args.method_fused:  # the method's own items from their fused corpora too
                variants_run += [(spec + " (fused corpora, own depth)", search_of(spec), True, False)
                                 for spec in args.depth_index]
            for label, search, to_depth, from_lists in variants_run:
                q = dataclasses.replace(some, search=search)
                started = time.process_time()
                templates = None if search.exact else {n_used: unpack_templates(
                    trained_lists(passages, items, search) if from_lists else
                    trained_fused(passages, fused, keys, search, kind))}
                saved = variants.fused_tops, variants.uses_fused
                if not to_depth:
                    variants.fused_tops = to_k
                if own:  # lists or fused corpora as the variant says, whatever the stage's cost rule chooses
                    variants.uses_fused = no_corpus if from_lists else every_corpus
                try:
                    results = variants.items_sweeps(q, passages, method, fusions, plan, kind, perm, seed, templates)
                finally:
                    variants.fused_tops, variants.uses_fused = saved
                seconds = time.process_time() - started
                got = means(results)
                if reference is None:
                    reference = got
                signed = np.array([got[key] - reference[key] for key in reference])  # (runs x ks, M)
                diff = np.abs(signed)
                worst = {m: round(float(diff[:, i].max()), 5) for i, m in enumerate(ALL_MEASURES)}
                rows.append({"setting": setting, "method": name, "kind": kind, "search": label, "queries": len(picked),
                             "fused_corpora": len(keys), "from": "lists" if from_lists else "fused corpora",
                             "cpu_seconds": round(seconds, 1),
                             "max_abs_diff": round(float(diff.max()), 5), "mean_abs_diff": round(float(diff.mean()), 5),
                             "max_abs_diff_by_measure": worst,
                             # the sign is the bias: a missed passage lifts the relevant one in the ranking,
                             # and a missed near-copy that holds the answer lowers the token-budget recalls
                             "mean_diff_by_measure": {m: round(float(signed[:, i].mean()), 5)
                                                      for i, m in enumerate(ALL_MEASURES)}})
                print(f"{setting:8s} {name:18s} {kind:9s} {label:44s} {seconds:7.1f} cpu-s  max |d| "
                      f"{diff.max():.5f} ({max(worst, key=worst.get)})  mean {diff.mean():.5f}", flush=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"workspace": str(root), "queries": args.queries, "reference": args.reference,
                               "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
