"""Contrastive fine-tuning of the bi-encoder: InfoNCE over in-batch negatives."""
from __future__ import annotations

import logging
import math
import random
import time
from dataclasses import dataclass

import torch
from tqdm import tqdm

from .device import bf16_autocast
from .encoding import DenseEncoder
from .errors import ConfigError
from .params import check_int

log = logging.getLogger(__name__)


@dataclass
class TrainSettings:
    epochs: int = 1
    batch_size: int = 32
    lr: float = 2e-5
    temperature: float = 0.05
    warmup: float = 0.1
    max_steps: int = 0
    freeze_embeddings: bool = True
    train_layers: int = 0
    bf16: bool = False
    seed: int = 0

    def __post_init__(self):
        check_int(self.epochs, "xdr.epochs", minimum=0, note="0 = zero-shot")
        check_int(self.max_steps, "xdr.max_steps", minimum=0, note="0 = no cap")
        check_int(self.train_layers, "xdr.train_layers", minimum=0, note="0 = all layers")
        check_int(self.batch_size, "xdr.batch_size", minimum=2, note="in-batch negatives")
        for name in ("lr", "temperature", "warmup"):
            value = getattr(self, name)
            try:
                value = float(value)  # YAML 1.1 reads 3e-5 (no dot) as a string
            except (TypeError, ValueError):
                raise ConfigError(f"xdr.{name}: expected a number, got {value!r}") from None
            if value < 0 or (value == 0 and name != "warmup"):
                raise ConfigError(f"xdr.{name}: expected a positive number, got {value!r}")
            setattr(self, name, value)


def distinct_passage_batches(pairs: list[dict], batch_size: int, rng: random.Random) -> list[list[dict]]:
    """Shuffle and group pairs so no batch repeats a passage (a repeat would be a false negative)."""
    pending = pairs[:]
    rng.shuffle(pending)
    batches: list[list[dict]] = []
    open_batches: list[tuple[list[dict], set]] = []
    for pair in pending:
        for batch, seen in open_batches:
            if pair["passage_id"] not in seen:
                batch.append(pair)
                seen.add(pair["passage_id"])
                if len(batch) == batch_size:
                    batches.append(batch)
                    open_batches.remove((batch, seen))
                break
        else:
            open_batches.append(([pair], {pair["passage_id"]}))
    batches.extend(b for b, _ in open_batches if len(b) >= 2)
    rng.shuffle(batches)
    return batches


def adamw(params, lr: float) -> torch.optim.AdamW:
    """AdamW (weight decay 0.01), fused: one kernel over all parameters on the CPU and on CUDA (torch's CPU
    default updates one parameter at a time, a tenth of a warm generator's training step on 2 cores)."""
    params = list(params)
    fused = all(p.device.type in ("cpu", "cuda") for p in params)
    return torch.optim.AdamW(params, lr=lr, weight_decay=0.01, fused=fused or None)


def optimise(params, batches, loss_fn, lr: float, total: int, warmup: int, desc: str, progress: bool = True,
             floor: float = 0.0, stop=None) -> tuple[list[float], float]:
    """AdamW with linear warm-up and decay (to ``floor`` x lr), gradient clipping and a progress bar.

    ``batches`` is an iterator (it may cycle over epochs); ``loss_fn(batch)`` returns a scalar loss;
    ``stop(step, losses)``, called after each step, may end training early by returning True.
    Returns the per-step losses and the seconds spent.
    """
    params = list(params)
    optimizer = adamw(params, lr)
    warmup = max(1, warmup)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warmup, max(floor, (total - s) / max(1, total - warmup))))
    losses, started = [], time.perf_counter()
    with tqdm(total=total, desc=desc, unit="step", disable=not progress) as bar:
        for _, batch in zip(range(total), batches):
            loss = loss_fn(batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0, foreach=True)
            optimizer.step()
            scheduler.step()
            losses.append(loss.item())
            bar.update(1)
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
            if stop is not None and stop(len(losses), losses):
                break
    return losses, time.perf_counter() - started


def summarise_losses(losses: list[float], window: int = 10) -> tuple[float, float]:
    """Mean loss over the first and the last ``window`` steps."""
    if not losses:
        return float("nan"), float("nan")
    return sum(losses[:window]) / len(losses[:window]), sum(losses[-window:]) / len(losses[-window:])


def cycle_batches(n_items: int, batch_size: int, rng: random.Random):
    """Endless shuffled epochs of index batches."""
    order = list(range(n_items))
    while True:
        rng.shuffle(order)
        for b in range(0, n_items, batch_size):
            yield order[b : b + batch_size]


def freeze_all_but_top(model, n_layers: int) -> None:
    """Train only the top ``n_layers`` transformer layers (cheaper backward pass, less drift)."""
    layers = getattr(getattr(model, "encoder", None), "layer", None)
    if layers is None:
        raise ConfigError(f"xdr.train_layers: {type(model).__name__} has no encoder.layer stack; use 0 (train all)")
    if n_layers > len(layers):
        raise ConfigError(f"xdr.train_layers: {n_layers} > the model's {len(layers)} layers")
    for p in model.parameters():
        p.requires_grad_(False)
    for layer in list(layers)[-n_layers:]:
        for p in layer.parameters():
            p.requires_grad_(True)


def train_infonce(encoder: DenseEncoder, pairs: list[dict], passages: dict[str, str], settings: TrainSettings,
                  progress: bool = True) -> dict:
    """Fine-tune ``encoder`` in place; returns a log (steps, seconds, first/last loss)."""
    if settings.epochs == 0:
        return {"steps": 0, "seconds": 0.0, "loss_first": None, "loss_last": None}
    if len(pairs) < 2:
        raise ConfigError("train_pairs.jsonl: fewer than 2 training pairs; nothing to fine-tune on")
    rng = random.Random(settings.seed)
    torch.manual_seed(settings.seed)
    model = encoder.model
    model.train()
    if settings.freeze_embeddings:
        model.get_input_embeddings().weight.requires_grad_(False)
    if settings.train_layers:
        freeze_all_but_top(model, settings.train_layers)
    params = [p for p in model.parameters() if p.requires_grad]
    batches = [b for epoch in (distinct_passage_batches(pairs, settings.batch_size, rng) for _ in range(settings.epochs))
               for b in epoch]
    total = min(len(batches), settings.max_steps) if settings.max_steps else len(batches)

    def loss_fn(batch):
        with bf16_autocast(encoder.device, settings.bf16):
            q = encoder.embed([p["query"] for p in batch], "query")
            d = encoder.embed([passages[p["passage_id"]] for p in batch], "passage")
        logits = q @ d.T / settings.temperature
        return torch.nn.functional.cross_entropy(logits, torch.arange(len(batch), device=logits.device))

    losses, seconds = optimise(params, iter(batches), loss_fn, settings.lr, total,
                               warmup=max(1, int(settings.warmup * total)), desc="train xdr", progress=progress)
    model.eval()
    first, last = summarise_losses(losses)
    log.info("trained %d steps in %.0fs: loss %.3f -> %.3f", len(losses), seconds, first, last)
    if not math.isfinite(last):
        raise RuntimeError("xdr training diverged (loss is not finite); lower xdr.lr")
    return {"steps": len(losses), "seconds": round(seconds, 1), "loss_first": round(first, 4), "loss_last": round(last, 4)}
