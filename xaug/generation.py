"""Query generation: prompts, batched length-sorted sampling, and a resumable chunked runner.

Two generators share one interface, ``generate(passages, lang, n) -> (queries per passage, tokens)``:
``Seq2SeqGenerator`` wraps any Hugging Face seq2seq model with the paper's prompt, and
``xaug.warm.WarmGenerator`` is the BERT2BERT model warm-started from the xDR's encoder.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Sequence

import torch
from tqdm import tqdm

from .device import bf16_autocast
from .encoding import length_batches
from .errors import ConfigError
from .io import atomic_path
from .languages import LANGUAGES, supported
from .params import positive_int

log = logging.getLogger(__name__)
PROMPT = "Generate a {language} question for this passage: {title} {passage}"


def language_name(lang: str) -> str:
    """The English name of ``lang`` in the prompt (``xaug.languages``)."""
    if not isinstance(lang, str) or lang not in LANGUAGES:
        raise ConfigError(f"languages: no known name for language code {lang!r} to use in the prompt "
                          f"(known: {supported()})")
    return LANGUAGES[lang].name


def make_prompt(lang: str, title: str, passage: str) -> str:
    """The paper's input, exactly: ``Generate a {Language} question for this passage: {title} {passage}``."""
    return PROMPT.format(language=language_name(lang), title=title, passage=passage)


@dataclass
class SamplingSettings:
    n_queries: int = 5
    top_k: int = 10
    max_new_tokens: int = 64
    batch_size: int = 16
    do_sample: bool = True
    seed: int = 0
    copy_bias: float = 0.0  # added to the logits of rare pieces that occur in the source passage
    copy_max_df: float = 0.02  # "rare": in at most this share of corpus passages
    no_repeat_bigrams: bool = False  # warm generators: never repeat a bigram within an output
    max_tokens: int = 0  # padded source tokens per decode batch at most (0 = batch_size passages a batch)

    def __post_init__(self):
        for name in ("n_queries", "max_new_tokens", "batch_size"):
            positive_int(getattr(self, name), f"xqg.{name}")
        if not self.do_sample and self.n_queries > 1:
            raise ConfigError(f"xqg.do_sample: greedy decoding gives one query per passage; set n_queries to 1 "
                              f"(got {self.n_queries}) or sample")
        if isinstance(self.top_k, bool) or not isinstance(self.top_k, int) or self.top_k < 0:
            raise ConfigError(f"xqg.top_k: expected an integer >= 0 (0 = no top-k cut), got {self.top_k!r}")
        if isinstance(self.max_tokens, bool) or not isinstance(self.max_tokens, int) or self.max_tokens < 0:
            raise ConfigError(f"xqg.max_tokens: expected an integer >= 0 (0 = no cap), got {self.max_tokens!r}")


def rare_pieces(token_lists: Sequence[Sequence[int]], max_df: float) -> set[int]:
    """Pieces occurring in at most ``max_df`` of the texts (names and content words, not "the" or ",")."""
    from collections import Counter

    df = Counter(t for ids in token_lists for t in set(ids))
    return {t for t, n in df.items() if n <= max_df * len(token_lists)}


class SourceBias:
    """Logits processor: favour pieces of each row's source passage (a cheap copy mechanism)."""

    def __init__(self, sources: list[list[int]], vocab_size: int, n: int, bias: float):
        mask = torch.zeros(len(sources), vocab_size)
        for i, ids in enumerate(sources):
            mask[i, [t for t in set(ids) if 0 <= t < vocab_size]] = bias
        self.bias = mask.repeat_interleave(n, dim=0)  # generate() expands each input n times, in place

    def __call__(self, input_ids, scores):
        return scores + self.bias.to(scores.device, scores.dtype)


def generation_kwargs(s: SamplingSettings, n: int, sources: list[list[int]] | None = None,
                      vocab_size: int | None = None) -> dict:
    kwargs = dict(max_new_tokens=s.max_new_tokens, num_return_sequences=n, do_sample=s.do_sample)
    if s.do_sample:
        kwargs.update(top_k=s.top_k or None, top_p=None, temperature=None)
    else:
        kwargs.update(num_beams=1)
    if s.copy_bias and sources is not None:
        from transformers import LogitsProcessorList

        kwargs["logits_processor"] = LogitsProcessorList([SourceBias(sources, vocab_size, n, s.copy_bias)])
    return kwargs


class Seq2SeqGenerator:
    """A Hugging Face encoder-decoder (mT5, T5, ...) prompted with the paper's input."""

    def __init__(self, model, tokenizer, max_source_length: int = 256):
        self.model, self.tokenizer, self.max_source_length = model.eval(), tokenizer, max_source_length
        self.copy_vocabulary: set[int] | None = None

    def to(self, device) -> "Seq2SeqGenerator":
        self.model.to(device)
        return self

    def set_copy_vocabulary(self, texts: Sequence[str], max_df: float) -> None:
        ids = self.tokenizer(list(texts), add_special_tokens=False, verbose=False)["input_ids"]
        self.copy_vocabulary = rare_pieces(ids, max_df)

    def source_lengths(self, passages: Sequence[dict]) -> list[int]:
        enc = self.tokenizer([p["text"] for p in passages], truncation=True, max_length=self.max_source_length)
        return [len(x) for x in enc["input_ids"]]

    @torch.inference_mode()
    def generate(self, passages: Sequence[dict], lang: str, settings: SamplingSettings,
                 n: int | None = None) -> tuple[list[list[str]], int]:
        n = n or settings.n_queries
        prompts = [make_prompt(lang, p.get("title", ""), p["text"]) for p in passages]
        batch = self.tokenizer(prompts, truncation=True, max_length=self.max_source_length, padding=True,
                               return_tensors="pt")
        allowed = self.copy_vocabulary
        sources = [[t for t in row if t not in self.tokenizer.all_special_ids and (allowed is None or t in allowed)]
                   for row in batch["input_ids"].tolist()]
        device = self.model.device
        with bf16_autocast(device, device.type == "cuda"):  # bf16 on the GPU
            out = self.model.generate(**batch.to(device),
                                      **generation_kwargs(settings, n, sources, self.model.config.vocab_size))
        return split_outputs(self.tokenizer, out, len(passages), n)


def split_outputs(tokenizer, sequences: torch.Tensor, n_passages: int, n: int) -> tuple[list[list[str]], int]:
    """Decode ``n`` sequences per passage; count generated tokens (excluding padding and start)."""
    special = set(tokenizer.all_special_ids)
    tokens = int(sum(1 for row in sequences.tolist() for t in row[1:] if t not in special))
    texts = [t.strip() for t in tokenizer.batch_decode(sequences, skip_special_tokens=True)]
    return [texts[i * n : (i + 1) * n] for i in range(n_passages)], tokens


def fingerprint(*parts) -> str:
    """A short digest of everything that determines a generation run (model, inputs, settings)."""
    h = hashlib.sha256()
    for part in parts:
        h.update(json.dumps(part, sort_keys=True, default=str).encode() + b"\0")
    return h.hexdigest()[:16]


def code_digest() -> str:
    """A digest of the xaug package's source: chunks written by other code are not reused."""
    h = hashlib.sha256()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:16]


def work_folder(root, lang: str, model, data, *settings, states=None) -> Path:
    """A language's scratch folder for resumable chunks, keyed by the model's files, the prepared data,
    the encoder states file the generator reads (if any), the package's code and the settings: a
    changed input never reuses stale chunks."""
    from .download import sha256_file, sha256_tree
    from .io import read_json

    inputs = [sha256_tree(model), read_json(Path(data) / "stats.json"), code_digest(),
              sha256_file(states) if states and Path(states).is_file() else None]
    return Path(root) / f"{lang}-{fingerprint(*inputs, *settings, lang)}"


def run_chunked(items: list[dict], lengths: list[int] | None, work_dir: Path, chunk_size: int,
                fn, desc: str, progress: bool = True, backend=None) -> tuple[list[dict], dict]:
    """Apply ``fn`` to length-sorted chunks of ``items``, one atomic file per finished chunk.

    A re-run with the same ``work_dir`` skips finished chunks; ``fn`` gets the chunk index so it can
    seed itself per chunk, which makes a resumed run identical to an uninterrupted one. ``fn`` is the
    per-chunk function or a job whose ``load()`` returns it, run where ``backend`` (``xaug.backend``:
    local by default, or Ray actors) says; ``lengths`` None: the loaded function's ``lengths(items)``.
    Returns the rows in ``items`` order and stats (chunks done now / reused, seconds summed over all
    chunks, backend, workers, device).
    """
    from .backend import open_pool

    if chunk_size <= 0:
        raise ConfigError(f"chunk_size: expected a positive integer, got {chunk_size!r}")
    work_dir.mkdir(parents=True, exist_ok=True)
    rows: dict[int, dict] = {}
    reused = seconds = 0.0
    with open_pool(fn, backend) as pool:
        if lengths is None:
            lengths = pool.lengths(items)
        order = sorted(range(len(items)), key=lambda i: (-lengths[i], i))
        chunks = [order[i : i + chunk_size] for i in range(0, len(order), chunk_size)]
        todo = []
        with tqdm(total=len(items), desc=desc, unit="passage", disable=not progress) as bar:
            for c, idx in enumerate(chunks):
                path = work_dir / f"chunk-{c:05d}.jsonl"
                if not path.is_file():
                    todo.append(c)
                    continue
                lines = path.read_text(encoding="utf-8").splitlines()
                meta, chunk_rows = json.loads(lines[0]), [json.loads(l) for l in lines[1:]]
                reused += 1
                seconds += meta["seconds"]
                rows.update(zip(idx, chunk_rows))
                bar.update(len(idx))
            for c, chunk_rows, chunk_seconds in pool.imap((c, [items[i] for i in chunks[c]]) for c in todo):
                meta = {"seconds": chunk_seconds}
                with atomic_path(work_dir / f"chunk-{c:05d}.jsonl") as tmp:
                    tmp.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in [meta, *chunk_rows]) + "\n",
                                   encoding="utf-8")
                seconds += chunk_seconds
                rows.update(zip(chunks[c], chunk_rows))
                bar.update(len(chunks[c]))
        where = {"backend": pool.backend, "workers": pool.workers, "device": ", ".join(sorted(set(pool.devices)))}
    if reused:
        log.info("%s: reused %d of %d finished chunks from %s", desc, int(reused), len(chunks), work_dir)
    return [rows[i] for i in range(len(items))], {"chunks": len(chunks), "chunks_reused": int(reused),
                                                  "seconds": round(seconds, 2), **where}


class CorpusGenerator:
    """The per-chunk function of one language's generation over a loaded generator: ``n_queries`` queries
    per passage, batch by batch, seeded by the chunk index. ``states``: the passages' encoder states
    by id (warm generators read them instead of re-encoding)."""

    def __init__(self, generator, lang: str, settings: SamplingSettings, states: dict | None = None):
        self.generator, self.lang, self.settings, self.states = generator, lang, settings, states or {}
        self.device = getattr(generator, "device", None) or getattr(getattr(generator, "model", None), "device", None)

    def lengths(self, passages: list[dict]) -> list[int]:
        return self.generator.source_lengths(passages)

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


@contextlib.contextmanager
def in_folder(root: str | None):
    """Run a job's loading in the driver's working directory (a model folder may name others relative
    to it), when this machine has that folder."""
    if not root or not os.path.isdir(root) or os.path.abspath(root) == os.getcwd():
        yield
        return
    before = os.getcwd()
    os.chdir(root)
    try:
        yield
    finally:
        os.chdir(before)


@dataclass
class GenerationJob:
    """What a worker needs to generate one language's queries (picklable: paths and settings, no model).

    ``load()`` loads the generator (``model``: a train_xqg folder) on ``device`` (a ``device`` parameter
    value, resolved where it runs), sets the copy-bias vocabulary from ``corpus`` (corpus.jsonl, when
    ``settings.copy_bias``), reads the encoder ``states`` (a safetensors file, optional) and returns
    the per-chunk ``CorpusGenerator``. Relative paths are resolved against ``root`` (the driver's
    working directory); ``threads``: torch threads of the worker (None: leave them).
    """

    model: str
    lang: str
    settings: SamplingSettings
    device: str = "auto"
    states: str | None = None
    corpus: str | None = None
    threads: int | None = None
    root: str | None = None

    def load(self) -> CorpusGenerator:
        from .device import resolve_device
        from .io import read_jsonl
        from .formats import load_states
        from .xqg import load_generator

        if self.threads:
            torch.set_num_threads(int(self.threads))
        with in_folder(self.root):
            generator = load_generator(self.model).to(resolve_device(self.device))
            if self.settings.copy_bias:
                if not self.corpus:
                    raise ConfigError("xqg.copy_bias: the generation job needs the corpus for the copy vocabulary")
                generator.set_copy_vocabulary([p["text"] for p in read_jsonl(self.corpus)], self.settings.copy_max_df)
            states = load_states(self.states) if self.states else {}
        return CorpusGenerator(generator, self.lang, self.settings, states)


def generate_for_corpus(generator, corpus: list[dict], lang: str, settings: SamplingSettings, work_dir: Path,
                        chunk_size: int = 64, progress: bool = True, backend=None) -> tuple[list[dict], dict]:
    """``n_queries`` queries in ``lang`` for every passage (empty passages get none), resumable by chunk.

    ``generator``: a loaded generator (runs here), or a ``GenerationJob`` run on ``backend``
    (``xaug.backend.BackendSettings``; None = local): the same rows either way.
    """
    language_name(lang)
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


def finish(work_dir: Path) -> None:
    """Drop the chunk files once the merged output is written."""
    shutil.rmtree(work_dir, ignore_errors=True)
