"""The augmentation methods: what each contributes, and loading its per-language items, costs and settings."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import ConfigError
from .fusion import WEIGHT_MODES, FusionSettings, LanguageItems
from .formats import read_items, read_text_stats, read_texts, write_items


@dataclass(frozen=True)
class MethodSpec:
    name: str
    items: str       # what one item is
    embed_as: str    # the xDR side that embeds the items: query | passage
    text_stage: str  # the stage that writes data/generated/<name>/<lang>.jsonl (xaug.formats.write_texts)
    stage: str       # the stage that embeds them into data/generated/<name>/<lang>.npz
    setting: str = "global"  # the corpus setting it is reported (and tuned) in


METHODS = {m.name: m for m in (
    MethodSpec("xqg", "a query generated in the target language", "query", "generate_queries", "encode_xqg"),
    MethodSpec("translate", "the passage machine-translated into the target language", "passage",
               "translate_passages", "encode_translate"),
    MethodSpec("parallel_contexts", "MLQA's target-language context of the passage (comparable text, not a "
               "translation; only passages with such a context are covered)", "passage", "parallel_contexts",
               "encode_parallel_contexts", "parallel"),  # global: its coverage leaks the answer
)}
# every method is compared with the same content-free controls (xaug.scaling): its items shuffled across
# passages (coverage kept) and the centroid of its items (a constant shift)


def check_methods(methods) -> list[str]:
    """``methods`` of params.yaml: a list of distinct known methods."""
    if not isinstance(methods, list) or any(m not in METHODS for m in methods) or len(set(methods)) != len(methods):
        raise ConfigError(f"methods: expected a list of distinct methods among {list(METHODS)}, got {methods!r}")
    return methods


def _tuned(tuning: dict | None, method: str, weight: str, key: str, param: str):
    try:
        return tuning["choices"][method][weight][key]
    except (TypeError, KeyError):
        raise ConfigError(f"{param}: auto needs the tune stage's choice for {method} ({weight} weight) in "
                          "metrics/tuning.json (run `dvc repro tune`)") from None


def fusion_settings(params: dict, method: str, tuning: dict | None = None, weight: str | None = None) -> FusionSettings:
    """augment.<method> of params.yaml; `auto` alpha / n_queries_used come from the tune stage's ``tuning``.

    ``weight`` (default augment.<method>.weight) selects the weight mode; for a mode other than the
    configured one, alpha and n_queries_used are always the tuned ones."""
    group = f"augment.{method}"
    cfg = params.get("augment", {}).get(method)
    if not isinstance(cfg, dict):
        raise ConfigError(f"{group}: missing from params.yaml (alpha, weight, renormalize, n_queries_used)")
    unknown = set(cfg) - {"alpha", "weight", "renormalize", "n_queries_used"}
    if unknown:
        raise ConfigError(f"{group}: unknown key(s) {sorted(unknown)} (expected alpha, weight, renormalize, n_queries_used)")
    configured = cfg.get("weight", "fixed")
    if configured not in WEIGHT_MODES:
        raise ConfigError(f"{group}.weight: expected one of {list(WEIGHT_MODES)}, got {configured!r}")
    weight = weight or configured
    alpha, n_used = cfg.get("alpha", "auto"), cfg.get("n_queries_used")
    if weight != configured or alpha == "auto":
        alpha = _tuned(tuning, method, weight, "alpha", f"{group}.alpha")
    if method == "xqg" and (weight != configured or n_used == "auto"):
        n_used = _tuned(tuning, method, weight, "n_queries_used", f"{group}.n_queries_used")
    generated = params.get(method, {}).get("n_queries") if method == "xqg" else None
    if isinstance(n_used, int) and isinstance(generated, int) and n_used > generated:
        raise ConfigError(f"{group}.n_queries_used: {n_used} > {method}.n_queries ({generated}) generated per passage")
    return FusionSettings(alpha=alpha, weight=weight, renormalize=bool(cfg.get("renormalize")), n_items_used=n_used,
                          param=group)


@dataclass
class MethodItems:
    """A method's per-language items (in ``languages`` order) and generation costs."""

    name: str
    languages: list[str]
    raw: list[tuple[np.ndarray, np.ndarray]]  # (items (n, m, dim), counts (n,)) per language
    seconds: list[float]
    tokens: list[int]

    def reduced(self, n_used: int | None) -> list[LanguageItems]:
        return [LanguageItems.from_items(items, counts, n_used, f"augment.{self.name}") for items, counts in self.raw]


def load_method(folder, method: str, languages: list[str]) -> MethodItems:
    """``folder/<lang>.npz`` (items, counts) and ``<lang>.stats.json`` (cost) for each of ``languages``."""
    folder = Path(folder)
    raw, seconds, tokens = [], [], []
    for lang in languages:
        path = folder / f"{lang}.npz"
        if not path.is_file():
            raise ConfigError(f"{path}: {method} embeddings for {lang!r} not found (run {METHODS[method].stage}@{lang})")
        raw.append(read_items(path))
        stats = read_text_stats(folder, lang)
        if not {"seconds", "generated_tokens"} <= set(stats):
            raise ConfigError(f"{folder / (lang + '.stats.json')}: expected 'seconds' and 'generated_tokens'")
        seconds.append(float(stats["seconds"]))
        tokens.append(int(stats["generated_tokens"]))
    return MethodItems(method, list(languages), raw, seconds, tokens)


def embed_generated(encoder, method: str, folder, lang: str, corpus_ids: list[str], settings, out) -> dict:
    """Embed ``folder/<lang>.jsonl``'s texts with ``encoder`` (the side ``METHODS[method].embed_as``),
    aligned to ``corpus_ids``, into the items file ``out``; every corpus passage must have an entry."""
    texts_of = read_texts(folder, lang)
    missing = [pid for pid in corpus_ids if pid not in texts_of]
    if missing:
        raise ConfigError(f"{Path(folder) / (lang + '.jsonl')}: no entry for {len(missing)} corpus passages "
                          f"(first {missing[0]}); re-run {METHODS[method].text_stage}@{lang}")
    texts = [t for pid in corpus_ids for t in texts_of[pid]]
    vectors, tokens = encoder.encode(texts, METHODS[method].embed_as, batch_size=settings.batch_size,
                                     max_tokens=settings.max_tokens, bf16=settings.bf16, desc=f"encode {method} {lang}")
    write_items(out, vectors, [len(texts_of[pid]) for pid in corpus_ids])
    return {"texts": len(texts), "passages": len(corpus_ids), "tokens": tokens}
