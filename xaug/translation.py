"""Passage generation by translation: the ``translate`` corpus job.

A method's output, like query generation's, is one JSONL per target language mapping each corpus
passage to its generated texts (here at most one: the passage in that language): each passage's first
``translate.max_sentences`` sentences translated (``xaug.translators``: ``warm`` or a Hugging Face
NLLB-200 / M2M100 model) and re-joined, chunk by chunk (``xaug.chunks``), here or on Ray actors. MLQA's
own parallel contexts are a method of their own (``parallel_contexts``, ``xaug.data.parallel_contexts``).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from .chunks import run_chunked
from .decoding import TranslateSettings
from .encoding import length_batches
from .jobs import Job
from .parallel_text import first_sentences, join_sentences
from .translators import HFTranslator, WarmTranslator, load_translator


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
class TranslationJob(Job):
    """One language's translation (``xaug.jobs.Job``): ``model`` is a train_translator folder,
    ``settings`` the ``TranslateSettings``, ``states`` the sentences' encoder states (warm translators).
    ``load()`` returns the per-chunk ``CorpusTranslator``."""

    def load_model(self) -> HFTranslator | WarmTranslator:
        return load_translator(self.model)

    def per_chunk(self, translator, states: dict | None) -> CorpusTranslator:
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
