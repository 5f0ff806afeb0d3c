#!/usr/bin/env python
"""index: build a faiss index (inner product) from passage embeddings with an index-factory string.

index.factory: Flat (exact, default), HNSW32, IVF64,Flat, IVF64,PQ16, ... (anything faiss accepts).
"""
from xaug.cli import run
from xaug.formats import read_embeddings
from xaug.search import FaissSearcher


def arguments(ap):
    ap.add_argument("--embeddings", default="data/embeddings/passages",
                    help="prefix of <prefix>.npy and <prefix>.ids.txt (default: %(default)s)")
    ap.add_argument("--out", default="data/index/baseline.faiss")


def main(args, p, log):
    vectors, ids = read_embeddings(args.embeddings)
    searcher = FaissSearcher.build(vectors, ids, p.get_path("index.factory"), p.get_path("index.search_params", ""))
    searcher.save(args.out)
    log.info("indexed %d vectors of dimension %d with %r", len(ids), vectors.shape[1], p.get_path("index.factory"))


if __name__ == "__main__":
    run(main, __doc__, arguments)
