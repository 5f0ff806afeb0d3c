"""Training the warm BERT2BERT generators of ``xaug.warm`` (the model lives there, its training here)."""
from __future__ import annotations

import logging
import math
import random
from pathlib import Path
from typing import Sequence

import torch

from .device import use_bf16
from .models import load_backbone
from .training import optimise, summarise_losses
from .warm import TOKENIZE_BLOCK, WarmGenerator, WarmSettings, build_decoder, outputs_first, pruned_vocabulary

log = logging.getLogger(__name__)


SORT_WINDOW = 16  # batches whose examples are sorted by length together


def training_schedule(lengths: Sequence[int], settings: WarmSettings,
                      sources: Sequence[str] | None = None) -> list[list[int]]:
    """The example batches of a training run, in order: ``epochs`` epochs capped at ``max_steps``; each epoch
    holds every example once. Each epoch shuffles the examples, sorts each window of ``SORT_WINDOW``
    batches' worth by ``lengths`` (source and target pieces) and cuts it into batches, so a batch pads
    little, then shuffles the epoch's batches. Known up front, so only the sources that training will read
    need encoding.

    With ``settings.batch_by: sources`` (``sources``: each example's source key) the epoch shuffles and sorts
    the sources instead, and a source's examples stay together, so a batch holds few sources and each
    source's cross-attention keys and values are computed once for its examples (``WarmGenerator.loss``)."""
    n, size, cap = len(lengths), settings.batch_size, settings.max_steps
    if n == 0:
        return []
    if settings.batch_by == "sources":
        if sources is None or len(sources) != n:
            raise ValueError("batch_by: sources needs each example's source")
        groups: dict[str, list[int]] = {}
        for i, key in enumerate(sources):
            groups.setdefault(key, []).append(i)
        units = list(groups.values())
    else:
        units = [[i] for i in range(n)]
    unit_length = [max(lengths[i] for i in unit) for unit in units]
    per_window = max(1, size * SORT_WINDOW * len(units) // n)  # units in a window of SORT_WINDOW batches' examples
    rng, order, batches = random.Random(settings.seed), list(range(len(units))), []
    for _ in range(settings.epochs):  # batches by source: an epoch may need a few more than ceil(n / size)
        if cap and len(batches) >= cap:
            break
        rng.shuffle(order)
        epoch = []
        for w in range(0, len(units), per_window):
            window = [i for u in sorted(order[w : w + per_window], key=unit_length.__getitem__) for i in units[u]]
            epoch.extend(window[b : b + size] for b in range(0, len(window), size))
        rng.shuffle(epoch)
        batches.extend(epoch)
    return batches[: cap or None]


def example_lengths(gen: WarmGenerator, examples: list[dict]) -> list[int]:
    """Source plus target pieces of each example (the sort key of ``training_schedule``)."""
    sources = {e["passage_id"]: e["source"] for e in examples}
    ids, block = list(sources), TOKENIZE_BLOCK  # a block of pieces at a time: only the lengths are kept
    source_length = {i: len(x) for b in range(0, len(ids), block)
                     for i, x in zip(ids[b : b + block], gen._source_ids([sources[i] for i in ids[b : b + block]]))}
    return [source_length[e["passage_id"]] + len(t) for b in range(0, len(examples), block)
            for e, t in zip(examples[b : b + block],
                            gen.encode_targets([e["target"] for e in examples[b : b + block]],
                                               [e["lang"] for e in examples[b : b + block]]))]


def tune_loss(gen: WarmGenerator, tune: dict) -> float:
    """Mean negative log-likelihood per predicted piece (no label smoothing, no dropout) of the tune examples
    ``tune`` (``states``, ``targets``, ``sources``: lists), in training-size batches."""
    gen.train(False)
    total = pieces = 0.0
    size = gen.settings.batch_size
    with torch.no_grad():
        for b in range(0, len(tune["targets"]), size):
            targets = tune["targets"][b : b + size]
            n = sum(len(t) - 2 for t in targets)  # the pieces after <s> and the language token
            total += float(gen.loss(tune["states"][b : b + size], targets, tune["sources"][b : b + size],
                                    label_smoothing=0.0)) * n
            pieces += n
    gen.train(True)
    return total / max(1.0, pieces)


class EarlyStopping:
    """The stopping rule: every ``check_every`` steps the tune loss is measured; the weights of the best check
    are kept, and training stops after ``patience`` checks without a better one (0: never early)."""

    def __init__(self, gen: WarmGenerator, tune: dict | None, check_every: int, patience: int):
        self.gen, self.tune, self.every, self.patience = gen, tune, check_every, patience
        self.curve: list[dict] = []
        self.best, self.best_step, self.best_state, self.since_best = math.inf, 0, None, 0

    def __call__(self, step: int, losses: list[float]) -> bool:
        """After training step ``step`` (1-based; ``losses`` so far): True to stop."""
        if not self.tune or not self.every or step % self.every:
            return False
        loss = tune_loss(self.gen, self.tune)
        window = losses[-self.every:]
        self.curve.append({"step": step, "train_loss": round(sum(window) / len(window), 4),
                           "tune_loss": round(loss, 4)})
        if loss < self.best:
            self.best, self.best_step, self.since_best = loss, step, 0
            self.best_state = [p.detach().clone() for p in self.gen.trainable()]
        else:
            self.since_best += 1
        log.info("step %d: train loss %.3f, tune loss %.3f (best %.3f at step %d)", step, self.curve[-1]["train_loss"],
                 loss, self.best, self.best_step)
        return bool(self.patience) and self.since_best >= self.patience

    def restore(self) -> None:
        """Back to the best check's weights (when there was a check)."""
        if self.best_state is not None:
            with torch.no_grad():
                for p, best in zip(self.gen.trainable(), self.best_state):
                    p.copy_(best)


def train_warm(gen: WarmGenerator, examples: list[dict], states: dict[str, torch.Tensor],
               sources: dict[str, list[int]], batches: list[list[int]], tune: dict | None = None,
               progress: bool = True) -> dict:
    """Teacher-forced training of the decoder (and pointer head) on (passage id, target, language) examples,
    in the order of ``batches`` (``training_schedule``; ``states`` and ``sources`` must cover their passages),
    until the stopping rule on ``tune`` (``tune_batch``; None: no checks) or the schedule's end."""
    s = gen.settings
    torch.manual_seed(s.seed)
    read = sorted({i for batch in batches for i in batch})  # the targets of the examples the batches read
    targets = dict(zip(read, gen.encode_targets([examples[i]["target"] for i in read],
                                                [examples[i]["lang"] for i in read])))
    total = len(batches)
    stopping = EarlyStopping(gen, tune, s.check_every, s.patience)
    gen.train(True)
    losses, seconds = optimise(
        gen.trainable(), iter(batches),
        lambda idx: gen.loss([states[examples[i]["passage_id"]] for i in idx], [targets[i] for i in idx],
                             [sources[examples[i]["passage_id"]] for i in idx]),
        s.lr, total, warmup=total // 20, desc="train generator", progress=progress, floor=0.05, stop=stopping)
    stopping.restore()
    gen.train(False)
    first, last = summarise_losses(losses, 20)
    log.info("generator: %d of %d steps in %.0fs, loss %.3f -> %.3f%s", len(losses), total, seconds, first, last,
             f"; best tune loss {stopping.best:.3f} at step {stopping.best_step}" if stopping.curve else "")
    history = {"steps": len(losses), "max_steps": total, "seconds": round(seconds, 1), "loss_first": round(first, 4),
               "loss_last": round(last, 4)}
    if stopping.curve:
        history.update(best_step=stopping.best_step, tune_loss=round(stopping.best, 4),
                       stopped="patience" if len(losses) < total else "schedule", curve=stopping.curve)
    return history


def tune_selection(examples: list[dict], limit: int) -> list[dict]:
    """The ``limit`` tune examples of the stopping rule, spread evenly over ``examples`` (every language)."""
    return examples[:: max(1, len(examples) // limit)][:limit]


def tune_batch(gen: WarmGenerator, examples: list[dict], limit: int, states: list | None = None) -> dict | None:
    """The tune examples of ``tune_selection``, encoded for ``tune_loss`` (None when there are none); their
    sources' encoder states are computed here unless given (``states``, in the selection's order)."""
    examples = tune_selection(examples, limit)
    if not examples:
        return None
    texts = [e["source"] for e in examples]
    if states is None:
        states = gen.encode_passages(texts)
    elif len(states) != len(texts):
        raise ValueError(f"{len(states)} tune states for {len(texts)} tune examples")
    return {"states": states, "sources": gen.copy_sources(texts),
            "targets": gen.encode_targets([e["target"] for e in examples], [e["lang"] for e in examples])}


def scheduled_sources(examples: list[dict], schedule: list[list[int]]) -> list[str]:
    """The keys of the sources the batches of ``schedule`` read, in key order (the order training encodes them in)."""
    return sorted({examples[i]["passage_id"] for batch in schedule for i in batch})


def training_sources(examples: list[dict]) -> dict[str, str]:
    """Every distinct training source, text by key, in key order (the order training encodes them in)."""
    sources = {e["passage_id"]: e["source"] for e in examples}
    return {key: sources[key] for key in sorted(sources)}


def build_warm(examples: list[dict], xdr: dict, settings: WarmSettings, vocabulary_texts: Sequence[str],
               device: torch.device | str = "cpu"):
    """A fresh warm generator for ``examples`` from the xDR's starting encoder (vocabulary: the pieces of the
    targets and of ``vocabulary_texts``; its softmax over all of them, or over the targets' pieces alone with
    ``output_vocabulary: targets``); returns (generator, encoder, tokenizer)."""
    langs = sorted({e["lang"] for e in examples})
    with torch.random.fork_rng(devices=[]):  # the frozen encoder, a tiny one too, never depends on the seed
        torch.manual_seed(0)
        encoder, tokenizer, _ = load_backbone(xdr["model"], tiny_config=xdr.get("tiny"),
                                              texts=[e["source"] for e in examples])
    torch.manual_seed(settings.seed)  # the fresh weights (cross-attention, pointer head)
    targets = [e["target"] for e in examples]
    if settings.output_vocabulary == "targets":
        kept, outputs = outputs_first(tokenizer, targets, vocabulary_texts)
    else:
        kept, outputs = pruned_vocabulary(tokenizer, targets + list(vocabulary_texts)), None
    decoder = build_decoder(encoder, kept, langs, settings.decoder_layers, settings.cross_from_self,
                            f"{settings.group}.decoder_layers", settings.attention_dropout)
    gen = WarmGenerator(encoder, tokenizer, decoder, kept, langs, xdr.get("passage_prefix", ""), settings,
                        outputs=outputs)
    log.info("%s: pruned vocabulary of %d pieces, a softmax over %d (%s)", settings.group, len(kept), gen.outputs,
             settings.output_vocabulary)
    return gen.to(device), encoder, tokenizer


def fit_warm(examples: list[dict], xdr: dict, settings: WarmSettings, vocabulary_texts: Sequence[str], out: Path,
             device: torch.device | str = "cpu", tune_examples: Sequence[dict] = (), encoded=None):
    """Build a warm generator (``build_warm``), train it on ``examples`` (``passage_id``, ``source``, ``target``,
    ``lang``) on ``device``, stopping by its loss on ``tune_examples`` (``settings.check_every``), and save it
    to ``out``; returns (history, meta). ``encoded``: the sources' encoder states computed beforehand
    (``xaug.training_states.TrainingStates``), else encoded here."""
    gen, encoder, tokenizer = build_warm(examples, xdr, settings, vocabulary_texts, device)
    sources = training_sources(examples)
    schedule = training_schedule(example_lengths(gen, examples), settings, [e["passage_id"] for e in examples])
    ids = scheduled_sources(examples, schedule)
    tune_states = None
    if encoded is None:
        log.info("encoding the %d of %d training sources that %d steps read, once (frozen encoder)", len(ids),
                 len(sources), len(schedule))
        states = dict(zip(ids, gen.encode_passages([sources[i] for i in ids])))
    else:  # one tensor per source (rows of a source share it: WarmGenerator.loss), on the CPU as encode_passages
        states, tune_states = encoded.for_sources({i: sources[i] for i in ids}), encoded.tune
        log.info("the %d of %d training sources that %d steps read: states of the training_states stage",
                 len(ids), len(sources), len(schedule))
    tune = tune_batch(gen, list(tune_examples), settings.tune_examples, tune_states) if settings.check_every else None
    history = train_warm(gen, examples, states, dict(zip(ids, gen.copy_sources([sources[i] for i in ids]))),
                         schedule, tune)
    history["tune_examples"] = len(tune["targets"]) if tune else 0
    history["bf16"] = use_bf16(settings.bf16, gen.device, f"{settings.group}.bf16")  # what `auto` chose here
    out = Path(out)
    gen.save(out)
    if xdr["model"] == "tiny":  # a from-scratch encoder must travel with the decoder
        encoder.save_pretrained(out / "encoder")
        tokenizer.save_pretrained(out / "encoder")
    # a from-scratch encoder is saved inside the folder: recorded relative to it (the folder may move)
    meta = {"kind": "warm", "encoder": xdr["model"] if xdr["model"] != "tiny" else "./encoder",
            "vocabulary": len(gen.kept), "decoder_parameters": sum(p.numel() for p in gen.decoder.parameters())}
    if gen.outputs < gen.vocab_size:
        meta["softmax"] = gen.outputs  # the pieces of the training targets (output_vocabulary: targets)
    return history, meta
