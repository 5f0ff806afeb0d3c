#!/usr/bin/env python
"""train_translator: the passage translator of the `translate` method (translate.model).

`warm` (default): a BERT2BERT translator built like the warm query generator (frozen xDR encoder,
decoder from its top layers, pruned vocabulary, target language first, pointer head), trained on the
training split's parallel text: each question in its languages and the answer-bearing sentences of
parallel contexts, English <-> L in both directions (translate.pairs: all adds every pair of two other
languages of a question, both directions), until its loss on the tune split's English <-> L pairs stops
falling (translate.warm.check_every, patience; learning curve in --metrics and --curve); the sources'
encoder states come from --states (the translator_training_states stage, the same for every seed). A Hugging
Face id or local path (NLLB-200, M2M100) is checked and recorded, not fine-tuned.
Held-out quality: chrF (sacrebleu) of English -> L translations of evaluation-split questions and
answer sentences, in --metrics, with one example per language to read. They are read after training,
for that report only (`reads_heldout` in the report says so); training learns from the `train` split
alone, and the `tune` split's pairs decide when it stops.
"""
from pathlib import Path

from xaug.cli import reexec_with_malloc_settings, run
from xaug.data import corpus_language
from xaug.formats import training_record, write_curve, write_training
from xaug.io import atomic_dir, read_jsonl, write_json
from xaug.learning_curves import plot_learning_curve
from xaug.params import check_int
from xaug.translator_training import check_pairs, heldout_report, train_translator


def arguments(ap):
    ap.add_argument("--data", default="data/mlqa")
    ap.add_argument("--out", default="models/translator")
    ap.add_argument("--metrics", default="metrics/translation.json")
    ap.add_argument("--curve", default="plots/training/translator.csv",
                    help="the learning curve (tune checks); its figure beside it (.png)")
    ap.add_argument("--states", default=None,
                    help="the sources' encoder states (stages/training_states.py); default: encode them here")
    ap.add_argument("--seed", type=int, default=None,
                    help="the training seed (default: the `seed` parameter); the *_seed stages pass each of scaling.seeds")


def main(args, p, log):
    cfg = p.get_path("translate")
    check_pairs(cfg)
    seed = p.seed() if args.seed is None else check_int(args.seed, "--seed", minimum=0)
    data = Path(args.data)
    contexts, queries, links = (read_jsonl(data / f"{name}.jsonl") for name in ("contexts", "queries", "links"))
    corpus = read_jsonl(data / "corpus.jsonl")
    device = p.device()
    with atomic_dir(args.out) as out:  # the model folder is replaced as a whole
        history = train_translator(cfg, p.get_path("xdr"), contexts, queries, links, corpus, out,
                                   seed=seed, device=device, states=args.states)
        write_training(out, history)
        report = {"model": cfg["model"], **training_record(history),
                  **heldout_report(cfg, out, contexts, queries, links, corpus_language(data), device)}
        for lang, r in report["heldout"].items():  # its examples are logged in full as they are translated
            log.info("%s: chrF questions %.1f, sentences %.1f", lang, r.get("chrF_question", float("nan")),
                     r.get("chrF_sentence", float("nan")))
    write_json(args.metrics, report)
    write_curve(args.curve, history.get("curve", []))
    plot_learning_curve(history.get("curve", []), Path(args.curve).with_suffix(".png"),
                        "warm translator: learning curve")


if __name__ == "__main__":
    # each step frees and allocates the same large tensors (the output layer's gradient: 14-33 MB); kept in
    # the heap they need no fresh pages, which saves time when fresh pages are costly (docs/testing.md)
    reexec_with_malloc_settings()
    run(main, __doc__, arguments, threads="translate.threads")
