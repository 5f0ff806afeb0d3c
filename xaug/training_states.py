"""The frozen encoder's states of a warm model's training and tune sources, computed once for every seed.

A warm query generator or translator trains a decoder over a frozen encoder (``xaug.warm``), so the encoder
states of its sources do not depend on the training seed: the ``*_training_states`` stages encode them once,
as training would (the same sources in the same order and batches), and the training stage of any seed reads
them. The folder: ``train/`` (a ``xaug.formats`` states folder, by source key), ``tune/`` (the tune examples
of the stopping rule in ``warm_training.tune_selection``'s order, keyed by position; empty without tune checks)
and ``identity.json`` (what the states depend on; training checks it against its own settings).
"""
from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, replace
from pathlib import Path

from .errors import ConfigError
from .formats import load_states, states_writer
from .io import atomic_dir, read_json, write_json
from .warm import WarmSettings
from .warm_training import (build_warm, example_lengths, scheduled_sources, training_schedule,
                            training_sources, tune_selection)

log = logging.getLogger(__name__)

IDENTITY_FILE = "identity.json"


def _digest(texts) -> str:
    return hashlib.sha256(json.dumps(list(texts), ensure_ascii=False).encode("utf-8")).hexdigest()


def _text_digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def identity(xdr: dict, settings: WarmSettings, sources: dict[str, str], tune: list[dict]) -> dict:
    """What the states are a function of: the backbone (a tiny one is built from the sources, at a fixed
    seed), its passage prefix, the source length, bf16, and the texts: a digest of each encoded training
    source by key, and one of the tune sources in order."""
    return {"model": xdr["model"], "tiny": xdr.get("tiny") if xdr["model"] == "tiny" else None,
            "passage_prefix": xdr.get("passage_prefix", ""), "max_source_length": settings.max_source_length,
            "bf16": settings.bf16, "tune": len(tune), "tune_sha256": _digest(e["source"] for e in tune),
            "sources": {k: _text_digest(t) for k, t in sources.items()}}


def sources_read(gen, examples: list[dict], settings: WarmSettings, seeds) -> tuple[dict[str, str], int]:
    """The training sources (text by key, in key order) that a run of ``settings`` reads with any of ``seeds``,
    and the number of training sources: each draw's schedule (``training_schedule``: its shuffles, batches and
    step cap) is known up front, so a capped run reads only its batches' sources, whatever the size of the
    training split."""
    sources = training_sources(examples)
    lengths, keys = example_lengths(gen, examples), [e["passage_id"] for e in examples]
    read: set[str] = set()
    for seed in seeds:
        read.update(scheduled_sources(examples, training_schedule(lengths, replace(settings, seed=seed), keys)))
    return {k: t for k, t in sources.items() if k in read}, len(sources)


def write_training_states(out, examples: list[dict], tune_examples: list[dict], xdr: dict, settings: WarmSettings,
                          device="cpu", seeds=None) -> dict:
    """Encode the training sources of ``examples`` that training with any of ``seeds`` (default: ``settings.seed``)
    reads, and the stopping rule's tune sources, with the encoder a warm model of ``settings`` gets, into ``out``
    (replaced whole); returns the identity written. The states, and the schedule's lengths, are the encoder's
    and the tokenizer's alone: the warm model built here has the targets' vocabulary only (training adds the
    corpus's pieces, a pass over every passage that the states do not need)."""
    gen, _, _ = build_warm(examples, xdr, settings, (), device)
    seeds = [settings.seed] if seeds is None else list(seeds)
    sources, total = sources_read(gen, examples, settings, seeds)
    tune = tune_selection(tune_examples, settings.tune_examples) if settings.check_every else []
    log.info("%s: encoding the %d of %d training sources that %d steps read with seeds %s, and %d tune examples "
             "(frozen encoder)", settings.group, len(sources), total, settings.max_steps, seeds, len(tune))
    ident = identity(xdr, settings, sources, tune)
    with atomic_dir(out) as tmp:
        _write_streamed(tmp / "train", list(sources), list(sources.values()), gen)
        _write_streamed(tmp / "tune", [str(i) for i in range(len(tune))], [e["source"] for e in tune], gen)
        write_json(tmp / IDENTITY_FILE, ident)
    return ident


def _write_streamed(folder, keys: list[str], texts: list[str], gen) -> None:
    """Each source's states, computed in the batches training computes them (``iter_states``), written under its
    key as its batch finishes: memory holds one batch and one shard, whatever the number of sources (put back
    in the sources' order, a block of 32,768 long passages is about 5 GB of float16 states). Readers go by key."""
    with states_writer(folder) as writer:
        for i, state in gen.iter_states(texts):
            writer.put(keys[i], state)


@dataclass
class TrainingStates:
    """The states of a ``training_states`` folder: ``train`` by source key (lazily read), ``tune`` in order, and
    the digest of each training source's text (``digests``)."""

    path: Path
    train: object
    tune: list
    digests: dict[str, str]

    def for_sources(self, sources: dict[str, str]) -> dict:
        """The states of ``sources`` (text by key: those a training run reads), after checking that each was
        encoded from that text (a one-line error naming the identity file otherwise)."""
        missing = [k for k in sources if k not in self.digests]
        if missing:
            raise ConfigError(f"{self.path}: no states for {len(missing)} of the {len(sources)} training sources this "
                              "run reads (its seed or schedule is not the states'; run stages/training_states.py "
                              "again, with this seed among `seed` and `scaling.seeds`)")
        other = [k for k, t in sources.items() if self.digests[k] != _text_digest(t)]
        if other:
            raise ConfigError(f"{self.path}: states computed for other texts of {len(other)} training sources "
                              f"(e.g. {other[0]!r}; run stages/training_states.py again)")
        return {k: self.train[k] for k in sources}


def read_training_states(folder, xdr: dict, settings: WarmSettings, tune_examples: list[dict]) -> TrainingStates:
    """The states of ``folder``, after checking that they were computed for these settings and tune sources (a
    one-line error naming the file otherwise); the training sources are checked when training knows which it
    reads (``TrainingStates.for_sources``)."""
    folder = Path(folder)
    path = folder / IDENTITY_FILE
    if not path.is_file():
        raise ConfigError(f"{path}: no training states (run the {settings.group.split('.')[0]} training_states "
                          "stage, stages/training_states.py)")
    found = read_json(path)
    tune = tune_selection(tune_examples, settings.tune_examples) if settings.check_every else []
    wanted = {k: v for k, v in identity(xdr, settings, {}, tune).items() if k != "sources"}
    differ = [k for k in wanted if found.get(k) != wanted[k]]
    if differ:
        k = differ[0]
        if k == "tune_sha256":  # as many tune examples, other texts
            raise ConfigError(f"{path}: states computed for other tune sources than training reads "
                              "(tune_sha256 differs; run stages/training_states.py again)")
        raise ConfigError(f"{path}: states computed with {k} = {found.get(k)!r}, training needs {wanted[k]!r} "
                          "(run stages/training_states.py again)")
    tune_states = load_states(folder / "tune")
    return TrainingStates(path, load_states(folder / "train"), [tune_states[str(i)] for i in range(len(tune_states))],
                          found.get("sources", {}))
