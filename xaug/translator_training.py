"""Training the translator of ``translate.model`` (``warm``: trained on MLQA's parallel text of the
training split; a Hugging Face id/path: checked and recorded) and its held-out quality report (chrF of
pivot -> L translations of evaluation-split parallel questions and answer sentences)."""
from __future__ import annotations

import logging
from pathlib import Path

from sacrebleu.metrics import CHRF

from .data import corpus_language_of
from .decoding import TRANSLATE_GROUP_KEYS, TranslateSettings
from .errors import ConfigError
from .formats import TRANSLATOR_FILE, write_kind
from .params import check_int, from_params
from .parallel_text import non_pivot_pairs, parallel_pairs, training_examples
from .training_states import read_training_states
from .translators import load_hf_translator, load_translator
from .warm import WarmSettings
from .warm_training import fit_warm

log = logging.getLogger(__name__)

HELDOUT_NOTE = ("evaluation-split questions and answer sentences, for this report only; "
                "nothing is trained or chosen on them")


PAIRS = ("all", "pivot")  # translate.pairs: every language pair of a question's versions | pivot <-> L only


def check_pairs(cfg: dict) -> str:
    """``translate.pairs``, checked before any data is read."""
    pairs = cfg.get("pairs", "pivot")
    if pairs not in PAIRS:
        raise ConfigError(f"translate.pairs: expected one of {list(PAIRS)}, got {pairs!r}")
    return pairs


def training_pairs(cfg: dict, contexts, queries, links, pivot: str) -> tuple[list[dict], list[dict]]:
    """The warm translator's training pairs: pivot <-> L pairs of the training split, and with
    ``translate.pairs: all`` the pairs of two other languages of one training question (in this order)."""
    pairs = parallel_pairs(contexts, links, queries, "train", pivot=pivot)
    if not pairs:
        raise ConfigError("translate: no parallel training pairs (is the training split empty?)")
    others = non_pivot_pairs(contexts, links, queries, "train", pivot) if check_pairs(cfg) == "all" else []
    return pairs, others


def warm_examples(cfg: dict, contexts, queries, links, pivot: str) -> tuple[list[dict], list[dict], dict]:
    """The warm translator's training examples (both directions of ``training_pairs``), the tune examples of
    its stopping rule (the tune split's pivot <-> L pairs: what translate_passages asks of the translator)
    and the pairs' counts."""
    pairs, others = training_pairs(cfg, contexts, queries, links, pivot)
    tune = training_examples(parallel_pairs(contexts, links, queries, "tune", pivot=pivot), pivot)
    counts = {"pairs": len(pairs), "questions": sum(p["kind"] == "question" for p in pairs),
              "non_pivot_pairs": len(others)}
    return training_examples(pairs + others, pivot), tune, counts


def train_translator(cfg: dict, xdr: dict, contexts, queries, links, corpus, out: Path, seed: int,
                     device="cpu", states=None) -> dict:
    """``translate.model``: ``warm`` is trained here (on ``device``); a Hugging Face id/path is only recorded
    (no fine-tuning). The source language is the corpus language (that of the ``corpus`` rows), recorded
    as ``source_lang``. ``states``: the folder of the sources' encoder states (``xaug.training_states``) for
    a warm translator (None: encoded here)."""
    spec = cfg["model"]
    pivot = corpus_language_of(corpus)
    out.mkdir(parents=True, exist_ok=True)
    if spec == "oracle":  # one route for MLQA's own parallel text: the parallel_contexts method
        raise ConfigError("translate.model: 'oracle' is gone; MLQA's parallel contexts are the parallel_contexts "
                          "method (add it to `methods`)")
    if spec == "warm":
        examples, tune, counts = warm_examples(cfg, contexts, queries, links, pivot)
        settings = WarmSettings.from_params(cfg.get("warm", {}), seed, "translate.warm")
        encoded = None if states is None else read_training_states(states, xdr, settings, tune)
        history, meta = fit_warm(examples, xdr, settings, [c["text"] for c in corpus], out, device, tune, encoded)
        history.update(counts)
    else:
        load_hf_translator(spec, cfg.get("max_source_length", 128), pivot)  # fail now, not in every language's stage
        meta, history = {"kind": "hf", "model": spec}, {}
    meta["max_source_length"] = cfg.get("max_source_length", 128)
    meta["source_lang"] = pivot
    write_kind(out, TRANSLATOR_FILE, meta)
    return history


def translation_quality(translator, pairs: list[dict], settings: TranslateSettings, per_language: int) -> dict:
    """chrF (sacrebleu) of English -> L translations of held-out parallel questions and sentences. One
    example of each language and kind: its question id and the translation (MLQA's own text, the source
    and the reference, stays out of the report, which is committed; the log prints all three)."""
    report = {}
    for lang in sorted({p["lang"] for p in pairs}):
        for kind in ("question", "sentence"):
            sample = [p for p in pairs if p["lang"] == lang and p["kind"] == kind][:per_language]
            if not sample:
                continue
            hyps, _ = translator.translate([p["en"] for p in sample], lang, settings)
            score = CHRF().corpus_score(hyps, [[p["text"] for p in sample]]).score
            report.setdefault(lang, {})[f"chrF_{kind}"] = round(score, 2)
            report[lang][f"n_{kind}"] = len(sample)
            report[lang].setdefault("examples", []).append({"qid": sample[0]["qid"], "kind": kind,
                                                            "translation": hyps[0]})
            log.info("%s %s %s: %r -> %r (reference %r)", lang, kind, sample[0]["qid"], sample[0]["en"], hyps[0],
                     sample[0]["text"])
    return report


def heldout_report(cfg: dict, folder, contexts, queries, links, pivot: str, device) -> dict:
    """The held-out part of train_translator's report: the translator in ``folder``, on ``device``, over
    the first ``translate.quality_pairs`` evaluation-split pairs of every language it learnt (not just
    ``languages``; ``pivot``: the corpus language). ``reads_heldout`` says what was read, and why."""
    translator = load_translator(folder)
    translator.to(device)
    settings = from_params(TranslateSettings, cfg, others=TRANSLATE_GROUP_KEYS,
                           only=("max_new_tokens", "batch_size", "length_ratio"))
    held_out = parallel_pairs(contexts, links, queries, "eval", pivot=pivot)
    return {"reads_heldout": HELDOUT_NOTE,
            "heldout": translation_quality(translator, held_out, settings,
                                           check_int(cfg.get("quality_pairs", 50), "translate.quality_pairs"))}
