"""Training the warm BERT2BERT generators of ``xaug.warm`` (the model lives there, its training here)."""
from __future__ import annotations

import logging
import math
import random
from itertools import islice
from pathlib import Path
from typing import Sequence

import torch

from .device import use_bf16
from .models import load_backbone
from .training import cycle_batches, optimise, summarise_losses
from .warm import WarmGenerator, WarmSettings, build_decoder, pruned_vocabulary

log = logging.getLogger(__name__)


def training_schedule(n_examples: int, settings: WarmSettings) -> list[list[int]]:
    """The example batches of a training run, in order: shuffled epochs, capped at ``max_steps``.
    Known up front, so only the sources that training will read need encoding."""
    total = settings.epochs * math.ceil(n_examples / settings.batch_size)
    total = min(total, settings.max_steps) if settings.max_steps else total
    return list(islice(cycle_batches(n_examples, settings.batch_size, random.Random(settings.seed)), total))


def train_warm(gen: WarmGenerator, examples: list[dict], states: dict[str, torch.Tensor],
               sources: dict[str, list[int]], progress: bool = True) -> dict:
    """Teacher-forced training of the decoder (and pointer head) on (passage id, target, language) examples
    (``states`` and ``sources`` must cover the passages of ``training_schedule``'s batches)."""
    s = gen.settings
    torch.manual_seed(s.seed)
    targets = gen.encode_targets([e["target"] for e in examples], [e["lang"] for e in examples])
    batches = training_schedule(len(examples), s)
    total = len(batches)
    gen.train(True)
    losses, seconds = optimise(
        gen.trainable(), iter(batches),
        lambda idx: gen.loss([states[examples[i]["passage_id"]] for i in idx], [targets[i] for i in idx],
                             [sources[examples[i]["passage_id"]] for i in idx]),
        s.lr, total, warmup=total // 20, desc="train generator", progress=progress, floor=0.05)
    gen.train(False)
    first, last = summarise_losses(losses, 20)
    log.info("generator: %d steps in %.0fs, loss %.3f -> %.3f", len(losses), seconds, first, last)
    return {"steps": len(losses), "seconds": round(seconds, 1), "loss_first": round(first, 4), "loss_last": round(last, 4)}


def fit_warm(examples: list[dict], xdr: dict, settings: WarmSettings, vocabulary_texts: Sequence[str], out: Path,
             device: torch.device | str = "cpu"):
    """Build a warm generator from the xDR's starting encoder, train it on ``examples``
    (``passage_id``, ``source``, ``target``, ``lang``) on ``device`` and save it to ``out``; returns (history, meta).
    The output vocabulary holds the pieces of the targets and of ``vocabulary_texts``."""
    torch.manual_seed(settings.seed)  # the fresh weights (cross-attention, pointer head, a tiny encoder) too
    langs = sorted({e["lang"] for e in examples})
    encoder, tokenizer, _ = load_backbone(xdr["model"], tiny_config=xdr.get("tiny"), texts=[e["source"] for e in examples])
    kept = pruned_vocabulary(tokenizer, [e["target"] for e in examples] + list(vocabulary_texts))
    gen = WarmGenerator(encoder, tokenizer,
                        build_decoder(encoder, kept, langs, settings.decoder_layers, settings.cross_from_self,
                                      f"{settings.group}.decoder_layers"), kept,
                        langs, xdr.get("passage_prefix", ""), settings).to(device)
    sources = {e["passage_id"]: e["source"] for e in examples}
    schedule = training_schedule(len(examples), settings)
    ids = sorted({examples[i]["passage_id"] for batch in schedule for i in batch})
    log.info("encoding the %d of %d training sources that %d steps read, once (frozen encoder)", len(ids),
             len(sources), len(schedule))
    states = dict(zip(ids, gen.encode_passages([sources[i] for i in ids])))
    history = train_warm(gen, examples, states, dict(zip(ids, gen.copy_sources([sources[i] for i in ids]))))
    history["bf16"] = use_bf16(settings.bf16, gen.device, f"{settings.group}.bf16")  # what `auto` chose here
    out = Path(out)
    gen.save(out)
    if xdr["model"] == "tiny":  # a from-scratch encoder must travel with the decoder
        encoder.save_pretrained(out / "encoder")
        tokenizer.save_pretrained(out / "encoder")
    # a from-scratch encoder is saved inside the folder: recorded relative to it (the folder may move)
    meta = {"kind": "warm", "encoder": xdr["model"] if xdr["model"] != "tiny" else "./encoder",
            "vocabulary": len(kept), "decoder_parameters": sum(p.numel() for p in gen.decoder.parameters())}
    return history, meta
