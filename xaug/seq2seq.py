"""Seq2seq query generators other than `warm`: a tiny T5 from a config (tests) or any HF checkpoint (mT5)."""
from __future__ import annotations

import logging
import math
import random

import torch

from .errors import ConfigError
from .generation import Seq2SeqGenerator, make_prompt
from .models import from_pretrained
from .training import cycle_batches, optimise, summarise_losses

log = logging.getLogger(__name__)


def tiny_t5(config: dict, texts):
    """A small T5 with a unigram tokenizer trained on ``texts`` (from scratch)."""
    from transformers import T5Config, T5ForConditionalGeneration

    from .tokenization import train_unigram_tokenizer

    cfg = dict(config)
    for key in ("vocab_size", "d_model", "d_ff", "num_layers", "num_heads", "d_kv"):
        if isinstance(cfg.get(key), bool) or not isinstance(cfg.get(key), int) or cfg[key] <= 0:
            raise ConfigError(f"xqg.tiny.{key}: expected a positive integer, got {cfg.get(key)!r}")
    tokenizer = train_unigram_tokenizer(texts, cfg.pop("vocab_size"))
    t5 = T5Config(vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.sep_token_id,
                  decoder_start_token_id=tokenizer.pad_token_id, **cfg)
    return T5ForConditionalGeneration(t5), tokenizer


def load_seq2seq(spec: str, tiny_config: dict | None = None, texts=()) -> tuple:
    if spec == "tiny":
        return tiny_t5(tiny_config or {}, texts)
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    tokenizer = from_pretrained(AutoTokenizer, spec, "xqg.model")
    model = from_pretrained(AutoModelForSeq2SeqLM, spec, "xqg.model")
    return model, tokenizer


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
