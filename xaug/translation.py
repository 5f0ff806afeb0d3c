"""Passage generation by translation: sentence splitting, translators, translator training data.

A method's output, like query generation's, is one JSONL per target language mapping each corpus
passage to its generated texts (here at most one: the passage in that language). Two sources:
``warm`` (the BERT2BERT generator of ``xaug.warm``, trained on MLQA's parallel questions and answer
sentences) and a Hugging Face translation model (NLLB-200 or M2M100). MLQA's own parallel contexts
are a method of their own (``parallel_contexts``, ``xaug.data.parallel_contexts``).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch

from .data import corpus_language_of
from .languages import DEFAULT_CORPUS_LANGUAGE
from .device import bf16_autocast
from .encoding import length_batches
from .errors import ConfigError
from .generation import SamplingSettings, run_chunked
from .languages import LANGUAGES
from .parallel_text import first_sentences, join_sentences, parallel_pairs, training_examples
from .params import positive_int

log = logging.getLogger(__name__)

# Translator language codes come from the registry (xaug.languages): FLORES-200 codes for NLLB,
# M2M100's own (mostly ISO 639-1) codes, None where M2M100 lacks the language.
FAMILIES = {"nllb": "nllb", "m2m100": "m2m100"}  # model family -> Language field holding its code


def language_code(family: str, lang: str) -> str:
    """The code a translation model family (``nllb`` or ``m2m100``) uses for ``lang`` (``xaug.languages``)."""
    field = FAMILIES.get(family)
    if field is None:
        raise ConfigError(f"translate.model: unsupported model family {family!r} (expected NLLB or M2M100)")
    row = LANGUAGES.get(lang) if isinstance(lang, str) else None
    code = getattr(row, field) if row is not None else None
    if code is None:
        known = sorted(c for c, r in LANGUAGES.items() if getattr(r, field) is not None)
        raise ConfigError(f"languages: the {family} translator has no code for {lang!r} (known: {known})")
    return code


# keys of the `translate` params group read elsewhere than TranslateSettings (train_translator, the
# quality report, the warm translator's own settings)
TRANSLATE_GROUP_KEYS = ("model", "quality_pairs", "warm", "backend", "ray_address", "ray_workers")  # backend: xaug.backend


@dataclass
class TranslateSettings:
    max_sentences: int = 2         # translate the first sentences of each passage (0 = all)
    max_new_tokens: int = 48       # per sentence
    batch_size: int = 32
    chunk_size: int = 128          # passages per resumable chunk
    max_source_length: int = 128   # source tokens per sentence
    max_tokens: int = 0            # padded source tokens per batch at most (0 = batch_size sentences a batch)

    def __post_init__(self):
        for name in ("max_new_tokens", "batch_size", "chunk_size", "max_source_length"):
            positive_int(getattr(self, name), f"translate.{name}")
        if isinstance(self.max_tokens, bool) or not isinstance(self.max_tokens, int) or self.max_tokens < 0:
            raise ConfigError(f"translate.max_tokens: expected an integer >= 0 (0 = no cap), got {self.max_tokens!r}")
        if isinstance(self.max_sentences, bool) or not isinstance(self.max_sentences, int) or self.max_sentences < 0:
            raise ConfigError(f"translate.max_sentences: expected an integer >= 0 (0 = all), got {self.max_sentences!r}")

    def greedy(self) -> SamplingSettings:
        return SamplingSettings(n_queries=1, do_sample=False, max_new_tokens=self.max_new_tokens,
                                batch_size=self.batch_size, no_repeat_bigrams=True)


class HFTranslator:
    """NLLB-200 / M2M100 from a Hugging Face id or local path, corpus-language source (``source_lang``),
    forced target language."""

    def __init__(self, model, tokenizer, max_source_length: int = 128, source_lang: str = DEFAULT_CORPUS_LANGUAGE):
        self.model, self.tokenizer, self.max_source_length = model.eval(), tokenizer, max_source_length
        self.source_lang = source_lang
        model_type = model.config.model_type
        self.family = "nllb" if "nllb" in type(tokenizer).__name__.lower() else model_type
        if self.family not in ("nllb", "m2m_100", "m2m100"):
            raise ConfigError(f"translate.model: {model_type!r} is not an NLLB or M2M100 translation model")
        self.family = "m2m100" if self.family.startswith("m2m") else "nllb"
        self.tokenizer.src_lang = language_code(self.family, source_lang)

    def to(self, device) -> "HFTranslator":
        self.model.to(device)
        return self

    def target_id(self, lang: str) -> int:
        code = language_code(self.family, lang)
        tid = self.tokenizer.convert_tokens_to_ids(code if self.family == "nllb" else f"__{code}__")
        if tid is None or tid == self.tokenizer.unk_token_id:
            raise ConfigError(f"languages: the translator's vocabulary has no language token for {lang!r} ({code})")
        return tid

    @torch.inference_mode()
    def translate(self, sentences: Sequence[str], lang: str, settings: TranslateSettings) -> tuple[list[str], int]:
        target = self.target_id(lang)
        batch = self.tokenizer(list(sentences), truncation=True, max_length=self.max_source_length, padding=True,
                               return_tensors="pt")
        device = self.model.device
        with bf16_autocast(device, device.type == "cuda"):  # bf16 on the GPU
            out = self.model.generate(**batch.to(device), forced_bos_token_id=target,
                                      max_new_tokens=settings.max_new_tokens, do_sample=False, num_beams=1,
                                      no_repeat_ngram_size=2)
        special = set(self.tokenizer.all_special_ids)
        tokens = int(sum(1 for row in out.tolist() for t in row if t not in special))
        return [t.strip() for t in self.tokenizer.batch_decode(out, skip_special_tokens=True)], tokens

    def lengths(self, sentences: Sequence[str]) -> list[int]:
        return [len(x) for x in self.tokenizer(list(sentences), truncation=True,
                                                 max_length=self.max_source_length)["input_ids"]]


class WarmTranslator:
    """The warm BERT2BERT generator used as a sentence translator (greedy, one output per sentence)."""

    def __init__(self, generator):
        self.generator = generator

    def to(self, device) -> "WarmTranslator":
        self.generator.to(device)
        return self

    def translate(self, sentences: Sequence[str], lang: str, settings: TranslateSettings,
                  states: Sequence[torch.Tensor] | None = None) -> tuple[list[str], int]:
        items = [{"text": s} if states is None else {"text": s, "states": st} for s, st in
                 zip(sentences, states if states is not None else sentences)]
        out, tokens = self.generator.generate(items, lang, settings.greedy(), n=1)
        return [o[0] for o in out], tokens

    def lengths(self, sentences: Sequence[str]) -> list[int]:
        return self.generator.source_lengths([{"text": s} for s in sentences])


class CorpusTranslator:
    """The per-chunk function of one language's translation over a loaded translator: the chunk's kept
    sentences, translated together sorted by length, re-joined per passage. ``states``: precomputed
    encoder states by ``source_sentences`` key (warm translators)."""

    def __init__(self, translator, lang: str, settings: TranslateSettings, states: dict | None = None):
        self.translator, self.lang, self.settings, self.states = translator, lang, settings, states or None
        inner = getattr(translator, "generator", None) or getattr(translator, "model", None)
        self.device = getattr(inner, "device", None)

    def __call__(self, chunk: list[dict], index: int) -> list[dict]:
        translator, lang, settings, states = self.translator, self.lang, self.settings, self.states
        kept = first_sentences(chunk, settings.max_sentences)
        flat = [(p["id"], j, s) for p in chunk for j, s in enumerate(kept[p["id"]])]
        lengths = translator.lengths([s for _, _, s in flat]) if flat else []
        done: dict[int, str] = {}
        tokens = 0
        for idx in length_batches(lengths, settings.batch_size, settings.max_tokens):  # longest first
            idx = idx.tolist()
            extra = {"states": [states[f"{flat[i][0]}#{flat[i][1]}"] for i in idx]} if states else {}
            texts, n = translator.translate([flat[i][2] for i in idx], lang, settings, **extra)
            tokens += n
            done.update(zip(idx, texts))
        by_passage: dict[str, list[str]] = {p["id"]: [] for p in chunk}
        for i, (pid, _, _) in enumerate(flat):
            by_passage[pid].append(done[i])
        rows = [{"id": p["id"], "texts": [join_sentences(by_passage[p["id"]], lang)] if by_passage[p["id"]] else [],
                 "tokens": 0} for p in chunk]
        if rows:
            rows[0]["tokens"] = tokens
        return rows


@dataclass
class TranslationJob:
    """What a worker needs to translate into one language (picklable, like ``generation.GenerationJob``):
    ``load()`` loads the translator folder ``model`` on ``device`` and the encoder ``states`` file and
    returns the per-chunk ``CorpusTranslator``."""

    model: str
    lang: str
    settings: TranslateSettings
    device: str = "auto"
    states: str | None = None
    threads: int | None = None
    root: str | None = None

    def load(self) -> CorpusTranslator:
        from .device import resolve_device
        from .generation import in_folder
        from .formats import load_states

        if self.threads:
            torch.set_num_threads(int(self.threads))
        with in_folder(self.root):
            translator = load_translator(self.model)
            translator.to(resolve_device(self.device))
            states = load_states(self.states) if self.states else None
        return CorpusTranslator(translator, self.lang, self.settings, states)


def translate_corpus(translator, corpus: list[dict], lang: str, settings: TranslateSettings, work_dir: Path,
                     progress: bool = True, states: dict | None = None, backend=None) -> tuple[list[dict], dict]:
    """Each passage's first ``max_sentences`` sentences translated into ``lang`` and re-joined.

    Sentences of a chunk are translated together, sorted by length; finished chunks are kept in
    ``work_dir`` so a killed run resumes. Rows: ``{"id", "texts": [translation]}`` (empty for an
    empty passage); stats: seconds, sentences, source and generated tokens, tokens/s. ``states``:
    precomputed encoder states by ``source_sentences`` key (warm translators). ``translator``: a
    loaded translator (runs here) or a ``TranslationJob`` run on ``backend`` (``xaug.backend``).
    """
    from dataclasses import replace

    kept = first_sentences(corpus, settings.max_sentences)
    if isinstance(translator, TranslationJob):
        run = replace(translator, lang=lang, settings=settings)
    else:
        run = CorpusTranslator(translator, lang, settings, states)

    lengths = [sum(len(s) for s in kept[p["id"]]) for p in corpus]
    rows, stats = run_chunked(corpus, lengths, work_dir, settings.chunk_size, run, desc=f"translate {lang}",
                              progress=progress, backend=backend)
    total_sentences = sum(len(s) for s in first_sentences(corpus, 0).values())
    done_sentences = sum(len(s) for s in kept.values())
    generated = sum(r.pop("tokens") for r in rows)
    stats.update(lang=lang, passages=len(corpus), sentences=done_sentences, sentences_in_corpus=total_sentences,
                 # whitespace words of the translated sentences (xaug.cost: translated tokens per source word)
                 source_words=sum(len(x.split()) for sentences in kept.values() for x in sentences),
                 generated_tokens=generated, tokens_per_s=round(generated / max(stats["seconds"], 1e-9), 1),
                 # what translating every sentence would cost at the measured rate (sentence share as proxy)
                 estimated_full_seconds=round(stats["seconds"] * total_sentences / max(done_sentences, 1), 1),
                 max_sentences=settings.max_sentences)
    return rows, stats


KIND_FILE = "translator.json"


def train_translator(cfg: dict, xdr: dict, contexts, queries, links, corpus, out: Path, seed: int,
                     device="cpu") -> dict:
    """``translate.model``: ``warm`` is trained here (on ``device``); a Hugging Face id/path is only recorded
    (no fine-tuning). The source language is the corpus language (that of the ``corpus`` rows), recorded
    as ``source_lang``."""
    from .warm import WarmSettings
    from .warm_training import fit_warm
    import json

    spec = cfg["model"]
    pivot = corpus_language_of(corpus)
    out.mkdir(parents=True, exist_ok=True)
    if spec == "oracle":  # one route for MLQA's own parallel text: the parallel_contexts method
        raise ConfigError("translate.model: 'oracle' is gone; MLQA's parallel contexts are the parallel_contexts "
                          "method (add it to `methods`)")
    if spec == "warm":
        pairs = parallel_pairs(contexts, links, queries, "train", pivot=pivot)
        if not pairs:
            raise ConfigError("translate: no parallel training pairs (is the training split empty?)")
        settings = WarmSettings.from_params(cfg.get("warm", {}), seed, "translate.warm")
        history, meta = fit_warm(training_examples(pairs, pivot), xdr, settings, [c["text"] for c in corpus], out,
                                 device)
        history.update(pairs=len(pairs), questions=sum(p["kind"] == "question" for p in pairs))
    else:
        load_hf_translator(spec, cfg.get("max_source_length", 128), pivot)  # fail now, not in every language's stage
        meta, history = {"kind": "hf", "model": spec}, {}
    meta["max_source_length"] = cfg.get("max_source_length", 128)
    meta["source_lang"] = pivot
    (out / KIND_FILE).write_text(json.dumps(meta, indent=2) + "\n")
    return history


def load_hf_translator(spec: str, max_source_length: int = 128,
                       source_lang: str = DEFAULT_CORPUS_LANGUAGE) -> HFTranslator:
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    from .models import from_pretrained

    return HFTranslator(from_pretrained(AutoModelForSeq2SeqLM, spec, "translate.model"),
                        from_pretrained(AutoTokenizer, spec, "translate.model"), max_source_length, source_lang)


def load_translator(path):
    """The translator a train_translator stage recorded in ``path``."""
    import json

    from .warm import load_warm

    path = Path(path)
    if not (path / KIND_FILE).is_file():
        raise ConfigError(f"{path}: not a translator folder written by train_translator (no {KIND_FILE})")
    meta = json.loads((path / KIND_FILE).read_text())
    if meta["kind"] == "warm":
        return WarmTranslator(load_warm(path, meta))
    return load_hf_translator(meta["model"], meta["max_source_length"],
                              meta.get("source_lang", DEFAULT_CORPUS_LANGUAGE))


def translation_quality(translator, pairs: list[dict], settings: TranslateSettings, per_language: int) -> dict:
    """chrF (sacrebleu) of English -> L translations of held-out parallel questions and sentences."""
    from sacrebleu.metrics import CHRF

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
            report[lang].setdefault("examples", []).append({"en": sample[0]["en"], "reference": sample[0]["text"],
                                                            "translation": hyps[0]})
    return report
