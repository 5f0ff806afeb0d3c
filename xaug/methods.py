"""Loading a method's generated embeddings and costs for the first k target languages."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import ConfigError
from .fusion import FusionSettings, check_n_languages
from .io import read_json
from .scaling import MethodInputs


METHODS = ("xqg", "translate", "translate_oracle")


def check_methods(methods) -> list[str]:
    """``methods`` of params.yaml: a list of distinct known methods."""
    if not isinstance(methods, list) or any(m not in METHODS for m in methods) or len(set(methods)) != len(methods):
        raise ConfigError(f"methods: expected a list of distinct methods among {list(METHODS)}, got {methods!r}")
    return methods


def fusion_settings(params: dict, method: str) -> FusionSettings:
    cfg = params.get("augment", {}).get(method)
    if cfg is None:
        raise ConfigError(f"augment.{method}: missing from params.yaml (alpha, pool, renormalize, n_queries_used)")
    n_used = cfg.get("n_queries_used")
    generated = params.get(method, {}).get("n_queries") if method == "xqg" else None
    if n_used is not None and generated is not None and n_used > generated:
        raise ConfigError(f"augment.{method}.n_queries_used: {n_used} > {method}.n_queries ({generated}) generated per passage")
    return FusionSettings(alpha=cfg["alpha"], pool=cfg.get("pool", "sum"), renormalize=bool(cfg.get("renormalize")),
                          n_items_used=n_used)


def load_method(folder, method: str, languages: list[str], k: int, settings: FusionSettings) -> MethodInputs:
    """The first ``k`` languages' (items, counts) from ``folder/<lang>.npz`` and costs from ``<lang>.stats.json``."""
    check_n_languages(k, languages)
    folder = Path(folder)
    generated, seconds, tokens = [], [], []
    for lang in languages[:k]:
        path = folder / f"{lang}.npz"
        if not path.is_file():
            raise ConfigError(f"{path}: generated embeddings for {lang!r} not found (run encode_generated for it)")
        arrays = np.load(path)
        generated.append((arrays["items"], arrays["counts"]))
        stats = read_json(folder / f"{lang}.stats.json")
        seconds.append(float(stats["seconds"]))
        tokens.append(int(stats["generated_tokens"]))
    return MethodInputs(method, generated, seconds, tokens, settings)
