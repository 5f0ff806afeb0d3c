"""Building, training and loading query generators for the pipeline (`xqg.model`: warm | tiny | HF id/path)."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import torch

from .data import corpus_language_of
from .languages import check_languages
from .errors import ConfigError
from .generation import Seq2SeqGenerator
from .warm import WarmGenerator, WarmSettings, load_warm
from .warm_training import fit_warm

log = logging.getLogger(__name__)
KIND_FILE = "xqg.json"
# keys of the `xqg` params group besides SamplingSettings' fields: the generator (train_xqg), the
# resumable chunks and the backend (generate_queries); `threads` belongs to the stage harness
XQG_GROUP_KEYS = ("model", "context_languages", "max_source_length", "warm", "tiny", "train", "chunk_size",
                  "backend", "ray_address", "ray_workers")


def training_examples(contexts: list[dict], queries: list[dict], links: list[dict], context_languages) -> list[dict]:
    """Every (question in Y, its context in X) of the training split, X in ``context_languages``."""
    by_id = {c["id"]: c for c in contexts}
    link = {l["qid"]: l for l in links}
    examples = []
    for q in queries:
        if q["split"] != "train":
            continue
        for x, cid in sorted(link[q["qid"]]["contexts"].items()):
            if context_languages == "all" or x in context_languages:
                c = by_id[cid]
                examples.append({"passage_id": cid, "source": c["text"], "title": c["title"], "target": q["text"],
                                 "lang": q["lang"], "source_lang": x})
    return examples


def train_generator(cfg: dict, xdr: dict, contexts, queries, links, corpus, out: Path, seed: int,
                    device="cpu", corpus_language: str | None = None) -> dict:
    """Train the generator ``cfg['model']`` on ``device`` and save it to ``out``; returns the training log.
    ``xqg.context_languages`` defaults to ``[corpus_language]`` (when None: the language of the ``corpus`` rows)."""
    spec = cfg["model"]
    ctx_langs = cfg.get("context_languages", [corpus_language or corpus_language_of(corpus)])
    if ctx_langs != "all":
        check_languages(ctx_langs, param="xqg.context_languages")
    examples = training_examples(contexts, queries, links, ctx_langs)
    if not examples:
        raise ConfigError("xqg: no training examples (is the training split empty?)")
    langs = sorted({e["lang"] for e in examples})
    out.mkdir(parents=True, exist_ok=True)
    if spec == "warm":
        settings = WarmSettings.from_params(cfg.get("warm", {}), seed, "xqg.warm")
        history, meta = fit_warm(examples, xdr, settings, [c["text"] for c in corpus], out, device)
    else:
        from .seq2seq import load_seq2seq, train_seq2seq

        torch.manual_seed(seed)  # a `tiny` model's initial weights
        model, tokenizer = load_seq2seq(spec, cfg.get("tiny"), [e["source"] for e in examples] +
                                        [e["target"] for e in examples])
        gen = Seq2SeqGenerator(model, tokenizer, cfg.get("max_source_length", 256)).to(device)
        t = cfg.get("train", {})
        history = train_seq2seq(gen, examples, t.get("epochs", 1), t.get("batch_size", 16), t.get("lr", 1e-3),
                                seed=seed, max_steps=t.get("max_steps", 0))
        model.save_pretrained(out / "model")
        tokenizer.save_pretrained(out / "model")
        meta = {"kind": "seq2seq", "model": spec, "max_source_length": gen.max_source_length}
    meta.update(languages=langs, examples=len(examples), context_languages=ctx_langs)
    (out / KIND_FILE).write_text(json.dumps(meta, indent=2) + "\n")
    return {**history, "examples": len(examples)}


def load_generator(path) -> WarmGenerator | Seq2SeqGenerator:
    path = Path(path)
    if not (path / KIND_FILE).is_file():
        raise ConfigError(f"{path}: not a query generator folder written by train_xqg (no {KIND_FILE})")
    meta = json.loads((path / KIND_FILE).read_text())
    if meta["kind"] == "warm":
        return load_warm(path, meta)
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    return Seq2SeqGenerator(AutoModelForSeq2SeqLM.from_pretrained(path / "model"),
                            AutoTokenizer.from_pretrained(path / "model"), meta["max_source_length"])
