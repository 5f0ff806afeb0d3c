#!/usr/bin/env python
"""training_states: the frozen encoder's states of a warm model's training sources, once for every seed.

--model xqg: the warm query generator's sources (contexts of the training split's questions, in
xqg.context_languages) and its stopping rule's tune examples; --model translator: the warm translator's
(both sides of the training split's parallel pairs, translate.pairs) and its tune pairs. They are encoded as
the training stage would encode them (xaug/training_states.py), with the xDR's starting encoder, which
training keeps frozen, so train_xqg and train_translator of every draw read them (--states) instead of
encoding them each time. Only the sources that training reads are encoded: each draw's batches (`seed` and
`scaling.seeds`, the batch size, epochs and `max_steps` of <group>.warm) are known up front, so a run capped at
a few steps reads a few batches' sources, however large the training split. A model that is not `warm` has
no frozen encoder: the folder is written empty.
"""
from pathlib import Path

from xaug.cli import run, setup
from xaug.data import corpus_language
from xaug.io import atomic_dir, read_jsonl
from xaug.params import check_int
from xaug.training_states import write_training_states
from xaug.translator_training import check_pairs, warm_examples
from xaug.warm import WarmSettings
from xaug.xqg_training import generator_examples

GROUPS = {"xqg": "xqg", "translator": "translate"}
# of <group>.warm: the encoder's input, the tune checks, and the schedule of batches (which sources are read)
STATES_KEYS = ("max_source_length", "bf16", "check_every", "tune_examples", "max_target_length", "epochs",
               "batch_size", "max_steps", "batch_by")


def arguments(ap):
    ap.add_argument("--model", choices=sorted(GROUPS), required=True)
    ap.add_argument("--data", default="data/mlqa")
    ap.add_argument("--out", required=True, help="the states folder (data/training_states/<model>)")


def encoder_settings(p, group: str) -> WarmSettings:
    """The `<group>.warm` settings the states depend on (the source length, bf16, the tune checks, the
    schedule); the rest of the group is the training stage's, and a one-layer decoder stands in for the
    trained one (the states are the encoder's alone)."""
    warm = {k: p.get_path(f"{group}.warm.{k}", None) for k in STATES_KEYS}
    return WarmSettings.from_params({**{k: v for k, v in warm.items() if v is not None}, "decoder_layers": 1},
                                    p.seed(), f"{group}.warm")


def draw_seeds(p) -> list[int]:
    """The training seed of every draw: `seed` and `scaling.seeds` (checked when params.yaml loads)."""
    return [p.seed(), *p.get_path("scaling.seeds", [])]


def main(args, p, log):
    group = GROUPS[args.model]
    cfg = p.get_path(group)
    threads = p.get_path(f"{group}.threads", None)  # the training stage's threads: the same arithmetic
    if threads is not None:
        check_int(threads, f"{group}.threads")
        setup(threads)
    if args.model == "translator":
        check_pairs(cfg)
    if cfg["model"] != "warm":
        with atomic_dir(args.out):
            pass
        log.info("%s.model is %r: no frozen encoder, nothing to encode", group, cfg["model"])
        return
    settings = encoder_settings(p, group)  # the parameters first, before the data is read
    data = Path(args.data)
    contexts, queries, links = (read_jsonl(data / f"{name}.jsonl") for name in ("contexts", "queries", "links"))
    pivot = corpus_language(data)
    if args.model == "xqg":  # as train_xqg reads them
        corpus = [c for c in contexts if c["lang"] == pivot]
        examples = generator_examples(cfg, contexts, queries, links, corpus, pivot)
        tune = generator_examples(cfg, contexts, queries, links, corpus, pivot, "tune")
    else:  # as train_translator reads them
        examples, tune, _ = warm_examples(cfg, contexts, queries, links, pivot)
    ident = write_training_states(args.out, examples, tune, p.get_path("xdr"), settings, p.device(),
                                  seeds=draw_seeds(p))
    log.info("%s: states of %d training sources and %d tune examples", args.model, len(ident["sources"]),
             ident["tune"])


if __name__ == "__main__":
    run(main, __doc__, arguments)
