"""The cross-lingual dense retriever (xDR) of the train_xdr stage: the ``xdr.model`` backbone wrapped as a
``DenseEncoder`` and fine-tuned with InfoNCE on a prepared folder's training pairs."""
from __future__ import annotations

import logging
import random
from pathlib import Path

import torch

from .data import corpus_language
from .encoding import DenseEncoder, EncoderSettings
from .io import read_jsonl
from .models import load_backbone
from .params import field_names, from_params
from .training import TrainSettings, train_infonce

log = logging.getLogger(__name__)
BACKBONE_KEYS = ("model", "tiny")  # the xdr keys load_backbone reads


def seed_everything(seed: int) -> None:
    """Seed torch and Python's ``random`` (the tiny backbone's initial weights depend on it)."""
    torch.manual_seed(seed)
    random.seed(seed)


def tokenizer_texts(data_dir, contexts: list[dict]) -> list[str]:
    """The training split's contexts (every language) and questions: what the tiny backbone's tokenizer
    is trained on."""
    return ([c["text"] for c in contexts if c["split"] == "train"] +
            [q["text"] for q in read_jsonl(Path(data_dir) / "queries.jsonl") if q["split"] == "train"])


def train_xdr(xdr: dict, data_dir, seed: int, device) -> tuple[DenseEncoder, dict, dict, int]:
    """Build the backbone of the ``xdr`` params group and fine-tune it on ``data_dir``'s training pairs
    (``xdr.epochs`` 0: zero-shot). Returns the encoder, the backbone's provenance, the training log and
    the number of training pairs."""
    seed_everything(seed)
    settings = from_params(EncoderSettings, xdr, others=field_names(TrainSettings) | set(BACKBONE_KEYS))
    train = from_params(TrainSettings, xdr, others=field_names(EncoderSettings) | set(BACKBONE_KEYS), seed=seed)
    pairs = read_jsonl(Path(data_dir) / "train_pairs.jsonl")
    contexts = read_jsonl(Path(data_dir) / "contexts.jsonl")
    pivot = corpus_language(data_dir)  # the corpus language prepare recorded
    passages = {c["id"]: c["text"] for c in contexts if c["lang"] == pivot}
    model, tokenizer, provenance = load_backbone(xdr["model"], tiny_config=xdr.get("tiny"),
                                                 texts=tokenizer_texts(data_dir, contexts))
    log.info("backbone %s: %.1fM parameters", xdr["model"], sum(t.numel() for t in model.parameters()) / 1e6)
    encoder = DenseEncoder(model, tokenizer, settings).to(device)
    log.info("fine-tuning on %d pairs: %s", len(pairs), "skipped (xdr.epochs = 0, zero-shot)" if not train.epochs else
             f"{train.epochs} epoch(s), batch {train.batch_size}")
    history = train_infonce(encoder, pairs, passages, train)
    return encoder, provenance, history, len(pairs)
