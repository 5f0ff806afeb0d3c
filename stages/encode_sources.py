#!/usr/bin/env python
"""encode_sources: the frozen encoder's states of every source a warm generator reads, computed once.

A warm generator (xqg.model or translate.model = warm) keeps the xDR's starting encoder frozen, so
the states of a passage (or sentence) are the same for every target language: this stage computes
them once and the generation stage reads them for every language (float16, a folder of safetensors
shards written as the batches finish: memory holds one shard, not the corpus's states).
--kind passages: the corpus passages (query generation); --kind sentences: the first
translate.max_sentences sentences of each passage (translation). For other generators the file holds no states and the
generation stage encodes with the model itself.
"""
from pathlib import Path

from tqdm import tqdm

from xaug.cli import run
from xaug.decoding import TRANSLATE_GROUP_KEYS, TranslateSettings
from xaug.encoding import EncodeSettings
from xaug.formats import states_writer
from xaug.generators import load_generator
from xaug.io import read_jsonl
from xaug.params import from_params
from xaug.parallel_text import source_sentences
from xaug.translators import load_translator


def arguments(ap):
    ap.add_argument("--kind", required=True, choices=["passages", "sentences"])
    ap.add_argument("--model", required=True, help="models/xqg (passages) or models/translator (sentences)")
    ap.add_argument("--data", default="data/mlqa")
    ap.add_argument("--out", required=True, help="a folder of safetensors shards (xaug.formats.states_writer)")


def main(args, p, log):
    settings = from_params(EncodeSettings, p.get_path("encode"), only=("batch_size", "max_tokens"))
    if args.kind == "sentences":
        max_sentences = from_params(TranslateSettings, p.get_path("translate"), others=TRANSLATE_GROUP_KEYS,
                                    only=("max_sentences",)).max_sentences
    corpus = read_jsonl(Path(args.data) / "corpus.jsonl")
    if args.kind == "passages":
        encoder = load_generator(args.model).shared_encoder()
        keys, texts = [c["id"] for c in corpus if c["text"].strip()], [c["text"] for c in corpus if c["text"].strip()]
    else:
        encoder = load_translator(args.model).shared_encoder()
        items = source_sentences(corpus, max_sentences)
        keys, texts = [k for k, _ in items], [t for _, t in items]
    if encoder is None:
        with states_writer(args.out):
            pass
        log.info("not a warm generator: no shared states (the generation stage encodes itself)")
        return
    encoder.to(p.device())
    tokens = 0
    with states_writer(args.out) as writer:
        for i, states in tqdm(encoder.iter_states(texts, batch_size=settings.batch_size, max_tokens=settings.max_tokens),
                              total=len(texts), desc=f"encode {args.kind}", unit="text", mininterval=5):
            writer.put(keys[i], states)
            tokens += states.shape[0]
    log.info("%d %s encoded once: %d tokens, %d shards", len(keys), args.kind, tokens, len(writer.shards))


if __name__ == "__main__":
    run(main, __doc__, arguments, threads="encode.threads")
