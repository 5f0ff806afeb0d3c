#!/usr/bin/env python
"""encode: embed the corpus passages, the evaluation queries and the tuning queries with the trained xDR.

Writes passages.npy / queries.npy (evaluation split) / tune_queries.npy (tune split, for choosing
settings off the evaluation set; empty when data.tune_fraction is 0) (float32, one row per id) with
passages.ids.txt / queries.ids.txt / tune_queries.ids.txt, and stats.json (seconds, tokens, tokens/s).
Batches are sorted by length; encode.bf16 turns on bfloat16 autocast.
"""
import time
from pathlib import Path

from xaug.cli import run
from xaug.device import use_bf16
from xaug.encoding import DenseEncoder, EncodeSettings
from xaug.formats import write_embeddings
from xaug.io import atomic_dir, read_jsonl, write_json
from xaug.params import from_params


def arguments(ap):
    ap.add_argument("--model", default="models/xdr")
    ap.add_argument("--data", default="data/mlqa")
    ap.add_argument("--out", default="data/embeddings")


def main(args, p, log):
    settings = from_params(EncodeSettings, p.get_path("encode"))
    encoder = DenseEncoder.load(args.model).to(p.device())
    corpus = read_jsonl(Path(args.data) / "corpus.jsonl")
    all_queries = read_jsonl(Path(args.data) / "queries.jsonl")
    queries = [q for q in all_queries if q["split"] == "eval"]
    tune_queries = [q for q in all_queries if q["split"] == "tune"]
    with atomic_dir(args.out) as out:  # the folder is replaced as a whole
        stats = {"bf16": use_bf16(settings.bf16, encoder.device, "encode.bf16")}  # the choice `auto` made here
        for kind, name, rows in (("passage", "passages", corpus), ("query", "queries", queries),
                                 ("query", "tune_queries", tune_queries)):
            started = time.perf_counter()
            vectors, tokens = encoder.encode([r["text"] for r in rows], kind, batch_size=settings.batch_size, bf16=stats["bf16"],
                                             max_tokens=settings.max_tokens, desc=f"encode {name}")
            seconds = time.perf_counter() - started
            write_embeddings(out / name, vectors, [r["id"] for r in rows])
            stats[name] = {"count": len(rows), "tokens": tokens, "seconds": round(seconds, 2),
                                 "tokens_per_s": round(tokens / max(seconds, 1e-9))}
            log.info("%d %s, %d tokens in %.1fs (%.0f tokens/s)", len(rows), name, tokens, seconds, tokens / max(seconds, 1e-9))
        write_json(out / "stats.json", stats)


if __name__ == "__main__":
    run(main, __doc__, arguments, threads="encode.threads")
