#!/usr/bin/env python
"""translate_passages: every English corpus passage translated into one language (--lang).

Each passage is split into sentences; the first translate.max_sentences (0 = all) are translated,
batched and length-sorted, at most translate.max_new_tokens per sentence, then re-joined. Resumable:
finished chunks live in --work (keyed by a fingerprint of model, corpus and settings). Writes
<out>/<lang>.jsonl (passage id -> [translation]) and <out>/<lang>.stats.json (wall seconds, passages,
sentences, generated tokens, tokens/s, and the estimated seconds of a full translation).
With translate.model = oracle, the passages are MLQA's parallel contexts instead (no generation).
"""
import argparse
from pathlib import Path

from xaug.cli import run_stage, setup
from xaug.generation import finish, work_folder
from xaug.io import read_jsonl, write_json, write_jsonl
from xaug.params import load_params
from xaug.warm import load_states
from xaug.data import parallel_contexts
from xaug.translation import TranslateSettings, load_translator, translate_corpus


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lang", required=True, help="target language code")
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--model", default="models/translator", help="a folder written by train_translator")
    ap.add_argument("--data", default="data/mlqa")
    ap.add_argument("--out", default="data/generated/translate")
    ap.add_argument("--work", default="data/work/translate", help="scratch folder for resumable chunks")
    ap.add_argument("--states", default=None, help="encoder states of the sentences (stages/encode_sources.py)")
    args = ap.parse_args()
    p = load_params(args.params)
    cfg = p.get_path("translate")
    log = setup(cfg.get("threads"))
    data = Path(args.data)
    corpus = read_jsonl(data / "corpus.jsonl")
    translator = load_translator(args.model)
    if translator is None:
        rows, stats = parallel_contexts(corpus, read_jsonl(data / "contexts.jsonl"), read_jsonl(data / "links.jsonl"),
                                          args.lang)
        work = None
    else:
        translator.to(p.device())
        settings = TranslateSettings(**{k: cfg[k] for k in ("max_sentences", "max_new_tokens", "batch_size",
                                                            "chunk_size", "max_source_length") if k in cfg})
        work = work_folder(args.work, args.lang, args.model, data, settings.__dict__)
        states = load_states(args.states) if args.states else None
        rows, stats = translate_corpus(translator, corpus, args.lang, settings, work, states=states or None)
    out = Path(args.out)
    write_jsonl(out / f"{args.lang}.jsonl", rows)
    write_json(out / f"{args.lang}.stats.json", stats)
    if work is not None:
        finish(work)
    log.info("%s: %d passages, %d generated tokens, %.1fs", args.lang, stats["passages"], stats["generated_tokens"],
             stats["seconds"])


if __name__ == "__main__":
    run_stage(main)
