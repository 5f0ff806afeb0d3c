"""The dense bi-encoder: text -> pooled (optionally normalised) embedding, batched and length-sorted."""
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
from .formats import write_embeddings
from .io import atomic_dir, read_jsonl, write_json
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

    def __post_init__(self):
        check_int(self.batch_size, "batch_size")
        check_int(self.max_tokens, "max_tokens", minimum=0, note="0 = no cap")
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

    @torch.inference_mode()
    def encode(self, texts: Sequence[str], kind: str, batch_size: int = 32, bf16: bool = False,
               progress: bool = True, desc: str | None = None, max_tokens: int = 0) -> tuple[np.ndarray, int]:
        """(float32 embeddings in input order, tokens processed); batches sorted by length (`length_batches`)."""
        check_int(batch_size, "encode.batch_size")
        check_int(max_tokens, "encode.max_tokens", minimum=0, note="0 = no cap")
        self.model.eval()
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out, 0
        autocast = bf16_autocast(self.device, bf16)
        tokens = 0
        with tqdm(total=len(texts), desc=desc or f"encode {kind}s", unit="text", disable=not progress) as bar, autocast:
            for idx in length_batches(self.lengths(texts, kind), batch_size, max_tokens):
                batch = self.tokenize([texts[i] for i in idx], kind)  # per batch: no token lists of the corpus
                tokens += int(batch["attention_mask"].sum())
                out[idx] = self.forward(batch).float().cpu().numpy()
                bar.update(len(idx))
        return out, tokens

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


def encode_prepared(encoder: DenseEncoder, data_dir, out_dir, settings: EncodeSettings) -> dict:
    """Embed a prepared folder's corpus passages, evaluation queries and tuning queries into ``out_dir``
    (replaced as a whole): ``passages``, ``queries``, ``tune_queries`` embeddings and ``stats.json``
    (per set: count, tokens, seconds, tokens/s; and the bf16 choice ``auto`` made). Returns the stats."""
    data_dir = Path(data_dir)
    corpus = read_jsonl(data_dir / "corpus.jsonl")
    all_queries = read_jsonl(data_dir / "queries.jsonl")
    queries = [q for q in all_queries if q["split"] == "eval"]
    tune_queries = [q for q in all_queries if q["split"] == "tune"]
    with atomic_dir(out_dir) as out:  # the folder is replaced as a whole
        stats = {"bf16": use_bf16(settings.bf16, encoder.device, "encode.bf16")}  # the choice `auto` made here
        for kind, name, rows in (("passage", "passages", corpus), ("query", "queries", queries),
                                 ("query", "tune_queries", tune_queries)):
            started = time.perf_counter()
            vectors, tokens = encoder.encode([r["text"] for r in rows], kind, batch_size=settings.batch_size,
                                             bf16=stats["bf16"], max_tokens=settings.max_tokens, desc=f"encode {name}")
            seconds = time.perf_counter() - started
            write_embeddings(out / name, vectors, [r["id"] for r in rows])
            stats[name] = {"count": len(rows), "tokens": tokens, "seconds": round(seconds, 2),
                           "tokens_per_s": round(tokens / max(seconds, 1e-9))}
            log.info("%d %s, %d tokens in %.1fs (%.0f tokens/s)", len(rows), name, tokens, seconds,
                     tokens / max(seconds, 1e-9))
        write_json(out / "stats.json", stats)
    return stats
