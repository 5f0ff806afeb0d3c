"""The xQG corpus job: ``xqg.n_queries`` generated queries in one language for every corpus passage, run
chunk by chunk (``xaug.chunks``) here or on Ray actors, with a generator that ``train_xqg`` wrote
(``xaug.generators``)."""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch

from .chunks import run_chunked
from .decoding import SamplingSettings
from .encoding import length_batches
from .errors import ConfigError
from .generators import load_generator
from .io import read_jsonl
from .jobs import Job
from .params import check_int
from .prompts import language_name
from .seq2seq import Seq2SeqGenerator
from .warm import WarmGenerator

log = logging.getLogger(__name__)


class CorpusGenerator:
    """The per-chunk function of one language's generation over a loaded generator: ``n_queries`` queries
    per passage, batch by batch, seeded by the chunk index. ``states``: the passages' encoder states
    by id (warm generators read them instead of re-encoding)."""

    def __init__(self, generator, lang: str, settings: SamplingSettings, states: dict | None = None):
        self.generator, self.lang, self.settings, self.states = generator, lang, settings, states or {}
        self.device = getattr(generator, "device", None) or getattr(getattr(generator, "model", None), "device", None)

    def lengths(self, passages: list[dict]) -> list[int]:
        return self.generator.source_lengths(passages, self.lang)

    def batches(self, chunk: list[dict]) -> list[list[int]]:
        """Decode batches of a (length-sorted) chunk: ``batch_size`` passages each, or, with
        ``max_tokens``, as many as fit that many padded source tokens (more short passages a batch; a
        GPU takes far more than the chunk's resumable unit suggests)."""
        s = self.settings
        if not s.max_tokens:
            return [list(range(i, min(i + s.batch_size, len(chunk)))) for i in range(0, len(chunk), s.batch_size)]
        return [b.tolist() for b in length_batches(self.lengths(chunk), s.batch_size, s.max_tokens)]

    def __call__(self, chunk: list[dict], index: int) -> list[dict]:
        s, states = self.settings, self.states
        if states:
            chunk = [{**c, "states": states[c["id"]]} if c["id"] in states else c for c in chunk]
        torch.manual_seed(s.seed * 1_000_003 + index)
        rows = []
        for idx in self.batches(chunk):
            batch = [chunk[i] for i in idx]
            queries, tokens = self.generator.generate(batch, self.lang, s)
            for k, (p, qs) in enumerate(zip(batch, queries)):
                rows.append({"id": p["id"], "queries": qs, "tokens": tokens if k == 0 else 0})
        return rows


@dataclass
class GenerationJob(Job):
    """One language's query generation (``xaug.jobs.Job``): ``model`` is a train_xqg folder, ``settings``
    the ``SamplingSettings``, ``states`` the passages' encoder states (warm generators read them instead
    of re-encoding), and ``corpus`` corpus.jsonl, which gives the copy-bias vocabulary when
    ``settings.copy_bias``. ``load()`` returns the per-chunk ``CorpusGenerator``."""

    corpus: str | None = None

    def load_model(self) -> WarmGenerator | Seq2SeqGenerator:
        return load_generator(self.model)

    def prepare(self, generator) -> None:
        if self.settings.copy_bias:
            if not self.corpus:
                raise ConfigError("xqg.copy_bias: the generation job needs the corpus for the copy vocabulary")
            generator.set_copy_vocabulary([p["text"] for p in read_jsonl(self.corpus)], self.settings.copy_max_df)

    def per_chunk(self, generator, states: dict | None) -> CorpusGenerator:
        return CorpusGenerator(generator, self.lang, self.settings, states)


def generate_for_corpus(generator, corpus: list[dict], lang: str, settings: SamplingSettings, work_dir: Path,
                        chunk_size: int = 64, progress: bool = True, backend=None) -> tuple[list[dict], dict]:
    """``n_queries`` queries in ``lang`` for every passage (empty passages get none), resumable by chunk
    (``chunk_size`` passages, ``xqg.chunk_size``).

    ``generator``: a loaded generator (runs here), or a ``GenerationJob`` run on ``backend``
    (``xaug.backend.BackendSettings``; None = local): the same rows either way.
    """
    language_name(lang)
    check_int(chunk_size, "xqg.chunk_size")
    todo = [p for p in corpus if p["text"].strip()]
    if isinstance(generator, GenerationJob):
        job = replace(generator, lang=lang, settings=settings)
    else:
        if settings.copy_bias:
            generator.set_copy_vocabulary([p["text"] for p in corpus], settings.copy_max_df)
        job = CorpusGenerator(generator, lang, settings)
    empty = len(corpus) - len(todo)
    if empty:
        log.warning("%d empty passage(s) get no generated queries", empty)
    rows, stats = run_chunked(todo, None, work_dir, chunk_size, job, desc=f"generate {lang}", progress=progress,
                              backend=backend)
    by_id = {r["id"]: r for r in rows}
    out = [{"id": p["id"], "queries": by_id[p["id"]]["queries"] if p["id"] in by_id else []} for p in corpus]
    n_queries = sum(len(r["queries"]) for r in out)
    stats.update(lang=lang, passages=len(corpus), empty_passages=empty, queries=n_queries,
                 generated_tokens=sum(r["tokens"] for r in rows),
                 queries_per_s=round(n_queries / max(stats["seconds"], 1e-9), 1), settings=asdict(settings))
    return out, stats
