"""The frozen encoder's states of a warm model's training and tune sources, computed once for every seed.

A warm query generator or translator trains a decoder over a frozen encoder (``xaug.warm``), so the encoder
states of its sources do not depend on the training seed: the ``*_training_states`` stages encode them once,
as training would (the same sources in the same order and batches), and the training stage of any seed reads
them. The folder: ``train/`` (a ``xaug.formats`` states folder, by source key), ``tune/`` (the tune examples
of the stopping rule in ``warm_training.tune_selection``'s order, keyed by position; empty without tune checks)
and ``identity.json`` (what the states depend on; training checks it against its own settings).
"""
from __future__ import annotations

import logging
from pathlib import Path

from .errors import ConfigError
from .formats import load_states, save_states
from .io import atomic_dir, read_json, write_json
from .warm import WarmSettings
from .warm_training import build_warm, training_sources, tune_selection

log = logging.getLogger(__name__)

IDENTITY_FILE = "identity.json"


def identity(xdr: dict, settings: WarmSettings, examples: list[dict], tune_examples: list[dict]) -> dict:
    """What the states are a function of: the backbone (a tiny one is built from the sources, at a fixed
    seed), its passage prefix, the source length, bf16, and the sources."""
    return {"model": xdr["model"], "tiny": xdr.get("tiny") if xdr["model"] == "tiny" else None,
            "passage_prefix": xdr.get("passage_prefix", ""), "max_source_length": settings.max_source_length,
            "bf16": settings.bf16, "sources": len(training_sources(examples)),
            "tune": len(tune_selection(tune_examples, settings.tune_examples)) if settings.check_every else 0}


def write_training_states(out, examples: list[dict], tune_examples: list[dict], xdr: dict, settings: WarmSettings,
                          vocabulary_texts, device="cpu") -> dict:
    """Encode the training sources of ``examples`` and the stopping rule's tune sources with the encoder a warm
    model of ``settings`` gets, into ``out`` (replaced whole); returns the identity written."""
    gen, _, _ = build_warm(examples, xdr, settings, vocabulary_texts, device)
    sources = training_sources(examples)
    tune = tune_selection(tune_examples, settings.tune_examples) if settings.check_every else []
    log.info("%s: encoding %d training sources and %d tune examples (frozen encoder)", settings.group,
             len(sources), len(tune))
    ident = identity(xdr, settings, examples, tune_examples)
    with atomic_dir(out) as tmp:
        # streamed: each source's states go to the shards as their block finishes (memory: one block's states)
        save_states(tmp / "train", list(sources), gen.states_in_order(list(sources.values())))
        save_states(tmp / "tune", [str(i) for i in range(len(tune))], gen.states_in_order([e["source"] for e in tune]))
        write_json(tmp / IDENTITY_FILE, ident)
    return ident


def read_training_states(folder, xdr: dict, settings: WarmSettings, examples: list[dict],
                         tune_examples: list[dict]):
    """(training states by source key, tune states in order) of ``folder``, after checking that they were
    computed for these settings and sources (a one-line error naming the file otherwise)."""
    folder = Path(folder)
    path = folder / IDENTITY_FILE
    if not path.is_file():
        raise ConfigError(f"{path}: no training states (run the {settings.group.split('.')[0]} training_states "
                          "stage, stages/training_states.py)")
    found, wanted = read_json(path), identity(xdr, settings, examples, tune_examples)
    differ = [k for k in wanted if found.get(k) != wanted[k]]
    if differ:
        k = differ[0]
        raise ConfigError(f"{path}: states computed with {k} = {found.get(k)!r}, training needs {wanted[k]!r} "
                          "(run stages/training_states.py again)")
    tune = load_states(folder / "tune")
    return load_states(folder / "train"), [tune[str(i)] for i in range(len(tune))]
