#!/usr/bin/env python
"""encode: embed the corpus passages, the evaluation queries and the tuning queries with the trained xDR.

Writes passages.npy / queries.npy (evaluation split) / tune_queries.npy (tune split, for choosing
settings off the evaluation set; empty when data.tune_fraction is 0) (float32, one row per id) with
passages.ids.txt / queries.ids.txt / tune_queries.ids.txt, and stats.json (seconds, tokens, tokens/s).
Batches are sorted by length; encode.bf16 turns on bfloat16 autocast.
"""
from xaug.cli import run
from xaug.encoding import DenseEncoder, EncodeSettings, encode_prepared
from xaug.params import from_params


def arguments(ap):
    ap.add_argument("--model", default="models/xdr")
    ap.add_argument("--data", default="data/mlqa")
    ap.add_argument("--out", default="data/embeddings")


def main(args, p, log):
    settings = from_params(EncodeSettings, p.get_path("encode"))
    encoder = DenseEncoder.load(args.model).to(p.device())
    encode_prepared(encoder, args.data, args.out, settings)


if __name__ == "__main__":
    run(main, __doc__, arguments, threads="encode.threads")
