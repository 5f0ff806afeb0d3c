"""Sentence translators of the ``translate`` method and loading the one ``train_translator`` recorded:
a Hugging Face translation model (NLLB-200 or M2M100, ``HFTranslator``) or the warm BERT2BERT generator
of ``xaug.warm`` used greedily (``WarmTranslator``). Both offer ``translate(sentences, lang, settings)
-> (translations, generated tokens)``, ``lengths(sentences)`` and ``to(device)``; ``settings`` is a
``xaug.decoding.TranslateSettings``. Training: ``xaug.translator_training``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch

from .decoding import TranslateSettings
from .device import bf16_autocast
from .errors import ConfigError
from .formats import TRANSLATOR_FILE, read_kind
from .languages import DEFAULT_CORPUS_LANGUAGE, LANGUAGES
from .models import from_pretrained
from .warm import WarmGenerator, load_warm

# Translator language codes come from the registry (xaug.languages): FLORES-200 codes for NLLB,
# M2M100's own (mostly ISO 639-1) codes, None where M2M100 lacks the language.
FAMILIES = {"nllb": "nllb", "m2m100": "m2m100"}  # model family -> Language field holding its code


def language_code(family: str, lang: str) -> str:
    """The code a translation model family (``nllb`` or ``m2m100``) uses for ``lang`` (``xaug.languages``)."""
    field = FAMILIES.get(family)
    if field is None:
        raise ConfigError(f"translate.model: unsupported model family {family!r} (expected NLLB or M2M100)")
    row = LANGUAGES.get(lang) if isinstance(lang, str) else None
    code = getattr(row, field) if row is not None else None
    if code is None:
        known = sorted(c for c, r in LANGUAGES.items() if getattr(r, field) is not None)
        raise ConfigError(f"languages: the {family} translator has no code for {lang!r} (known: {known})")
    return code


class HFTranslator:
    """NLLB-200 / M2M100 from a Hugging Face id or local path, corpus-language source (``source_lang``),
    forced target language."""

    def __init__(self, model, tokenizer, max_source_length: int = 128, source_lang: str = DEFAULT_CORPUS_LANGUAGE):
        self.model, self.tokenizer, self.max_source_length = model.eval(), tokenizer, max_source_length
        self.source_lang = source_lang
        model_type = model.config.model_type
        self.family = "nllb" if "nllb" in type(tokenizer).__name__.lower() else model_type
        if self.family not in ("nllb", "m2m_100", "m2m100"):
            raise ConfigError(f"translate.model: {model_type!r} is not an NLLB or M2M100 translation model")
        self.family = "m2m100" if self.family.startswith("m2m") else "nllb"
        self.tokenizer.src_lang = language_code(self.family, source_lang)

    def to(self, device) -> "HFTranslator":
        self.model.to(device)
        return self

    def shared_encoder(self) -> None:
        """None: this translator encodes its sentences itself (no encoder states shared across languages)."""
        return None

    def target_id(self, lang: str) -> int:
        code = language_code(self.family, lang)
        tid = self.tokenizer.convert_tokens_to_ids(code if self.family == "nllb" else f"__{code}__")
        if tid is None or tid == self.tokenizer.unk_token_id:
            raise ConfigError(f"languages: the translator's vocabulary has no language token for {lang!r} ({code})")
        return tid

    @torch.inference_mode()
    def translate(self, sentences: Sequence[str], lang: str, settings: TranslateSettings) -> tuple[list[str], int]:
        target = self.target_id(lang)
        batch = self.tokenizer(list(sentences), truncation=True, max_length=self.max_source_length, padding=True,
                               return_tensors="pt")
        device = self.model.device
        with bf16_autocast(device, device.type == "cuda"):  # bf16 on the GPU
            # no bigram blocking, whatever the checkpoint's generation config says: a translation repeats some
            out = self.model.generate(**batch.to(device), forced_bos_token_id=target, do_sample=False, num_beams=1,
                                      no_repeat_ngram_size=0,
                                      max_new_tokens=settings.generation_length(batch["input_ids"].shape[1]))
        # the forced language token too: an M2M100Tokenizer built and saved with transformers 5 no longer counts
        # its language tokens as special (the hub's, with them in special_tokens_map.json, does)
        special = set(self.tokenizer.all_special_ids) | {target}
        rows = [[t for t in row if t not in special] for row in out.tolist()]
        tokens = int(sum(len(row) for row in rows))
        return [t.strip() for t in self.tokenizer.batch_decode(rows, skip_special_tokens=True)], tokens

    def lengths(self, sentences: Sequence[str]) -> list[int]:
        return [len(x) for x in self.tokenizer(list(sentences), truncation=True,
                                                 max_length=self.max_source_length)["input_ids"]]


class WarmTranslator:
    """The warm BERT2BERT generator used as a sentence translator (greedy, one output per sentence)."""

    def __init__(self, generator: WarmGenerator):
        self.generator = generator

    def to(self, device) -> "WarmTranslator":
        self.generator.to(device)
        return self

    def shared_encoder(self) -> WarmGenerator:
        """The warm generator, whose frozen encoder's sentence states are computed once for every language."""
        return self.generator

    def translate(self, sentences: Sequence[str], lang: str, settings: TranslateSettings,
                  states: Sequence[torch.Tensor] | None = None) -> tuple[list[str], int]:
        items = [{"text": s} if states is None else {"text": s, "states": st} for s, st in
                 zip(sentences, states if states is not None else sentences)]
        out, tokens = self.generator.generate(items, lang, settings.greedy(), n=1)
        return [o[0] for o in out], tokens

    def lengths(self, sentences: Sequence[str]) -> list[int]:
        return self.generator.source_lengths([{"text": s} for s in sentences])


def load_hf_translator(spec: str, max_source_length: int = 128,
                       source_lang: str = DEFAULT_CORPUS_LANGUAGE) -> HFTranslator:
    """``translate.model`` as a Hugging Face id or local path."""
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer  # transformers: heavy, loaded on use

    return HFTranslator(from_pretrained(AutoModelForSeq2SeqLM, spec, "translate.model"),
                        from_pretrained(AutoTokenizer, spec, "translate.model"), max_source_length, source_lang)


def load_translator(path) -> HFTranslator | WarmTranslator:
    """The translator a train_translator stage recorded in ``path``."""
    path = Path(path)
    meta = read_kind(path, TRANSLATOR_FILE, "translator", "train_translator")
    if meta["kind"] == "warm":
        return WarmTranslator(load_warm(path, meta))
    return load_hf_translator(meta["model"], meta["max_source_length"],
                              meta.get("source_lang", DEFAULT_CORPUS_LANGUAGE))
