#!/usr/bin/env python
"""generate_queries: for every corpus passage, xqg.n_queries sampled queries in one language (--lang).

Batched and length-sorted; resumable: finished chunks live in --work (a scratch folder keyed by a
fingerprint of model, corpus and settings) and are reused if the stage is killed and re-run.
Writes <out>/<lang>.jsonl (passage id -> queries) and <out>/<lang>.stats.json (wall seconds,
passages, generated tokens, queries/s).
"""
import argparse
from pathlib import Path

from xaug.cli import run_stage, setup
from xaug.generation import SamplingSettings, finish, generate_for_corpus, work_folder
from xaug.io import read_jsonl, write_json, write_jsonl
from xaug.params import load_params
from xaug.warm import load_states
from xaug.xqg import load_generator


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lang", required=True, help="target language code")
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--model", default="models/xqg")
    ap.add_argument("--data", default="data/mlqa")
    ap.add_argument("--out", default="data/generated/xqg")
    ap.add_argument("--work", default="data/work/xqg", help="scratch folder for resumable chunks")
    ap.add_argument("--states", default=None, help="encoder states of the passages (stages/encode_sources.py)")
    args = ap.parse_args()
    p = load_params(args.params)
    cfg = p.get_path("xqg")
    log = setup(cfg.get("threads"))
    settings = SamplingSettings(n_queries=cfg["n_queries"], top_k=cfg["top_k"], max_new_tokens=cfg["max_new_tokens"],
                                batch_size=cfg["batch_size"], do_sample=cfg.get("do_sample", True),
                                seed=p.seed(), copy_bias=cfg.get("copy_bias", 0.0),
                                copy_max_df=cfg.get("copy_max_df", 0.02))
    corpus = read_jsonl(Path(args.data) / "corpus.jsonl")
    generator = load_generator(args.model).to(p.device())
    work = work_folder(args.work, args.lang, args.model, args.data, settings.__dict__, cfg.get("chunk_size", 64))
    states = load_states(args.states) if args.states else {}
    if states:  # a warm generator reads the passages' shared encoder states instead of re-encoding them
        corpus = [{**c, "states": states[c["id"]]} if c["id"] in states else c for c in corpus]
    rows, stats = generate_for_corpus(generator, corpus, args.lang, settings, work, cfg.get("chunk_size", 64))
    out = Path(args.out)
    write_jsonl(out / f"{args.lang}.jsonl", rows)
    write_json(out / f"{args.lang}.stats.json", stats)
    finish(work)
    log.info("%s: %d queries for %d passages, %d generated tokens, %.1fs (%.1f queries/s)", args.lang,
             stats["queries"], stats["passages"], stats["generated_tokens"], stats["seconds"], stats["queries_per_s"])


if __name__ == "__main__":
    run_stage(main)
