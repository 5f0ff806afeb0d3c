#!/usr/bin/env python
"""encode_generated: embed one method's texts in each target language, aligned to corpus order, float16 on disk.

--method xqg and real_questions are embedded with the query side of the xDR; translations and parallel
contexts (passage-side text) with the passage side. Reads <dir>/<lang>.jsonl of every language of
`languages` (or --lang) and writes <out>/<lang>.npz (default: beside the texts): `items` (passages,
items, dim) float16 and `counts` (valid items per passage; 0 = nothing generated, passage left as is),
and for a leave-out method the question id of each item. The encoder is loaded once for all languages.
"""
from pathlib import Path

from xaug.cli import run
from xaug.encoding import DenseEncoder, EncodeSettings
from xaug.io import read_jsonl
from xaug.methods import METHODS, embed_generated
from xaug.params import from_params


def arguments(ap):
    ap.add_argument("--method", required=True, choices=sorted(METHODS))
    ap.add_argument("--lang", nargs="+", default=None, help="target language codes (default: `languages`)")
    ap.add_argument("--model", default="models/xdr")
    ap.add_argument("--data", default="data/mlqa")
    ap.add_argument("--dir", default=None, help="folder of <lang>.jsonl (default data/generated/<method>)")
    ap.add_argument("--out", default=None, help="folder of the <lang>.npz items (default: --dir)")


def main(args, p, log):
    settings = from_params(EncodeSettings, p.get_path("encode"))
    folder = Path(args.dir or f"data/generated/{args.method}")
    out = Path(args.out) if args.out else folder
    corpus_ids = [c["id"] for c in read_jsonl(Path(args.data) / "corpus.jsonl")]
    encoder = DenseEncoder.load(args.model).to(p.device())
    for lang in args.lang or p.get_path("languages"):
        done = embed_generated(encoder, args.method, folder, lang, corpus_ids, settings, out / f"{lang}.npz")
        log.info("%s %s: %d texts for %d passages, %d tokens", args.method, lang, done["texts"], done["passages"],
                 done["tokens"])


if __name__ == "__main__":
    run(main, __doc__, arguments, threads="encode.threads")
