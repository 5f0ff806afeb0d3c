#!/usr/bin/env python
"""encode_generated: embed one method's texts in each target language, aligned to corpus order, float16 on disk.

--method xqg and real_questions are embedded with the query side of the xDR; translations and parallel
contexts (passage-side text) with the passage side. Reads <dir>/<lang>.jsonl of every language of
`languages` (or --lang) and writes the folder <out>/<lang> (default: beside the texts) of memory-mappable
arrays: items.npy (passages, items, dim; float16, written as chunks finish), counts.npy (valid items per
passage; 0 = nothing generated, passage left as is) and, for a leave-out method, sources.npy (the question
id of each item). The encoder is loaded once per worker for all languages; encode.backend: local or ray
(as the encode stage).
"""
from pathlib import Path

from xaug.backend import open_pool
from xaug.cli import run
from xaug.encode_jobs import EncodeJob, backend_settings
from xaug.encoding import EncodeSettings, encode_with, encoder_dim
from xaug.formats import items_path
from xaug.io import read_jsonl
from xaug.methods import METHODS, embed_generated
from xaug.params import from_params


def arguments(ap):
    ap.add_argument("--method", required=True, choices=sorted(METHODS))
    ap.add_argument("--lang", nargs="+", default=None, help="target language codes (default: `languages`)")
    ap.add_argument("--model", default="models/xdr")
    ap.add_argument("--data", default="data/mlqa")
    ap.add_argument("--dir", default=None, help="folder of <lang>.jsonl (default data/generated/<method>)")
    ap.add_argument("--out", default=None, help="folder of the <lang> items folders (default: --dir)")


def main(args, p, log):
    cfg = p.get_path("encode")
    settings = from_params(EncodeSettings, cfg)
    folder = Path(args.dir or f"data/generated/{args.method}")
    out = Path(args.out) if args.out else folder
    corpus_ids = [c["id"] for c in read_jsonl(Path(args.data) / "corpus.jsonl")]
    languages = args.lang or p.get_path("languages")
    backend = backend_settings(settings)  # a bad encode.backend stops here, before any work
    if backend.backend == "local":
        p.device()  # a device that does not exist here fails now, with its one-line error
    job = EncodeJob(model=str(Path(args.model).resolve()), bf16=settings.bf16, device=str(p.get("device", "auto")),
                    threads=cfg.get("threads"), root=str(Path.cwd()))
    dim = encoder_dim(job.model)
    with open_pool(job, backend) as runner:
        def encode(texts, kind, put, desc):
            return encode_with(runner, texts, kind, settings, put, desc)
        for lang in languages:
            done = embed_generated(encode, args.method, folder, lang, corpus_ids, items_path(out, lang), dim)
            log.info("%s %s: %d texts for %d passages, %d tokens", args.method, lang, done["texts"],
                     done["passages"], done["tokens"])


if __name__ == "__main__":
    run(main, __doc__, arguments, threads="encode.threads")
