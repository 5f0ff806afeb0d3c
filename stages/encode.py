#!/usr/bin/env python
"""encode: embed the corpus passages, the evaluation queries and the tuning queries with the trained xDR.

Writes passages.npy / queries.npy (evaluation split) / tune_queries.npy (tune split, for choosing
settings off the evaluation set; empty when data.tune_fraction is 0) (float32, one row per id, written
memory-mapped as chunks finish) with passages.ids.txt / queries.ids.txt / tune_queries.ids.txt, and
stats.json (seconds, tokens, tokens/s, backend). Batches are sorted by length; encode.bf16 turns on
bfloat16 autocast; encode.backend: local (this process) or ray (chunks of encode.chunk_size texts on
encode.ray_workers Ray actors; see xaug/backend.py): the same vectors either way.
"""
from pathlib import Path

from xaug.cli import run
from xaug.encode_jobs import EncodeJob, backend_settings, encode_prepared
from xaug.encoding import EncodeSettings
from xaug.params import from_params


def arguments(ap):
    ap.add_argument("--model", default="models/xdr")
    ap.add_argument("--data", default="data/mlqa")
    ap.add_argument("--out", default="data/embeddings")


def main(args, p, log):
    cfg = p.get_path("encode")
    settings = from_params(EncodeSettings, cfg)
    backend_settings(settings)  # a bad encode.backend stops here, before any work
    if settings.backend == "local":
        p.device()  # a device that does not exist here fails now, with its one-line error
    job = EncodeJob(model=str(Path(args.model).resolve()), bf16=settings.bf16, device=str(p.get("device", "auto")),
                    threads=cfg.get("threads"), root=str(Path.cwd()))
    encode_prepared(job, args.data, args.out, settings)


if __name__ == "__main__":
    run(main, __doc__, arguments, threads="encode.threads")
