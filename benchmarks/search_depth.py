#!/usr/bin/env python
"""What a candidate list's search costs against its depth: one list's faiss index (the passages', as the scaling
stage builds it: ``scaling.candidate_index`` trained on ``scaling.candidate_train`` vectors per cell (in
``scaling.candidate_iterations`` k-means iterations), probed by
``scaling.candidate_search``) searched by a workspace's evaluation queries to each depth, on one thread.

The stage searches its candidate lists to K (``scaling.candidates``), and equal items' pooled corpora only as
deep as their measures read (``QuerySet.own_depth``: ``evaluate.depth`` and a few passages), where that search
finds the start of the search to K (an inverted file of whole vectors). Writes each depth's CPU seconds (the
best of ``--repeat`` rounds, each searching every depth in turn, after one untimed search) and their ratio to
the largest depth's.

    python benchmarks/search_depth.py --workspace /work/scale/P100000 --depths 100 110 116 150 200 \\
        --queries 32768 --repeat 7 --out benchmarks/results/search_depth_p100k.json
"""
from __future__ import annotations

from xaug.cli import one_blas_thread

one_blas_thread()

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import faiss  # noqa: E402
import numpy as np  # noqa: E402

from xaug.candidates import CandidateSearch  # noqa: E402
from xaug.formats import read_embeddings  # noqa: E402
from xaug.params import load_params  # noqa: E402
from xaug.search import build_index, set_search  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workspace", type=Path, required=True, help="a finished workspace (up to its encode stage)")
    ap.add_argument("--depths", type=int, nargs="+", default=[100, 110, 120, 150, 200])
    ap.add_argument("--queries", type=int, default=16384, help="the first this many evaluation queries")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    scaling = load_params(args.workspace / "params.yaml").get_path("scaling")
    search = CandidateSearch(scaling["candidate_index"], scaling["candidate_search"], scaling["candidate_train"],
                             scaling.get("candidate_iterations", 0))
    passages, _ = read_embeddings(args.workspace / "data/embeddings/passages")
    queries, _ = read_embeddings(args.workspace / "data/embeddings/queries")
    passages = np.ascontiguousarray(passages, dtype=np.float32)
    queries = np.ascontiguousarray(queries[:args.queries], dtype=np.float32)
    index = build_index(passages, search.index, "scaling.candidate_index", search.train, search.iterations)
    set_search(index, search.params, "scaling.candidate_search")
    index.add(passages)
    depths = sorted(args.depths)
    index.search(queries, max(depths))  # untimed: the first search pages the index in
    runs: dict[int, list[float]] = {depth: [] for depth in depths}
    for _ in range(args.repeat):  # the depths in turn, so that the machine's drift reaches each alike
        for depth in depths:
            start = time.process_time()
            index.search(queries, depth)
            runs[depth].append(time.process_time() - start)
    seconds = {depth: round(min(times), 3) for depth, times in runs.items()}
    for depth in depths:
        print(f"depth {depth:4d}: {seconds[depth]:.3f} CPU s for {len(queries)} queries (best of {args.repeat})")
    largest = max(seconds)
    out = {"workspace_passages": len(passages), "queries": len(queries), "index": search.index,
           "search": search.params, "train_per_cell": search.train, "faiss": faiss.__version__,
           "cpu_seconds": seconds, "ratio_to_largest": {d: round(s / seconds[largest], 3) for d, s in seconds.items()}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
