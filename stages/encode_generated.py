#!/usr/bin/env python
"""encode_generated: embed one language's generated texts, aligned to corpus order, float16 on disk.

--method xqg embeds generated queries with the query side of the xDR; translations (passage
generation) are embedded with the passage side. Writes <dir>/<lang>.npz: `items` (passages, items,
dim) float16 and `counts` (valid items per passage; 0 = nothing generated, passage left as is).
"""
import argparse
from pathlib import Path

import numpy as np

from xaug.cli import run_stage, setup
from xaug.encoding import DenseEncoder
from xaug.errors import ConfigError
from xaug.io import atomic_path, read_jsonl
from xaug.methods import METHODS
from xaug.params import load_params, positive_int



def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--method", required=True, choices=sorted(METHODS))
    ap.add_argument("--lang", required=True)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--model", default="models/xdr")
    ap.add_argument("--data", default="data/mlqa")
    ap.add_argument("--dir", default=None, help="folder of <lang>.jsonl (default data/generated/<method>)")
    args = ap.parse_args()
    p = load_params(args.params)
    cfg = p.get_path("encode")
    log = setup(cfg.get("threads"))
    folder = Path(args.dir or f"data/generated/{args.method}")
    rows = {r["id"]: r["queries"] if "queries" in r else r["texts"] for r in read_jsonl(folder / f"{args.lang}.jsonl")}
    corpus = [c["id"] for c in read_jsonl(Path(args.data) / "corpus.jsonl")]
    missing = [pid for pid in corpus if pid not in rows]
    if missing:
        raise ConfigError(f"{folder / (args.lang + '.jsonl')}: no entry for {len(missing)} corpus passages "
                         f"(first {missing[0]}); re-run generation")
    width = max((len(rows[pid]) for pid in corpus), default=0)
    texts = [t for pid in corpus for t in rows[pid]]
    encoder = DenseEncoder.load(args.model).to(p.device())
    vectors, tokens = encoder.encode(texts, METHODS[args.method].embed_as, batch_size=positive_int(cfg["batch_size"], "encode.batch_size"),
                                     max_tokens=cfg.get("max_tokens", 0), bf16=bool(cfg.get("bf16")),
                                     desc=f"encode {args.method} {args.lang}")
    items = np.zeros((len(corpus), width, encoder.dim), dtype=np.float16)
    counts = np.array([len(rows[pid]) for pid in corpus])
    offsets = np.concatenate([[0], np.cumsum(counts)])
    for i in range(len(corpus)):
        items[i, : counts[i]] = vectors[offsets[i] : offsets[i + 1]]
    with atomic_path(folder / f"{args.lang}.npz") as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, items=items, counts=counts)
    log.info("%s %s: %d texts for %d passages, %d tokens", args.method, args.lang, len(texts), len(corpus), tokens)


if __name__ == "__main__":
    run_stage(main)
