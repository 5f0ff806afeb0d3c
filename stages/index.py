#!/usr/bin/env python
"""index: build a faiss index (inner product) from passage embeddings with an index-factory string.

index.factory: Flat (exact, default), HNSW32, IVF64,Flat, IVF64,PQ16, ... (anything faiss accepts).
"""
import argparse
from pathlib import Path

import numpy as np

from xaug.cli import run_stage, setup
from xaug.params import load_params
from xaug.search import FaissSearcher, read_ids


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--embeddings", default="data/embeddings/passages",
                    help="prefix of <prefix>.npy and <prefix>.ids.txt (default: %(default)s)")
    ap.add_argument("--out", default="data/index/baseline.faiss")
    args = ap.parse_args()
    log = setup()
    p = load_params(args.params)
    vectors = np.load(Path(args.embeddings + ".npy"))
    ids = read_ids(args.embeddings + ".ids.txt")
    searcher = FaissSearcher.build(vectors, ids, p.get_path("index.factory"), p.get_path("index.search_params", ""))
    searcher.save(args.out)
    log.info("indexed %d vectors of dimension %d with %r", len(ids), vectors.shape[1], p.get_path("index.factory"))


if __name__ == "__main__":
    run_stage(main)
