#!/usr/bin/env python
"""train_translator: the passage translator of the `translate` method (translate.model).

`warm` (default): a BERT2BERT translator built like the warm query generator (frozen xDR encoder,
decoder from its top layers, pruned vocabulary, target language first, pointer head), trained on the
training split's parallel text: each question in its languages and the answer-bearing sentences of
parallel contexts, English <-> L in both directions. A Hugging Face id or local path (NLLB-200,
M2M100) is checked and recorded, not fine-tuned; `oracle` uses MLQA's parallel contexts.
Held-out quality: chrF (sacrebleu) of English -> L translations of evaluation-split questions and
answer sentences, in --metrics, with one example per language to read. They are read after training,
for that report only (`reads_heldout` in the report says so); training reads the `train` split alone.
"""
import argparse
from pathlib import Path

from xaug.cli import run_stage, setup
from xaug.io import read_jsonl, write_json
from xaug.params import load_params, positive_int
from xaug.translation import TranslateSettings, load_translator, parallel_pairs, train_translator, translation_quality


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--data", default="data/mlqa")
    ap.add_argument("--out", default="models/translator")
    ap.add_argument("--metrics", default="metrics/translation.json")
    args = ap.parse_args()
    p = load_params(args.params)
    cfg = p.get_path("translate")
    log = setup(cfg.get("threads"))
    data = Path(args.data)
    contexts, queries, links = (read_jsonl(data / f"{name}.jsonl") for name in ("contexts", "queries", "links"))
    corpus = read_jsonl(data / "corpus.jsonl")
    device = p.device()
    history = train_translator(cfg, p.get_path("xdr"), contexts, queries, links, corpus, Path(args.out),
                               seed=p.seed(), device=device)
    write_json(Path(args.out) / "training.json", history)
    report = {"model": cfg["model"], **{k: v for k, v in history.items() if k != "seconds"}}
    translator = load_translator(args.out)
    if translator is not None:
        translator.to(device)
        settings = TranslateSettings(**{k: cfg[k] for k in ("max_new_tokens", "batch_size") if k in cfg})
        held_out = parallel_pairs(contexts, links, queries, "eval")  # every language it learnt, not just `languages`
        report["reads_heldout"] = ("evaluation-split questions and answer sentences, for this report only; "
                                   "nothing is trained or chosen on them")
        report["heldout"] = translation_quality(translator, held_out, settings,
                                                positive_int(cfg.get("quality_pairs", 50), "translate.quality_pairs"))
        for lang, r in report["heldout"].items():
            log.info("%s: chrF questions %.1f, sentences %.1f; e.g. %r -> %r", lang, r.get("chrF_question", float("nan")),
                     r.get("chrF_sentence", float("nan")), r["examples"][0]["en"][:60],
                     r["examples"][0]["translation"][:60])
    write_json(args.metrics, report)


if __name__ == "__main__":
    run_stage(main)
