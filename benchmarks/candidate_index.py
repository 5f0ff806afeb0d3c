#!/usr/bin/env python
"""How far a faiss index of each candidate list moves the tune grid from the exact (Flat) candidates, on a
sample of a finished workspace's tune questions (e.g. the scale benchmark's P = 100k work folder, where the
dense path does not fit).

Per method of the workspace (its items count 1 for xqg), ``--queries`` tune questions of the setting the
method is tuned in are drawn (seeded), and one scorer per search finds their candidates (K =
``scaling.candidates``, or ``--candidates``) and scores a grid of fusions (three single languages and all of
them; alphas 0.01 to 0.9; both weight modes; renormalised or not): per search, the mean width of the
candidate sets, the seconds to find them (one process, one thread) and the largest and mean absolute
difference of the grid's mean nDCG@10 from the Flat search's. ``--passages-index`` adds, per index, the
variant whose every list is searched with an index trained on the passages (the engine's former choice).
``--controls`` adds the scaling stage's controls of each method's items (a shuffled permutation, the
centroids) with each list searched in an index trained on its own vectors and in the method's
(``xaug.candidates.list_templates``, what the scaling stage does).

    python benchmarks/candidate_index.py --workspace /work/scale100/P100000 \\
        --index 'IVF1024,Flat|nprobe=32' --passages-index --out benchmarks/results/candidate_index_p100k.json

``--index 'IVF1024,Flat|nprobe=16|40'`` trains each list's cells on at most 40 of its vectors each,
``'IVF1024,Flat|nprobe=16|40|5'`` in 5 k-means iterations.
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

from xaug import candidates  # noqa: E402
from xaug.candidates import CandidateSearch  # noqa: E402
from xaug.controls import centroid_items, shuffle  # noqa: E402
from xaug.experiment import Experiment  # noqa: E402
from xaug.fusion import FusionSettings  # noqa: E402
from xaug.methods import METHODS  # noqa: E402
from xaug.params import load_params  # noqa: E402
from xaug.sweep import SubsetScorer, found_tops, item_means  # noqa: E402

ALPHAS = (0.01, 0.1, 0.3, 0.5, 0.9)
MEASURE = "nDCG@10"


def search_of(spec: str) -> CandidateSearch:
    """The candidate search of a spec ``FACTORY|PARAMS[|TRAIN[|ITERATIONS]]`` (``scaling.candidate_index``,
    ``candidate_search``, ``candidate_train``, ``candidate_iterations``)."""
    factory, _, rest = spec.partition("|")
    params, _, rest = rest.partition("|")
    train, _, iterations = rest.partition("|")
    return CandidateSearch(factory, params, int(train or 0), int(iterations or 0))


def grid(scorer: SubsetScorer, n_languages: int) -> np.ndarray:
    """The grid's mean measures: single languages (up to three) and all of them x alphas x fusions."""
    subsets = [(i,) for i in range(min(3, n_languages))] + [tuple(range(n_languages))]
    return np.array([[scorer(s, FusionSettings(a, w, r, None, "augment"), [MEASURE])[0].mean()
                      for s in subsets for a in ALPHAS]
                     for w in ("fixed", "per_item") for r in (True, False)])


def passages_index(vectors, has, passages, search):
    """Every list in an index trained on the passages (the engine's former choice, for comparison)."""
    return candidates._trained(passages, search)


def largest_cells(vectors: np.ndarray, template, top: int = 10) -> float:
    """The share of ``vectors`` that a copy of the (IVF) ``template`` puts into its ``top`` largest cells."""
    index = faiss.clone_index(template)
    index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    ivf = faiss.extract_index_ivf(index)
    sizes = np.sort([ivf.invlists.list_size(c) for c in range(ivf.nlist)])
    return round(float(sizes[-top:].sum() / max(len(vectors), 1)), 3)


def cell_shares(exp, items, search: CandidateSearch) -> dict | None:
    """For the first language's mean items: the share in the 10 largest cells of the passages' index and of
    an index trained on the items themselves (None if the index has no cells)."""
    if "IVF" not in search.index:
        return None
    passages = np.asarray(exp.passages, dtype=np.float32)
    template = candidates._trained(passages, search)  # kept referenced: faiss frees an index with its owner
    has = items[0].counts > 0
    means = item_means(items[:1])[0][has]
    own = candidates._template(means, None, passages, search)
    return {"passages_index": largest_cells(means, template), "own_index": largest_cells(means, own)}


def control_rows(name, some, exp, items, own, k, searches) -> list[dict]:
    """The scaling stage's controls of the method's items (a shuffled permutation, the centroids), each list
    searched in an index trained on its own vectors and in the method's (``list_templates``, what the scaling
    stage does): the grid's largest and mean difference from the Flat candidates, the candidate sets' mean
    width and the share of the lists' vectors in their 10 largest cells (the larger, the more of a list a
    query scans)."""
    shuffled, moves = shuffle(items, np.random.default_rng([0, 0]))
    controls = {"shuffled": (shuffled, None if own is None else [o.moved(d) for o, d in zip(own, moves)]),
                "centroid": (centroid_items(items), None)}
    passages = np.asarray(exp.passages, dtype=np.float32)
    rows = []
    for control, (moved, held) in controls.items():
        flat = grid(SubsetScorer(dataclasses.replace(some, candidates=k, search=CandidateSearch("Flat")), passages,
                                 moved, held), len(items))
        matrices, covered = [passages, *item_means(moved)], [it.counts > 0 for it in moved]
        for label, search, former in searches:
            if former or search.exact:
                continue
            queries = dataclasses.replace(some, candidates=k, search=search)
            method_lists = candidates.list_templates([passages, *item_means(items)], [it.counts > 0 for it in items],
                                                     search)
            for trained, templates in (("its own", None), ("the method's", method_lists)):
                tops = found_tops(queries, passages, moved, templates)
                scorer = SubsetScorer(queries, passages, moved, held, tops)
                diff = np.abs(grid(scorer, len(items)) - flat)
                lists = templates or candidates.list_templates(matrices, covered, search)
                shares = [largest_cells(vectors if has is None else vectors[has], lists[at][1])
                          for at, (vectors, has) in enumerate(candidates.list_vectors(matrices, covered))
                          if at in lists and faiss.try_extract_index_ivf(lists[at][1]) is not None]
                rows.append({"method": name, "search": label, "control": control, "lists_trained_on": trained,
                             "width": round(float((scorer.projection.columns >= 0).sum(1).mean()), 1),
                             "largest_10_cells_max": max(shares, default=None),
                             "max_abs_diff": round(float(diff.max()), 5), "mean_abs_diff": round(float(diff.mean()), 5)})
                print(f"{name:18s} {label:30s} {control:9s} lists trained on {trained:13s} width "
                      f"{rows[-1]['width']:7.1f}  10 largest cells <= {rows[-1]['largest_10_cells_max']}  "
                      f"max |d {MEASURE}| {diff.max():.4f}  mean {diff.mean():.4f}", flush=True)
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workspace", type=Path, required=True, help="a run up to the tune stage (data/, params.yaml)")
    ap.add_argument("--index", nargs="+", required=True, metavar="FACTORY|PARAMS[|TRAIN[|ITERATIONS]]",
                    help="a faiss factory, its ParameterSpace string and, optionally, the vectors per cell that "
                         "train each list's index (scaling.candidate_train) and its k-means iterations "
                         "(scaling.candidate_iterations)")
    ap.add_argument("--passages-index", action="store_true", help="also every list in the passages' index")
    ap.add_argument("--queries", type=int, default=3000, help="tune questions drawn per method")
    ap.add_argument("--candidates", type=int, default=None, help="K (default: scaling.candidates, else 200)")
    ap.add_argument("--methods", nargs="*", default=None)
    ap.add_argument("--controls", action="store_true",
                    help="also the controls' lists in their own indexes and in the method's")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    root, out = args.workspace.resolve(), args.out.resolve()
    os.chdir(root)
    p = load_params("params.yaml")
    k = args.candidates or p.get_path("scaling.candidates", 0) or 200
    exp = Experiment.from_params(p, "data/embeddings/passages", "data/generated", "data/items")
    searches = [("Flat", CandidateSearch("Flat"), False)]
    for spec in args.index:
        search = search_of(spec)
        searches.append((spec, search, False))
        if args.passages_index:
            searches.append((spec + " (passages' index)", search, True))
    rows = []
    for name in args.methods or list(exp.methods):
        queries = exp.queries("data/mlqa", "data/embeddings/tune_queries", METHODS[name].setting, split="tune")
        picked = np.sort(np.random.default_rng(0).choice(len(queries.vectors), min(args.queries, len(queries.vectors)),
                                                         replace=False))
        some = queries.take(picked)
        method = exp.methods[name]
        items, own = method.reduced(1 if name == "xqg" else None), method.own(some.questions)
        values = {}
        for spec, search, former in searches:
            if not former and not search.exact:
                shares = cell_shares(exp, items, search)
                if shares:
                    rows.append({"method": name, "search": spec, "largest_10_cells": shares})
                    print(f"{name:18s} {spec:38s} share of the mean items in the 10 largest cells: {shares}", flush=True)
        for label, search, former in searches:
            saved = candidates._template
            if former:
                candidates._template = passages_index
            try:
                started = time.process_time()
                scorer = SubsetScorer(dataclasses.replace(some, candidates=k, search=search), exp.passages, items, own)
                seconds = time.process_time() - started
                values[label] = grid(scorer, len(items))
            finally:
                candidates._template = saved
            columns = scorer.projection.columns
            diff = np.abs(values[label] - values["Flat"])
            rows.append({"method": name, "search": label, "queries": len(picked), "K": k,
                         "width": round(float((columns >= 0).sum(1).mean()), 1), "cpu_seconds": round(seconds, 1),
                         "max_abs_diff": round(float(diff.max()), 5), "mean_abs_diff": round(float(diff.mean()), 5)})
            print(f"{name:18s} {label:38s} width {rows[-1]['width']:7.1f}  {seconds:6.1f} cpu-s  "
                  f"max |d {MEASURE}| {diff.max():.4f}  mean {diff.mean():.4f}", flush=True)
        if args.controls:
            rows += control_rows(name, some, exp, items, own, k, searches)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"workspace": str(root), "measure": MEASURE, "alphas": ALPHAS, "rows": rows},
                                   indent=1) + "\n")


if __name__ == "__main__":
    main()
