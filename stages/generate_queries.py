#!/usr/bin/env python
"""generate_queries: for every corpus passage, xqg.n_queries sampled queries in each target language
(`languages` of params.yaml, or --lang).

Batched and length-sorted; resumable: finished chunks live in --work (a scratch folder per language,
keyed by a fingerprint of model, corpus, code and settings) and are reused if the stage is killed and
re-run, or re-run for another language list (the last finished run of each language is kept there).
Writes <out>/<lang>.jsonl (passage id -> queries) and <out>/<lang>.stats.json (wall seconds,
passages, generated tokens, queries/s, device) for each language. xqg.backend: local (this process) or ray (chunks on
xqg.ray_workers Ray actors, at xqg.ray_address; see xaug/backend.py): the same output either way.
"""
from pathlib import Path

from xaug.backend import BackendSettings
from xaug.chunks import keep_only, work_folder
from xaug.cli import run
from xaug.decoding import XQG_GROUP_KEYS, SamplingSettings
from xaug.formats import write_texts
from xaug.io import read_jsonl
from xaug.params import check_int, from_params
from xaug.xqg import GenerationJob, generate_for_corpus


def arguments(ap):
    ap.add_argument("--lang", nargs="+", default=None, help="target language codes (default: `languages`)")
    ap.add_argument("--model", default="models/xqg")
    ap.add_argument("--data", default="data/mlqa")
    ap.add_argument("--out", default="data/generated/xqg")
    ap.add_argument("--work", default="data/work/xqg", help="scratch folder for resumable chunks")
    ap.add_argument("--seed", type=int, default=None,
                    help="the sampling seed (default: the `seed` parameter); the *_seed stages pass each of scaling.seeds")
    ap.add_argument("--states", default=None, help="encoder states of the passages (stages/encode_sources.py)")


def main(args, p, log):
    cfg = p.get_path("xqg")
    settings = from_params(SamplingSettings, cfg, others=XQG_GROUP_KEYS,
                           seed=p.seed() if args.seed is None else check_int(args.seed, "--seed", minimum=0))
    backend = BackendSettings.from_params(cfg, "xqg")
    chunk_size = cfg.get("chunk_size", 64)
    corpus_path = Path(args.data) / "corpus.jsonl"
    corpus = read_jsonl(corpus_path)
    if backend.backend == "local":
        p.device()  # a device that does not exist here fails now, with its one-line error
    for lang in args.lang or p.get_path("languages"):
        # what each worker loads (here, or on every Ray actor): the generator, and the passages' shared
        # encoder states, which a warm generator reads instead of re-encoding the passages
        job = GenerationJob(model=str(Path(args.model).resolve()), lang=lang, settings=settings,
                            device=str(p.get("device", "auto")), corpus=str(corpus_path.resolve()),
                            states=str(Path(args.states).resolve()) if args.states else None,
                            threads=cfg.get("threads"), root=str(Path.cwd()))
        work = work_folder(args.work, lang, args.model, args.data, settings.__dict__, chunk_size, states=args.states)
        rows, stats = generate_for_corpus(job, corpus, lang, settings, work, chunk_size, backend=backend)
        write_texts(args.out, lang, rows, stats)
        keep_only(work)
        log.info("%s: %d queries for %d passages, %d generated tokens, %.1fs (%.1f queries/s)", lang,
                 stats["queries"], stats["passages"], stats["generated_tokens"], stats["seconds"],
                 stats["queries_per_s"])


if __name__ == "__main__":
    run(main, __doc__, arguments, threads="xqg.threads")
