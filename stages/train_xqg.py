#!/usr/bin/env python
"""train_xqg: train the cross-lingual query generator on (question in Y, its context in X) training pairs.

xqg.model: `warm` (BERT2BERT warm-started from the xDR's starting encoder, frozen; decoder from its top
layers, pruned vocabulary, language token first), `tiny` (a small T5 from scratch) or a Hugging Face
seq2seq id / path (the paper: google/mt5-base), fine-tuned with the paper's prompt.
xqg.context_languages: the context languages X to train on: `all` (the default) for every X/Y
combination MLQA gives, or a list such as [en] (the language generation reads).
A warm generator reads its sources' encoder states from --states (the xqg_training_states stage: the
frozen encoder's, the same for every seed) and trains until its loss on tune-split pairs stops falling (`xqg.warm.check_every`,
`patience`; the step cap `max_steps`) and keeps the best check's weights; the learning curve goes to
--metrics and --curve.
"""
from pathlib import Path

from xaug.cli import reexec_with_malloc_settings, run
from xaug.data import corpus_language
from xaug.formats import training_record, write_curve, write_training
from xaug.io import atomic_dir, read_jsonl, write_json
from xaug.learning_curves import plot_learning_curve
from xaug.params import check_int
from xaug.xqg_training import generator_settings, train_generator


def arguments(ap):
    ap.add_argument("--data", default="data/mlqa")
    ap.add_argument("--out", default="models/xqg")
    ap.add_argument("--metrics", default="metrics/train_xqg.json")
    ap.add_argument("--curve", default="plots/training/xqg.csv",
                    help="the learning curve (tune checks); its figure beside it (.png)")
    ap.add_argument("--states", default=None,
                    help="the sources' encoder states (stages/training_states.py); default: encode them here")
    ap.add_argument("--seed", type=int, default=None,
                    help="the training seed (default: the `seed` parameter); the *_seed stages pass each of scaling.seeds")


def main(args, p, log):
    cfg = p.get_path("xqg")
    seed = p.seed() if args.seed is None else check_int(args.seed, "--seed", minimum=0)
    generator_settings(cfg, seed)  # the parameters first, before the data is read
    data = Path(args.data)
    contexts = read_jsonl(data / "contexts.jsonl")
    pivot = corpus_language(data)  # the corpus language prepare recorded
    with atomic_dir(args.out) as out:  # the model folder is replaced as a whole
        history = train_generator(cfg, p.get_path("xdr"), contexts, read_jsonl(data / "queries.jsonl"),
                                  read_jsonl(data / "links.jsonl"), [c for c in contexts if c["lang"] == pivot],
                                  out, seed=seed, device=p.device(), states=args.states)
        write_training(out, history)
    write_json(args.metrics, {"model": cfg["model"], **training_record(history)})
    write_curve(args.curve, history.get("curve", []))
    plot_learning_curve(history.get("curve", []), Path(args.curve).with_suffix(".png"),
                        "warm query generator: learning curve")
    log.info("trained %s generator on %d examples", cfg["model"], history["examples"])


if __name__ == "__main__":
    # each step frees and allocates the same large tensors (the output layer's gradient: 14-33 MB); kept in
    # the heap they need no fresh pages, which saves time when fresh pages are costly (docs/testing.md)
    reexec_with_malloc_settings()
    run(main, __doc__, arguments, threads="xqg.threads")
