#!/usr/bin/env python
"""Tokens/s of the bi-encoder under batching policies: a fixed number of texts per batch against a
padded-token budget (encode.max_tokens), on the corpus passages and the evaluation queries.

Both policies sort by length; the script prints the rate of each, the speed-up and the largest
difference between the two sets of embeddings (bf16 rounding depends on the batch shapes).

    python benchmarks/encoding.py --model models/xdr --passages 256 --queries 1024
"""
import argparse
import time
from pathlib import Path

import numpy as np

from xaug.cli import run_stage, setup
from xaug.device import resolve_device
from xaug.encoding import DenseEncoder
from xaug.errors import ConfigError
from xaug.io import read_jsonl


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="models/xdr", help="an encoder folder written by stages/train_xdr.py")
    ap.add_argument("--data", default="data/mlqa")
    ap.add_argument("--passages", type=int, default=256)
    ap.add_argument("--queries", type=int, default=1024)
    ap.add_argument("--batch-size", type=int, default=32, help="the fixed policy's texts per batch")
    ap.add_argument("--max-tokens", type=int, default=2048, help="the budget policy's padded tokens per batch")
    ap.add_argument("--budget-batch-size", type=int, default=128, help="the budget policy's texts per batch at most")
    ap.add_argument("--fp32", action="store_true", help="no bf16 autocast")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()
    setup(args.threads)
    if not Path(args.model).is_dir():
        raise ConfigError(f"--model: {args.model} not found; run the pipeline first (dvc repro)")
    encoder = DenseEncoder.load(args.model).to(resolve_device(args.device))
    passages = [c["text"] for c in read_jsonl(Path(args.data) / "corpus.jsonl")][: args.passages]
    queries = [q["text"] for q in read_jsonl(Path(args.data) / "queries.jsonl") if q["split"] == "eval"][: args.queries]
    print(f"{encoder.device}, {args.threads} threads, {'fp32' if args.fp32 else 'bf16 autocast'}")
    for kind, texts in (("passage", passages), ("query", queries)):
        encoder.encode(texts[:8], kind, progress=False)  # warm-up
        results = {}
        for name, kwargs in ((f"{args.batch_size} texts/batch", {"batch_size": args.batch_size}),
                             (f"<= {args.max_tokens} tokens/batch", {"batch_size": args.budget_batch_size,
                                                                     "max_tokens": args.max_tokens})):
            started = time.perf_counter()
            vectors, tokens = encoder.encode(texts, kind, bf16=not args.fp32, progress=False, **kwargs)
            seconds = time.perf_counter() - started
            results[name] = (vectors, seconds)
            print(f"{kind}s ({len(texts)}, {tokens} tokens), {name:>22}: {tokens / seconds:7.0f} tokens/s "
                  f"({seconds:.1f} s)")
        (a, sa), (b, sb) = results.values()
        print(f"{kind}s: speed-up {sa / sb:.2f}x, largest embedding difference {np.abs(a - b).max():.4f}")


if __name__ == "__main__":
    run_stage(main)
