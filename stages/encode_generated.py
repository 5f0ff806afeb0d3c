#!/usr/bin/env python
"""encode_generated: embed one language's generated texts, aligned to corpus order, float16 on disk.

--method xqg embeds generated queries with the query side of the xDR; translations (passage
generation) are embedded with the passage side. Writes <dir>/<lang>.npz: `items` (passages, items,
dim) float16 and `counts` (valid items per passage; 0 = nothing generated, passage left as is).
"""
from pathlib import Path

from xaug.cli import run
from xaug.encoding import DenseEncoder, EncodeSettings
from xaug.io import read_jsonl
from xaug.methods import METHODS, embed_generated
from xaug.params import from_params


def arguments(ap):
    ap.add_argument("--method", required=True, choices=sorted(METHODS))
    ap.add_argument("--lang", required=True)
    ap.add_argument("--model", default="models/xdr")
    ap.add_argument("--data", default="data/mlqa")
    ap.add_argument("--dir", default=None, help="folder of <lang>.jsonl (default data/generated/<method>)")


def main(args, p, log):
    settings = from_params(EncodeSettings, p.get_path("encode"))
    folder = Path(args.dir or f"data/generated/{args.method}")
    corpus_ids = [c["id"] for c in read_jsonl(Path(args.data) / "corpus.jsonl")]
    encoder = DenseEncoder.load(args.model).to(p.device())
    done = embed_generated(encoder, args.method, folder, args.lang, corpus_ids, settings, folder / f"{args.lang}.npz")
    log.info("%s %s: %d texts for %d passages, %d tokens", args.method, args.lang, done["texts"], done["passages"],
             done["tokens"])


if __name__ == "__main__":
    run(main, __doc__, arguments, threads="encode.threads")
