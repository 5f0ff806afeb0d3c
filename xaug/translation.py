"""Passage generation by translation: sentence splitting, translators, the oracle, translator training data.

A method's output, like query generation's, is one JSONL per target language mapping each English
corpus passage to its generated texts (here at most one: the passage in that language). Three
sources: ``warm`` (the BERT2BERT generator of ``xaug.warm``, trained on MLQA's parallel questions
and answer sentences), a Hugging Face translation model (NLLB-200 or M2M100) and ``oracle``
(MLQA's own human-translated parallel context, the ceiling of the method).
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch

from .data import PIVOT
from .errors import ConfigError
from .generation import SamplingSettings, run_chunked
from .params import positive_int

log = logging.getLogger(__name__)

# FLORES-200 codes used by NLLB; M2M100 uses the ISO 639-1 codes themselves.
NLLB_CODES = {"ar": "arb_Arab", "de": "deu_Latn", "en": "eng_Latn", "es": "spa_Latn", "hi": "hin_Deva",
              "vi": "vie_Latn", "zh": "zho_Hans"}
M2M100_CODES = {lang: lang for lang in ("ar", "de", "en", "es", "hi", "vi", "zh")}
UNSPACED = {"zh", "ja"}
_SENTENCE_END = re.compile(r"(?<=[.!?؟।])\s+|(?<=[。！？])")


def split_sentences(text: str) -> list[str]:
    """Sentences of ``text``: split after . ! ? ؟ । followed by white space, and after 。！？."""
    return [s for s in (part.strip() for part in _SENTENCE_END.split(text)) if s]


def join_sentences(sentences: Sequence[str], lang: str) -> str:
    return ("" if lang in UNSPACED else " ").join(s.strip() for s in sentences if s.strip())


def language_code(family: str, lang: str) -> str:
    """The code a translation model family (``nllb`` or ``m2m100``) uses for ``lang``."""
    table = {"nllb": NLLB_CODES, "m2m100": M2M100_CODES}.get(family)
    if table is None:
        raise ConfigError(f"translate.model: unsupported model family {family!r} (expected NLLB or M2M100)")
    if lang not in table:
        raise ConfigError(f"languages: the {family} translator has no code for {lang!r} (known: {sorted(table)})")
    return table[lang]


@dataclass
class TranslateSettings:
    max_sentences: int = 2         # translate the first sentences of each passage (0 = all)
    max_new_tokens: int = 48       # per sentence
    batch_size: int = 32
    chunk_size: int = 128          # passages per resumable chunk
    max_source_length: int = 128   # source tokens per sentence

    def __post_init__(self):
        for name in ("max_new_tokens", "batch_size", "chunk_size", "max_source_length"):
            positive_int(getattr(self, name), f"translate.{name}")
        if isinstance(self.max_sentences, bool) or not isinstance(self.max_sentences, int) or self.max_sentences < 0:
            raise ConfigError(f"translate.max_sentences: expected an integer >= 0 (0 = all), got {self.max_sentences!r}")

    def greedy(self) -> SamplingSettings:
        return SamplingSettings(n_queries=1, do_sample=False, max_new_tokens=self.max_new_tokens,
                                batch_size=self.batch_size, no_repeat_bigrams=True)


class HFTranslator:
    """NLLB-200 / M2M100 from a Hugging Face id or local path, English source, forced target language."""

    def __init__(self, model, tokenizer, max_source_length: int = 128):
        self.model, self.tokenizer, self.max_source_length = model.eval(), tokenizer, max_source_length
        model_type = model.config.model_type
        self.family = "nllb" if "nllb" in type(tokenizer).__name__.lower() else model_type
        if self.family not in ("nllb", "m2m_100", "m2m100"):
            raise ConfigError(f"translate.model: {model_type!r} is not an NLLB or M2M100 translation model")
        self.family = "m2m100" if self.family.startswith("m2m") else "nllb"
        self.tokenizer.src_lang = language_code(self.family, PIVOT)

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
        out = self.model.generate(**batch.to(self.model.device), forced_bos_token_id=target, max_new_tokens=settings.max_new_tokens,
                                  do_sample=False, num_beams=1, no_repeat_ngram_size=2)
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


def first_sentences(corpus: list[dict], max_sentences: int) -> dict[str, list[str]]:
    """Passage id -> its first ``max_sentences`` (0 = all) sentences: what the translator reads."""
    return {p["id"]: split_sentences(p["text"])[: max_sentences or None] for p in corpus}


def source_sentences(corpus: list[dict], max_sentences: int) -> list[tuple[str, str]]:
    """(``<passage id>#<j>``, sentence) for the first ``max_sentences`` (0 = all) sentences of each passage."""
    return [(f"{pid}#{j}", s) for pid, sentences in first_sentences(corpus, max_sentences).items()
            for j, s in enumerate(sentences)]


def translate_corpus(translator, corpus: list[dict], lang: str, settings: TranslateSettings, work_dir: Path,
                     progress: bool = True, states: dict | None = None) -> tuple[list[dict], dict]:
    """Each passage's first ``max_sentences`` sentences translated into ``lang`` and re-joined.

    Sentences of a chunk are translated together, sorted by length; finished chunks are kept in
    ``work_dir`` so a killed run resumes. Rows: ``{"id", "texts": [translation]}`` (empty for an
    empty passage); stats: seconds, sentences, source and generated tokens, tokens/s. ``states``:
    precomputed encoder states by ``source_sentences`` key (warm translators).
    """
    kept = first_sentences(corpus, settings.max_sentences)

    def run(chunk: list[dict], index: int) -> list[dict]:
        flat = [(p["id"], j, s) for p in chunk for j, s in enumerate(kept[p["id"]])]
        lengths = translator.lengths([s for _, _, s in flat]) if flat else []
        order = sorted(range(len(flat)), key=lambda i: (-lengths[i], i))
        done: dict[int, str] = {}
        tokens = 0
        for start in range(0, len(order), settings.batch_size):
            idx = order[start : start + settings.batch_size]
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

    lengths = [sum(len(s) for s in kept[p["id"]]) for p in corpus]
    rows, stats = run_chunked(corpus, lengths, work_dir, settings.chunk_size, run, desc=f"translate {lang}",
                              progress=progress)
    total_sentences = sum(len(s) for s in first_sentences(corpus, 0).values())
    done_sentences = sum(len(s) for s in kept.values())
    generated = sum(r.pop("tokens") for r in rows)
    stats.update(lang=lang, passages=len(corpus), sentences=done_sentences, sentences_in_corpus=total_sentences,
                 generated_tokens=generated, tokens_per_s=round(generated / max(stats["seconds"], 1e-9), 1),
                 # what translating every sentence would cost at the measured rate (sentence share as proxy)
                 estimated_full_seconds=round(stats["seconds"] * total_sentences / max(done_sentences, 1), 1),
                 max_sentences=settings.max_sentences)
    return rows, stats


def answer_sentence(context: str, answers: Sequence[str]) -> str | None:
    """The sentence of ``context`` holding the first answer found in it (MLQA aligns these across languages)."""
    for answer in answers:
        pos = context.find(answer) if answer else -1
        if pos < 0:
            continue
        offset = 0
        for sentence in split_sentences(context):
            start = context.find(sentence, offset)
            if start <= pos < start + len(sentence):
                return sentence
            offset = max(offset, start)
    return None


def parallel_pairs(contexts: list[dict], links: list[dict], queries: list[dict], split: str,
                   languages: Sequence[str] | None = None) -> list[dict]:
    """(English, L) text pairs of ``split``: each question in its languages and the answer sentences of
    parallel contexts. Each pair: ``{"kind", "qid", "lang", "en", "text"}`` (``text`` in ``lang``)."""
    text_of = {c["id"]: c["text"] for c in contexts}
    question = {(q["qid"], q["lang"]): q["text"] for q in queries}
    pairs = []
    for link in sorted(links, key=lambda l: l["qid"]):
        if link.get("split") != split or PIVOT not in link["contexts"]:
            continue
        qid = link["qid"]
        en_sentence = answer_sentence(text_of[link["contexts"][PIVOT]], link["answers"].get(PIVOT, []))
        for lang in sorted(link["contexts"]):
            if lang == PIVOT or (languages is not None and lang not in languages):
                continue
            if (qid, PIVOT) in question and (qid, lang) in question:
                pairs.append({"kind": "question", "qid": qid, "lang": lang, "en": question[(qid, PIVOT)],
                              "text": question[(qid, lang)]})
            sentence = answer_sentence(text_of[link["contexts"][lang]], link["answers"].get(lang, []))
            if en_sentence and sentence:
                pairs.append({"kind": "sentence", "qid": qid, "lang": lang, "en": en_sentence, "text": sentence})
    return pairs


KIND_FILE = "translator.json"


def training_examples(pairs: list[dict]) -> list[dict]:
    """Both directions of each (English, L) pair as generator examples (source keyed by its text)."""
    import hashlib

    def key(text: str) -> str:
        return hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]

    examples = []
    for p in pairs:
        examples.append({"passage_id": key(p["en"]), "source": p["en"], "target": p["text"], "lang": p["lang"]})
        examples.append({"passage_id": key(p["text"]), "source": p["text"], "target": p["en"], "lang": PIVOT})
    return examples


def train_translator(cfg: dict, xdr: dict, contexts, queries, links, corpus, out: Path, seed: int,
                     device="cpu") -> dict:
    """``translate.model``: ``warm`` is trained here (on ``device``); a Hugging Face id/path is only recorded
    (no fine-tuning)."""
    from .warm import WarmSettings, fit_warm
    import json

    spec = cfg["model"]
    out.mkdir(parents=True, exist_ok=True)
    if spec == "oracle":
        meta, history = {"kind": "oracle"}, {}
    elif spec == "warm":
        pairs = parallel_pairs(contexts, links, queries, "train")
        if not pairs:
            raise ConfigError("translate: no parallel training pairs (is the training split empty?)")
        settings = WarmSettings.from_params(cfg.get("warm", {}), seed, "translate.warm")
        history, meta = fit_warm(training_examples(pairs), xdr, settings, [c["text"] for c in corpus], out, device)
        history.update(pairs=len(pairs), questions=sum(p["kind"] == "question" for p in pairs))
    else:
        load_hf_translator(spec, cfg.get("max_source_length", 128))  # fail now, not in every language's stage
        meta, history = {"kind": "hf", "model": spec}, {}
    meta["max_source_length"] = cfg.get("max_source_length", 128)
    (out / KIND_FILE).write_text(json.dumps(meta, indent=2) + "\n")
    return history


def load_hf_translator(spec: str, max_source_length: int = 128) -> HFTranslator:
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    from .models import from_pretrained

    return HFTranslator(from_pretrained(AutoModelForSeq2SeqLM, spec, "translate.model"),
                        from_pretrained(AutoTokenizer, spec, "translate.model"), max_source_length)


def load_translator(path):
    """The translator a train_translator stage recorded in ``path`` (None for the oracle)."""
    import json

    from .warm import load_warm

    path = Path(path)
    if not (path / KIND_FILE).is_file():
        raise ConfigError(f"{path}: not a translator folder written by train_translator (no {KIND_FILE})")
    meta = json.loads((path / KIND_FILE).read_text())
    if meta["kind"] == "oracle":
        return None
    if meta["kind"] == "warm":
        return WarmTranslator(load_warm(path, meta))
    return load_hf_translator(meta["model"], meta["max_source_length"])


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
