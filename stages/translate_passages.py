#!/usr/bin/env python
"""translate_passages: every English corpus passage translated into each target language (`languages`
of params.yaml, or --lang).

Each passage is split into sentences; the first translate.max_sentences (0 = all) are translated,
batched and length-sorted, at most translate.max_new_tokens per sentence, then re-joined. Resumable:
finished chunks live in --work (per language, keyed by a fingerprint of model, corpus, code and
settings; the last finished run of each language is kept, as for generate_queries). Writes
<out>/<lang>.jsonl (passage id -> [translation]) and <out>/<lang>.stats.json (wall seconds, passages,
sentences, generated tokens, tokens/s, and the estimated seconds of a full translation).
translate.backend: local or ray, as xqg.backend (stages/generate_queries.py, xaug/backend.py).
"""
from pathlib import Path

from xaug.backend import BackendSettings
from xaug.chunks import keep_only, work_folder
from xaug.cli import run
from xaug.decoding import TRANSLATE_GROUP_KEYS, TranslateSettings
from xaug.formats import write_texts
from xaug.io import read_jsonl
from xaug.params import from_params
from xaug.translation import TranslationJob, translate_corpus
from xaug.translators import load_translator


def arguments(ap):
    ap.add_argument("--lang", nargs="+", default=None, help="target language codes (default: `languages`)")
    ap.add_argument("--model", default="models/translator", help="a folder written by train_translator")
    ap.add_argument("--data", default="data/mlqa")
    ap.add_argument("--out", default="data/generated/translate")
    ap.add_argument("--work", default="data/work/translate", help="scratch folder for resumable chunks")
    ap.add_argument("--states", default=None, help="encoder states of the sentences (stages/encode_sources.py)")


def main(args, p, log):
    cfg = p.get_path("translate")
    data = Path(args.data)
    corpus = read_jsonl(data / "corpus.jsonl")
    load_translator(args.model)  # not a translator folder: its one-line error, now
    backend = BackendSettings.from_params(cfg, "translate")
    if backend.backend == "local":
        p.device()  # a device that does not exist here fails now, with its one-line error
    settings = from_params(TranslateSettings, cfg, others=TRANSLATE_GROUP_KEYS)
    for lang in args.lang or p.get_path("languages"):
        work = work_folder(args.work, lang, args.model, data, settings.__dict__, states=args.states)
        # what each worker loads (here, or on every Ray actor): the translator and the sentences' states
        job = TranslationJob(model=str(Path(args.model).resolve()), lang=lang, settings=settings,
                             device=str(p.get("device", "auto")), threads=cfg.get("threads"), root=str(Path.cwd()),
                             states=str(Path(args.states).resolve()) if args.states else None)
        rows, stats = translate_corpus(job, corpus, lang, settings, work, backend=backend)
        write_texts(args.out, lang, rows, stats)
        keep_only(work)
        log.info("%s: %d passages, %d generated tokens, %.1fs", lang, stats["passages"], stats["generated_tokens"],
                 stats["seconds"])


if __name__ == "__main__":
    run(main, __doc__, arguments, threads="translate.threads")
