"""Training the query generator of ``xqg.model`` (``warm``, ``tiny`` or a HF id/path) on (question in Y,
its context in X) pairs of the training split, saved as a folder ``xaug.generators.load_generator`` reads."""
from __future__ import annotations

from pathlib import Path

import torch

from .data import corpus_language_of
from .errors import ConfigError
from .formats import GENERATOR_FILE, write_kind
from .languages import check_languages
from .seq2seq import Seq2SeqGenerator, load_seq2seq
from .seq2seq_training import train_seq2seq
from .training_states import read_training_states
from .warm import WarmSettings
from .warm_training import fit_warm


def training_examples(contexts: list[dict], queries: list[dict], links: list[dict], context_languages,
                      split: str = "train") -> list[dict]:
    """Every (question in Y, its context in X) of ``split`` (the training split; ``tune`` for the stopping
    rule), X in ``context_languages``."""
    by_id = {c["id"]: c for c in contexts}
    link = {l["qid"]: l for l in links}
    examples = []
    for q in queries:
        if q["split"] != split:
            continue
        for x, cid in sorted(link[q["qid"]]["contexts"].items()):
            if context_languages == "all" or x in context_languages:
                c = by_id[cid]
                examples.append({"passage_id": cid, "source": c["text"], "title": c["title"], "target": q["text"],
                                 "lang": q["lang"], "source_lang": x})
    return examples


def generator_settings(cfg: dict, seed: int) -> WarmSettings | None:
    """Check the ``xqg`` group's training settings before any data is read: ``context_languages`` (a list of
    codes, or ``all``) and, for ``xqg.model: warm``, the ``xqg.warm`` settings (returned; None otherwise)."""
    context_languages = cfg.get("context_languages")
    if context_languages is not None and context_languages != "all":
        check_languages(context_languages, param="xqg.context_languages")
    return WarmSettings.from_params(cfg.get("warm", {}), seed, "xqg.warm") if cfg["model"] == "warm" else None


def context_languages(cfg: dict, corpus, corpus_language: str | None = None):
    """``xqg.context_languages`` (a list of codes, or ``all``); unset, ``[corpus_language]`` (when None: the
    language of the ``corpus`` rows)."""
    return cfg.get("context_languages", [corpus_language or corpus_language_of(corpus)])


def generator_examples(cfg: dict, contexts, queries, links, corpus, corpus_language: str | None = None,
                       split: str = "train") -> list[dict]:
    """The generator's examples of ``split`` (``training_examples``) from the contexts in ``context_languages``."""
    examples = training_examples(contexts, queries, links, context_languages(cfg, corpus, corpus_language), split)
    if split == "train" and not examples:
        raise ConfigError("xqg: no training examples (is the training split empty?)")
    return examples


def train_generator(cfg: dict, xdr: dict, contexts, queries, links, corpus, out: Path, seed: int,
                    device="cpu", corpus_language: str | None = None, states=None) -> dict:
    """Train the generator ``cfg['model']`` on ``device`` and save it to ``out``; returns the training log.
    ``states``: the folder of the sources' encoder states (``xaug.training_states``) for a warm generator
    (None: encoded here)."""
    spec = cfg["model"]
    settings = generator_settings(cfg, seed)
    examples = generator_examples(cfg, contexts, queries, links, corpus, corpus_language)
    langs = sorted({e["lang"] for e in examples})
    out.mkdir(parents=True, exist_ok=True)
    if spec == "warm":
        tune = generator_examples(cfg, contexts, queries, links, corpus, corpus_language, "tune")
        encoded = None if states is None else read_training_states(states, xdr, settings, tune)
        history, meta = fit_warm(examples, xdr, settings, [c["text"] for c in corpus], out, device, tune, encoded)
    else:
        torch.manual_seed(seed)  # a `tiny` model's initial weights
        model, tokenizer = load_seq2seq(spec, cfg.get("tiny"), [e["source"] for e in examples] +
                                        [e["target"] for e in examples])
        gen = Seq2SeqGenerator(model, tokenizer, cfg.get("max_source_length", 512)).to(device)
        t = cfg.get("train", {})
        history = train_seq2seq(gen, examples, t.get("epochs", 1), t.get("batch_size", 16), t.get("lr", 1e-3),
                                seed=seed, max_steps=t.get("max_steps", 0))
        gen.save(out / "model")
        meta = {"kind": "seq2seq", "model": spec, "max_source_length": gen.max_source_length}
    meta.update(languages=langs, examples=len(examples), context_languages=context_languages(cfg, corpus, corpus_language))
    write_kind(out, GENERATOR_FILE, meta)
    return {**history, "examples": len(examples)}
