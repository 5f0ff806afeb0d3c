#!/usr/bin/env python
"""encode: embed the corpus passages, the evaluation queries and the tuning queries with the trained xDR.

Writes passages.npy / queries.npy (evaluation split) / tune_queries.npy (tune split, for choosing
settings off the evaluation set; empty when data.tune_fraction is 0) (float32, one row per id) with
passages.ids.txt / queries.ids.txt / tune_queries.ids.txt, and stats.json (seconds, tokens, tokens/s).
Batches are sorted by length; encode.bf16 turns on bfloat16 autocast.
"""
import argparse
import time
from pathlib import Path

from xaug.cli import run_stage, setup
from xaug.encoding import DenseEncoder
from xaug.io import read_jsonl, save_matrix, write_json
from xaug.params import load_params, positive_int
from xaug.search import write_ids


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--model", default="models/xdr")
    ap.add_argument("--data", default="data/mlqa")
    ap.add_argument("--out", default="data/embeddings")
    args = ap.parse_args()
    p = load_params(args.params)
    cfg = p.get_path("encode")
    log = setup(cfg.get("threads"))
    batch_size = positive_int(cfg["batch_size"], "encode.batch_size")
    encoder = DenseEncoder.load(args.model).to(p.device())
    out = Path(args.out)
    corpus = read_jsonl(Path(args.data) / "corpus.jsonl")
    all_queries = read_jsonl(Path(args.data) / "queries.jsonl")
    queries = [q for q in all_queries if q["split"] == "eval"]
    tune_queries = [q for q in all_queries if q["split"] == "tune"]
    stats = {"bf16": bool(cfg.get("bf16"))}
    for kind, name, rows in (("passage", "passages", corpus), ("query", "queries", queries),
                             ("query", "tune_queries", tune_queries)):
        started = time.perf_counter()
        vectors, tokens = encoder.encode([r["text"] for r in rows], kind, batch_size=batch_size, bf16=stats["bf16"],
                                         max_tokens=cfg.get("max_tokens", 0), desc=f"encode {name}")
        seconds = time.perf_counter() - started
        save_matrix(out / f"{name}.npy", vectors)
        write_ids(out / f"{name}.ids.txt", [r["id"] for r in rows])
        stats[name] = {"count": len(rows), "tokens": tokens, "seconds": round(seconds, 2),
                             "tokens_per_s": round(tokens / max(seconds, 1e-9))}
        log.info("%d %s, %d tokens in %.1fs (%.0f tokens/s)", len(rows), name, tokens, seconds, tokens / max(seconds, 1e-9))
    write_json(out / "stats.json", stats)


if __name__ == "__main__":
    run_stage(main)
