"""Hugging Face seq2seq query generators (mT5, T5, ...) prompted with the paper's input: the generator,
its decoding, and building one (a tiny T5 from a config for tests, or any HF checkpoint). Training:
``xaug.seq2seq_training``."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch

from .decoding import SamplingSettings, SourceBias, rare_pieces
from .device import bf16_autocast
from .models import from_pretrained
from .params import check_int
from .prompts import make_prompt
from .tokenization import train_unigram_tokenizer


def generation_kwargs(s: SamplingSettings, n: int, sources: list[list[int]] | None = None,
                      vocab_size: int | None = None) -> dict:
    kwargs = dict(max_new_tokens=s.max_new_tokens, num_return_sequences=n, do_sample=s.do_sample)
    if s.do_sample:
        kwargs.update(top_k=s.top_k or None, top_p=None, temperature=None)
    else:
        kwargs.update(num_beams=1)
    if s.copy_bias and sources is not None:
        from transformers import LogitsProcessorList  # transformers: heavy, imported where a model is used

        kwargs["logits_processor"] = LogitsProcessorList([SourceBias(sources, vocab_size, n, s.copy_bias)])
    return kwargs


def split_outputs(tokenizer, sequences: torch.Tensor, n_passages: int, n: int) -> tuple[list[list[str]], int]:
    """Decode ``n`` sequences per passage; count generated tokens (excluding padding and start)."""
    special = set(tokenizer.all_special_ids)
    tokens = int(sum(1 for row in sequences.tolist() for t in row[1:] if t not in special))
    texts = [t.strip() for t in tokenizer.batch_decode(sequences, skip_special_tokens=True)]
    return [texts[i * n : (i + 1) * n] for i in range(n_passages)], tokens


class Seq2SeqGenerator:
    """A Hugging Face encoder-decoder (mT5, T5, ...) prompted with the paper's input."""

    def __init__(self, model, tokenizer, max_source_length: int = 512):
        self.model, self.tokenizer, self.max_source_length = model.eval(), tokenizer, max_source_length
        self.copy_vocabulary: set[int] | None = None

    def to(self, device) -> "Seq2SeqGenerator":
        self.model.to(device)
        return self

    def shared_encoder(self) -> None:
        """None: this generator encodes its prompts itself (no encoder states shared across languages)."""
        return None

    def set_copy_vocabulary(self, texts: Sequence[str], max_df: float) -> None:
        ids = self.tokenizer(list(texts), add_special_tokens=False, verbose=False)["input_ids"]
        self.copy_vocabulary = rare_pieces(ids, max_df)

    def source_lengths(self, passages: Sequence[dict], lang: str) -> list[int]:
        """Source tokens of each passage's input: the prompt in ``lang`` with its title and text, as ``generate``
        encodes it (so ``xqg.max_tokens`` budgets what the model reads)."""
        enc = self.tokenizer(self.prompts(passages, lang), truncation=True, max_length=self.max_source_length)
        return [len(x) for x in enc["input_ids"]]

    @staticmethod
    def prompts(passages: Sequence[dict], lang: str) -> list[str]:
        return [make_prompt(lang, p.get("title", ""), p["text"]) for p in passages]

    @torch.inference_mode()
    def generate(self, passages: Sequence[dict], lang: str, settings: SamplingSettings,
                 n: int | None = None) -> tuple[list[list[str]], int]:
        n = n or settings.n_queries
        batch = self.tokenizer(self.prompts(passages, lang), truncation=True, max_length=self.max_source_length,
                               padding=True, return_tensors="pt")
        allowed = self.copy_vocabulary
        special = set(self.tokenizer.all_special_ids)  # a property transformers computes on every use
        sources = [[t for t in row if t not in special and (allowed is None or t in allowed)]
                   for row in batch["input_ids"].tolist()]
        device = self.model.device
        with bf16_autocast(device, device.type == "cuda"):  # bf16 on the GPU
            out = self.model.generate(**batch.to(device),
                                      **generation_kwargs(settings, n, sources, self.model.config.vocab_size))
        return split_outputs(self.tokenizer, out, len(passages), n)

    def save(self, folder) -> None:
        """The model and its tokenizer, in ``folder`` (a Hugging Face folder)."""
        self.model.save_pretrained(folder)
        self.tokenizer.save_pretrained(folder)

    @classmethod
    def load(cls, folder, max_source_length: int) -> "Seq2SeqGenerator":
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer  # transformers: heavy, loaded on use

        folder = Path(folder)
        return cls(AutoModelForSeq2SeqLM.from_pretrained(folder), AutoTokenizer.from_pretrained(folder),
                   max_source_length)


def tiny_t5(config: dict, texts):
    """A small T5 with a unigram tokenizer trained on ``texts`` (from scratch)."""
    from transformers import T5Config, T5ForConditionalGeneration  # transformers: heavy, loaded on use

    cfg = dict(config)
    for key in ("vocab_size", "d_model", "d_ff", "num_layers", "num_heads", "d_kv"):
        check_int(cfg.get(key), f"xqg.tiny.{key}")
    tokenizer = train_unigram_tokenizer(texts, cfg.pop("vocab_size"))
    t5 = T5Config(vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.sep_token_id,
                  decoder_start_token_id=tokenizer.pad_token_id, **cfg)
    return T5ForConditionalGeneration(t5), tokenizer


def load_seq2seq(spec: str, tiny_config: dict | None = None, texts=()) -> tuple:
    """(model, tokenizer) of ``xqg.model``: ``tiny`` (a fresh tiny T5 over ``texts``) or a HF id / path."""
    if spec == "tiny":
        return tiny_t5(tiny_config or {}, texts)
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer  # transformers: heavy, loaded on use

    tokenizer = from_pretrained(AutoTokenizer, spec, "xqg.model")
    model = from_pretrained(AutoModelForSeq2SeqLM, spec, "xqg.model")
    return model, tokenizer
