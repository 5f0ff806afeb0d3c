"""Fine-tuning a seq2seq query generator (``xaug.seq2seq``) on the paper's input -> question pairs."""
from __future__ import annotations

import math
import random

import torch

from .prompts import make_prompt
from .seq2seq import Seq2SeqGenerator
from .training import cycle_batches, optimise, summarise_losses


def train_seq2seq(generator: Seq2SeqGenerator, examples: list[dict], epochs: int, batch_size: int, lr: float,
                  max_target_length: int = 48, seed: int = 0, max_steps: int = 0, progress: bool = True) -> dict:
    """Fine-tune on the paper's input: prompt(language of the question, title, context) -> question."""
    model, tok = generator.model, generator.tokenizer
    torch.manual_seed(seed)
    prompts = [make_prompt(e["lang"], e.get("title", ""), e["source"]) for e in examples]
    total = epochs * math.ceil(len(examples) / batch_size)
    total = min(total, max_steps) if max_steps else total

    def loss_fn(idx):
        batch = tok([prompts[i] for i in idx], truncation=True, max_length=generator.max_source_length,
                    padding=True, return_tensors="pt")
        labels = tok([examples[i]["target"] for i in idx], truncation=True, max_length=max_target_length,
                     padding=True, return_tensors="pt")["input_ids"]
        labels[labels == tok.pad_token_id] = -100
        return model(**batch.to(model.device), labels=labels.to(model.device)).loss

    model.train()
    losses, seconds = optimise([p for p in model.parameters() if p.requires_grad],
                               cycle_batches(len(examples), batch_size, random.Random(seed)), loss_fn, float(lr), total,
                               warmup=total // 20, desc="train generator", progress=progress, floor=0.05)
    model.eval()
    first, last = summarise_losses(losses, 20)
    return {"steps": len(losses), "seconds": round(seconds, 1), "loss_first": round(first, 4), "loss_last": round(last, 4)}
