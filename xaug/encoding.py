"""The dense bi-encoder: text -> pooled (optionally normalised) embedding, batched and length-sorted.

``encode_with`` sorts texts by length into batches (``length_batches``), groups consecutive batches
into chunks of at most ``encode.chunk_size`` texts and hands each chunk's vectors to the caller as it
comes back (the stages write them into memory-mapped outputs); the chunks run in this process
(``InProcess``) or on the backend of the generation stages (``xaug.encode_jobs``: local or Ray actors),
so a lost worker costs its chunk only and the vectors do not depend on the backend or the number of
workers (every batch is the same on any of them)."""
from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from tqdm import tqdm

from .device import bf16_autocast, device_of, use_bf16
from .errors import ConfigError
from .params import check_int

log = logging.getLogger(__name__)
SETTINGS_FILE = "xaug_encoder.json"


@dataclass
class EncoderSettings:
    """How texts become vectors; saved beside the model so an encoder folder is self-describing."""

    pooling: str = "mean"
    query_prefix: str = ""
    passage_prefix: str = ""
    normalize: bool = True
    max_query_length: int = 64
    max_passage_length: int = 512

    def __post_init__(self):
        if self.pooling not in ("mean", "cls"):
            raise ConfigError(f"xdr.pooling: expected 'mean' or 'cls', got {self.pooling!r}")
        for name in ("max_query_length", "max_passage_length"):
            check_int(getattr(self, name), f"xdr.{name}")


@dataclass
class EncodeSettings:
    """How a stage batches texts through an encoder (params group ``encode``)."""

    batch_size: int = 128      # texts per batch at most
    max_tokens: int = 2048     # padded tokens per batch at most (0 = no cap)
    bf16: bool | str = "auto"  # bfloat16 autocast: true | false | auto (xaug.device.use_bf16)
    chunk_size: int = 8192     # texts per chunk at most: what one worker computes at a time
    backend: str = "local"     # local | ray: where the chunks run (xaug.encode_jobs, xaug.backend)
    ray_address: str = ""
    ray_workers: int = 2

    def __post_init__(self):
        check_int(self.batch_size, "batch_size")
        check_int(self.max_tokens, "max_tokens", minimum=0, note="0 = no cap")
        check_int(self.chunk_size, "chunk_size")
        if self.bf16 not in (True, False, "auto"):
            raise ConfigError(f"bf16: expected true, false or auto, got {self.bf16!r}")


def length_batches(lengths: Sequence[int], batch_size: int, max_tokens: int = 0) -> list[np.ndarray]:
    """Index batches, longest texts first, each holding at most `batch_size` texts and, when `max_tokens` > 0,
    at most `max_tokens` padded tokens: short texts go in large batches, long ones in small (faster on CPU)."""
    order = np.argsort([-n for n in lengths], kind="stable")
    batches, start = [], 0
    while start < len(order):
        longest = max(int(lengths[order[start]]), 1)
        size = batch_size if max_tokens <= 0 else max(1, min(batch_size, max_tokens // longest))
        batches.append(order[start : start + size])
        start += size
    return batches


def pool(hidden: torch.Tensor, mask: torch.Tensor, how: str) -> torch.Tensor:
    if how == "cls":
        return hidden[:, 0]
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(1) / m.sum(1).clamp(min=1.0)


class DenseEncoder:
    """A transformers encoder + tokenizer + pooling/prefix settings (one tower shared by queries and passages)."""

    def __init__(self, model, tokenizer, settings: EncoderSettings):
        self.model, self.tokenizer, self.settings = model, tokenizer, settings

    @property
    def device(self) -> torch.device:
        return device_of(self.model)

    def to(self, device) -> "DenseEncoder":
        self.model.to(device)
        return self

    @property
    def dim(self) -> int:
        return int(self.model.config.hidden_size)

    def _prefix_and_limit(self, kind: str) -> tuple[str, int]:
        s = self.settings
        if kind == "query":
            return s.query_prefix, s.max_query_length
        if kind == "passage":
            return s.passage_prefix, s.max_passage_length
        raise ValueError(f"kind must be 'query' or 'passage', got {kind!r}")

    def tokenize(self, texts: Sequence[str], kind: str, padding=True):
        prefix, limit = self._prefix_and_limit(kind)
        limit = min(limit, getattr(self.model.config, "max_position_embeddings", limit))
        return self.tokenizer([prefix + t for t in texts], truncation=True, max_length=limit,
                              padding=padding, return_tensors="pt" if padding else None,
                              return_token_type_ids=False)

    def lengths(self, texts: Sequence[str], kind: str, block: int = 4096) -> list[int]:
        """Tokens of each text as ``tokenize`` encodes it, ``block`` texts at a time (only the counts are kept)."""
        out: list[int] = []
        for start in range(0, len(texts), block):
            out.extend(len(x) for x in self.tokenize(texts[start: start + block], kind, padding=False)["input_ids"])
        return out

    def forward(self, batch) -> torch.Tensor:
        ids, mask = batch["input_ids"].to(self.device), batch["attention_mask"].to(self.device)
        out = self.model(input_ids=ids, attention_mask=mask).last_hidden_state
        emb = pool(out, mask, self.settings.pooling).float()
        return torch.nn.functional.normalize(emb, dim=-1) if self.settings.normalize else emb

    def embed(self, texts: Sequence[str], kind: str) -> torch.Tensor:
        """Embeddings with autograd (training)."""
        return self.forward(self.tokenize(texts, kind))

    def encode(self, texts: Sequence[str], kind: str, batch_size: int = 32, bf16: bool = False,
               progress: bool = True, desc: str | None = None, max_tokens: int = 0) -> tuple[np.ndarray, int]:
        """(float32 embeddings in input order, tokens processed), in this process; batches sorted by
        length (``length_batches``), as ``encode_with`` on any backend."""
        settings = EncodeSettings(batch_size=check_int(batch_size, "encode.batch_size"),
                                  max_tokens=check_int(max_tokens, "encode.max_tokens", minimum=0, note="0 = no cap"))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)

        def put(index, vectors):
            out[index] = vectors
        done = encode_with(InProcess(ChunkEncoder(self, bf16)), texts, kind, settings, put, desc or f"encode {kind}s",
                           progress)
        return out, done["tokens"]

    def save(self, path) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(path)
        self.tokenizer.save_pretrained(path)
        (path / SETTINGS_FILE).write_text(json.dumps(asdict(self.settings), indent=2) + "\n")

    @classmethod
    def load(cls, path) -> "DenseEncoder":
        from transformers import AutoModel, AutoTokenizer  # heavy: loaded only when an encoder is loaded

        path = Path(path)
        if not (path / SETTINGS_FILE).is_file():
            raise ConfigError(f"{path}: not an encoder folder written by train_xdr (no {SETTINGS_FILE})")
        settings = EncoderSettings(**json.loads((path / SETTINGS_FILE).read_text()))
        try:  # BERT-style models are saved without the (unused) pooler; don't build a random one
            model = AutoModel.from_pretrained(path, add_pooling_layer=False)
        except TypeError:
            model = AutoModel.from_pretrained(path)
        tokenizer = AutoTokenizer.from_pretrained(path)
        return cls(model.eval(), tokenizer, settings)


class ChunkEncoder:
    """The per-chunk function of an ``EncodeJob``: a chunk is ``(kind, batches)``, each batch a list of
    texts; returns their vectors (float32, batch after batch), the tokens processed and the bf16 choice."""

    def __init__(self, encoder: DenseEncoder, bf16: bool | str = "auto"):
        self.encoder, self.device = encoder, encoder.device
        self.bf16 = use_bf16(bf16, self.device, "encode.bf16")

    def lengths(self, request: tuple[str, Sequence[str]]) -> list[int]:
        kind, texts = request
        return self.encoder.lengths(texts, kind)

    @torch.inference_mode()
    def __call__(self, chunk: tuple[str, list[list[str]]], index: int) -> dict:
        kind, batches = chunk
        self.encoder.model.eval()
        vectors, tokens = [], 0
        with bf16_autocast(self.device, self.bf16):
            for texts in batches:
                batch = self.encoder.tokenize(texts, kind)
                tokens += int(batch["attention_mask"].sum())
                vectors.append(self.encoder.forward(batch).float().cpu().numpy())
        return {"vectors": np.concatenate(vectors) if vectors else np.zeros((0, self.encoder.dim), np.float32),
                "tokens": tokens, "bf16": self.bf16}


class InProcess:
    """Runs ``encode_with``'s chunks in this process, one after the other (``xaug.backend``'s pools run
    them on its backends)."""

    def __init__(self, fn: ChunkEncoder):
        self.fn = fn

    def lengths(self, request) -> list[int]:
        return self.fn.lengths(request)

    def imap(self, tasks):
        for index, chunk in tasks:
            yield index, self.fn(chunk, index), 0.0


def chunk_batches(batches: list[np.ndarray], chunk_size: int) -> list[list[np.ndarray]]:
    """Consecutive batches grouped into chunks of at most ``chunk_size`` texts (at least one batch each)."""
    chunks: list[list[np.ndarray]] = []
    size = chunk_size
    for batch in batches:
        if size + len(batch) > chunk_size:
            chunks.append([])
            size = 0
        chunks[-1].append(batch)
        size += len(batch)
    return chunks


def encode_with(runner, texts: Sequence[str], kind: str, settings: EncodeSettings, put, desc: str,
                progress: bool = True) -> dict:
    """Embed ``texts`` on ``runner`` (``InProcess``, or a pool of ``xaug.encode_jobs.EncodeJob``): batches
    sorted by length (``length_batches``), grouped into chunks (``chunk_batches``); ``put(index, vectors)``
    receives each chunk's vectors with their positions in ``texts`` as it finishes. Returns the texts,
    tokens, seconds, chunks and the bf16 choice (None when there was nothing to encode)."""
    started = time.perf_counter()
    lengths = runner.lengths((kind, list(texts))) if len(texts) else []
    chunks = chunk_batches(length_batches(lengths, settings.batch_size, settings.max_tokens), settings.chunk_size)
    tokens, bf16 = 0, None
    with tqdm(total=len(texts), desc=desc, unit="text", disable=not progress) as bar:
        tasks = ((c, (kind, [[texts[i] for i in batch] for batch in chunk])) for c, chunk in enumerate(chunks))
        for c, result, _ in runner.imap(tasks):
            index = np.concatenate(chunks[c])
            put(index, result["vectors"])
            tokens, bf16 = tokens + result["tokens"], result["bf16"]
            bar.update(len(index))
    seconds = time.perf_counter() - started
    return {"count": len(texts), "tokens": tokens, "seconds": round(seconds, 2),
            "tokens_per_s": round(tokens / max(seconds, 1e-9)), "chunks": len(chunks), "bf16": bf16}


def encoder_dim(model) -> int:
    """The embedding size of an encoder folder (its config's ``hidden_size``), read without the weights."""
    from transformers import AutoConfig  # heavy: loaded only when an encoder folder is read

    return int(AutoConfig.from_pretrained(model).hidden_size)
