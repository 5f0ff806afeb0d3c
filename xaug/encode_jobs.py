"""Corpus encoding on the backend of the generation stages (``encode.backend``: ``local`` or Ray actors,
``xaug.backend``): ``EncodeJob`` is what a worker loads (the xDR, once), ``encode_prepared`` the encode
stage's work; the encode_items stage uses the same job for the items of a method (``xaug.methods``)."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from .backend import BackendSettings, open_pool
from .device import resolve_device
from .encoding import ChunkEncoder, DenseEncoder, EncodeSettings, encode_with, encoder_dim
from .formats import embeddings_writer
from .io import atomic_dir, read_jsonl, write_json
from .jobs import in_folder

log = logging.getLogger(__name__)


def backend_settings(settings: EncodeSettings) -> BackendSettings:
    """Where ``encode.*`` says the chunks run (a one-line error naming ``encode.backend`` otherwise)."""
    return BackendSettings(backend=settings.backend, ray_address=settings.ray_address or "",
                           ray_workers=settings.ray_workers, group="encode")


@dataclass
class EncodeJob:
    """What a worker needs to embed texts (picklable: a path and settings, no model): the encoder folder
    ``model`` (train_xdr's), ``bf16`` (true | false | auto, resolved on the worker's device), the ``device``
    (a ``device`` parameter value), the worker's torch ``threads`` and ``root``, the driver's working
    directory, against which a relative ``model`` is resolved."""

    model: str
    bf16: bool | str = "auto"
    device: str = "auto"
    threads: int | None = None
    root: str | None = None

    def load(self) -> ChunkEncoder:
        if self.threads:
            torch.set_num_threads(int(self.threads))
        with in_folder(self.root):
            encoder = DenseEncoder.load(self.model)
        return ChunkEncoder(encoder.to(resolve_device(self.device)), self.bf16)


def encode_prepared(job: EncodeJob, data_dir, out_dir, settings: EncodeSettings) -> dict:
    """Embed a prepared folder's corpus passages, evaluation queries and tuning queries into ``out_dir``
    (replaced as a whole) on ``settings``' backend: ``passages``, ``queries``, ``tune_queries`` embeddings
    (written memory-mapped as the chunks finish) and ``stats.json`` (per set: count, tokens, seconds,
    tokens/s; the bf16 choice ``auto`` made, the backend and its workers). Returns the stats."""
    data_dir = Path(data_dir)
    corpus = read_jsonl(data_dir / "corpus.jsonl")
    all_queries = read_jsonl(data_dir / "queries.jsonl")
    queries = [q for q in all_queries if q["split"] == "eval"]
    tune_queries = [q for q in all_queries if q["split"] == "tune"]
    with atomic_dir(out_dir) as out:  # the folder is replaced as a whole
        dim, stats = encoder_dim(job.model), {"bf16": None}
        with open_pool(job, backend_settings(settings)) as runner:
            for kind, name, rows in (("passage", "passages", corpus), ("query", "queries", queries),
                                     ("query", "tune_queries", tune_queries)):
                with embeddings_writer(out / name, [r["id"] for r in rows], dim) as vectors:
                    def put(index, chunk_vectors, vectors=vectors):
                        vectors[index] = chunk_vectors
                    done = encode_with(runner, [r["text"] for r in rows], kind, settings, put, f"encode {name}")
                stats["bf16"] = stats["bf16"] if done["bf16"] is None else done["bf16"]  # the choice `auto` made
                stats[name] = {k: done[k] for k in ("count", "tokens", "seconds", "tokens_per_s")}
                log.info("%d %s, %d tokens in %.1fs (%.0f tokens/s)", len(rows), name, done["tokens"],
                         done["seconds"], done["tokens_per_s"])
            stats.update(backend=runner.backend, workers=runner.workers)
        write_json(out / "stats.json", stats)
    return stats
