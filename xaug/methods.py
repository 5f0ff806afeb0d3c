"""The augmentation methods: what each contributes, and loading its per-language items, costs and settings."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import ConfigError
from .formats import items_path, items_writer, read_item_sources, read_items, read_sources, read_text_stats, read_texts
from .fusion import WEIGHT_MODES, FusionSettings, LanguageItems
from .leave_out import OwnItems, own_items
from .params import check_int, from_params


@dataclass(frozen=True)
class MethodSpec:
    name: str
    items: str       # what one item is
    embed_as: str    # the xDR side that embeds the items: query | passage
    text_stage: str  # the stage that writes data/generated/<name>/<lang>.jsonl (xaug.formats.write_texts)
    stage: str       # the stage that embeds them into data/items/<name>/<lang>
    setting: str = "global"  # the corpus setting it is reported (and tuned) in
    leave_out: bool = False  # items are the evaluated questions: scored leave-question-out (xaug.leave_out)


METHODS = {m.name: m for m in (
    MethodSpec("xqg", "a query generated in the target language", "query", "generate_queries", "encode_items@xqg"),
    MethodSpec("translate", "the passage machine-translated into the target language", "passage",
               "translate_passages", "encode_items@translate"),
    MethodSpec("parallel_contexts", "MLQA's target-language context of the passage (comparable text, not a "
               "translation; only passages with such a context are covered)", "passage", "parallel_contexts",
               "encode_items@parallel_contexts", "parallel"),  # global: its coverage leaks the answer
    MethodSpec("real_questions", "a real question about the passage in the target language, never the evaluated "
               "one (leave-question-out; what a perfect query generator could write)", "query", "real_questions",
               "encode_items@real_questions", "parallel", leave_out=True),  # covers the passages with L questions
)}
# every method is compared with the same content-free controls (xaug.scaling): its items shuffled across
# passages (coverage kept) and the centroid of its items (a constant shift)


def check_methods(methods) -> list[str]:
    """``methods`` of params.yaml: a list of distinct known methods."""
    if not isinstance(methods, list) or any(m not in METHODS for m in methods) or len(set(methods)) != len(methods):
        raise ConfigError(f"methods: expected a list of distinct methods among {list(METHODS)}, got {methods!r}")
    return methods


NORMS = {True: "renormalized", False: "raw"}  # the key of a renormalize state in metrics/tuning.json


def tuned_choice(tuning: dict | None, method: str, weight: str, renormalize: bool, k: int, param: str) -> dict:
    """The tune stage's choice (alpha, n_queries_used) for ``method`` under ``weight`` and ``renormalize`` when k
    languages augment (k < 1: the choice of k = 1; k beyond the tuned range: the largest tuned k)."""
    try:
        by_k = tuning["choices"][method][weight][NORMS[renormalize]]["by_k"]
    except (TypeError, KeyError):
        raise ConfigError(f"{param}: auto needs the tune stage's choice for {method} ({weight} weight, "
                          f"{NORMS[renormalize]}) in metrics/tuning.json (run `dvc repro tune`)") from None
    ks = sorted(int(x) for x in by_k)
    return by_k[str(min(max(k, ks[0]), ks[-1]))]


def normalisation_strength(tuning: dict | None, setting: str) -> float | None:
    """The normalisation baseline's strength beta (``xaug.hubness``) the tune stage chose for ``setting``
    (None without a tune stage report: no normalisation baseline)."""
    if tuning is None:
        return None
    try:
        return float(tuning["normalisation"][setting]["beta"])
    except (TypeError, KeyError):
        raise ConfigError(f"metrics/tuning.json: no normalisation baseline for the {setting} corpus "
                          "(run `dvc repro tune`)") from None


@dataclass
class AugmentSettings:
    """The ``augment.<method>`` params group: ``alpha`` a number in [0, 1] or auto (the tune stage's choice),
    ``weight`` a weight mode (``xaug.fusion.WEIGHT_MODES``), ``renormalize`` the fused vectors to unit length."""

    alpha: float | str = "auto"
    weight: str = "fixed"
    renormalize: bool = False

    def __post_init__(self):
        if self.alpha != "auto" and (isinstance(self.alpha, bool) or not isinstance(self.alpha, (int, float))
                                     or not 0.0 <= self.alpha <= 1.0):
            raise ConfigError(f"alpha: expected a number in [0, 1] or auto, got {self.alpha!r}")
        if self.weight not in WEIGHT_MODES:
            raise ConfigError(f"weight: expected one of {list(WEIGHT_MODES)}, got {self.weight!r}")
        self.renormalize = bool(self.renormalize)


@dataclass
class XqgAugmentSettings(AugmentSettings):
    """``augment.xqg``: also ``n_queries_used``, the first n generated queries per passage and language
    (at most ``xqg.n_queries``; auto: the tune stage's choice; absent: all)."""

    n_queries_used: int | str | None = None

    def __post_init__(self):
        super().__post_init__()
        if self.n_queries_used not in (None, "auto"):
            check_int(self.n_queries_used, "n_queries_used")


def augment_settings(params: dict, method: str, only=None) -> AugmentSettings:
    """``augment.<method>`` of params.yaml (``only``: read just those fields, as ``from_params``)."""
    group = params.get("augment", {}).get(method)
    if not isinstance(group, dict):
        raise ConfigError(f"augment.{method}: missing from params.yaml (alpha, weight, renormalize"
                          f"{', n_queries_used' if method == 'xqg' else ''})")
    return from_params(XqgAugmentSettings if method == "xqg" else AugmentSettings, group, f"augment.{method}",
                       only=only)


def fusion_settings(params: dict, method: str, tuning: dict | None = None, weight: str | None = None,
                    k: int | None = None, renormalize: bool | None = None) -> FusionSettings:
    """The fusion of ``method`` from augment.<method> of params.yaml when ``k`` languages augment (default
    n_languages); `auto` alpha / n_queries_used come from the tune stage's ``tuning``, its choice for that k.

    ``weight`` (default augment.<method>.weight) and ``renormalize`` (default augment.<method>.renormalize)
    select another fusion. A number in augment.<method> holds at every k and in both renormalize states; for
    another weight mode than the configured one, alpha and n_queries_used are always the tuned ones."""
    group = f"augment.{method}"
    settings = augment_settings(params, method)
    weight = weight or settings.weight
    renormalize = settings.renormalize if renormalize is None else bool(renormalize)
    k = params.get("n_languages", 1) if k is None else k
    configured = weight == settings.weight
    alpha, n_used = settings.alpha, getattr(settings, "n_queries_used", None)
    if not configured or alpha == "auto":
        alpha = tuned_choice(tuning, method, weight, renormalize, k, f"{group}.alpha")["alpha"]
    if method == "xqg" and (not configured or n_used == "auto"):
        n_used = tuned_choice(tuning, method, weight, renormalize, k, f"{group}.n_queries_used")["n_queries_used"]
    generated = params.get(method, {}).get("n_queries") if method == "xqg" else None
    if isinstance(n_used, int) and isinstance(generated, int) and n_used > generated:
        raise ConfigError(f"{group}.n_queries_used: {n_used} > {method}.n_queries ({generated}) generated per passage")
    return FusionSettings(alpha=alpha, weight=weight, renormalize=renormalize, n_items_used=n_used, param=group)


@dataclass
class MethodItems:
    """A method's per-language items (in ``languages`` order) and generation costs."""

    name: str
    languages: list[str]
    raw: list[tuple[np.ndarray, np.ndarray]]  # (items (n, m, dim), counts (n,)) per language
    seconds: list[float]
    tokens: list[int]
    sources: list[np.ndarray] | None = field(default=None)  # leave-out methods: the question id of each item

    def reduced(self, n_used: int | None) -> list[LanguageItems]:
        return [LanguageItems.from_items(items, counts, n_used, f"augment.{self.name}") for items, counts in self.raw]

    def own(self, owners: np.ndarray) -> list[OwnItems] | None:
        """Per language, where each owner's (question id's) own item sits; None for a method without leave-out."""
        if self.sources is None:
            return None
        return [own_items(owners, items, sources) for (items, _), sources in zip(self.raw, self.sources)]


def load_method(folder, method: str, languages: list[str], items=None) -> MethodItems:
    """``items/<lang>`` (items, counts; ``items`` defaults to ``folder``) and ``folder/<lang>.stats.json``
    (cost) for each of ``languages``."""
    folder = Path(folder)
    items = folder if items is None else Path(items)
    raw, seconds, tokens, sources = [], [], [], []
    for lang in languages:
        path = items_path(items, lang)
        if not path.is_dir():
            raise ConfigError(f"{path}: {method} embeddings for {lang!r} not found (run {METHODS[method].stage})")
        raw.append(read_items(path))
        if METHODS[method].leave_out:
            sources.append(read_item_sources(path))
            if sources[-1] is None:
                raise ConfigError(f"{path}: no question ids (sources) for the leave-out of {method}; "
                                  f"re-run {METHODS[method].stage}")
        stats = read_text_stats(folder, lang)
        if not {"seconds", "generated_tokens"} <= set(stats):
            raise ConfigError(f"{folder / (lang + '.stats.json')}: expected 'seconds' and 'generated_tokens'")
        seconds.append(float(stats["seconds"]))
        tokens.append(int(stats["generated_tokens"]))
    return MethodItems(method, list(languages), raw, seconds, tokens, sources if METHODS[method].leave_out else None)


def embed_generated(encode, method: str, folder, lang: str, corpus_ids: list[str], out, dim: int) -> dict:
    """Embed ``folder/<lang>.jsonl``'s texts, aligned to ``corpus_ids``, into the items folder ``out``
    (``dim`` wide), written as they come; every corpus passage must have an entry. ``encode(texts, kind,
    put, desc)`` embeds texts on the side ``kind`` (``METHODS[method].embed_as``) and hands each chunk's
    vectors to ``put(index, vectors)`` (``xaug.encoding.encode_with`` on an open pool)."""
    texts_of = read_texts(folder, lang)
    missing = [pid for pid in corpus_ids if pid not in texts_of]
    if missing:
        raise ConfigError(f"{Path(folder) / (lang + '.jsonl')}: no entry for {len(missing)} corpus passages "
                          f"(first {missing[0]}); re-run {METHODS[method].text_stage}")
    texts = [t for pid in corpus_ids for t in texts_of[pid]]
    sources = None
    if METHODS[method].leave_out:
        sources_of = read_sources(folder, lang)
        sources = [s for pid in corpus_ids for s in sources_of.get(pid, [None] * len(texts_of[pid]))]
        if None in sources:
            raise ConfigError(f"{Path(folder) / (lang + '.jsonl')}: texts without question ids (sources); "
                              f"re-run {METHODS[method].text_stage}")
    with items_writer(out, [len(texts_of[pid]) for pid in corpus_ids], dim, sources) as writer:
        done = encode(texts, METHODS[method].embed_as, writer.put, f"encode {method} {lang}")
    return {"texts": len(texts), "passages": len(corpus_ids), "tokens": done["tokens"]}
