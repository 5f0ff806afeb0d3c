#!/usr/bin/env python
"""train_xqg: train the cross-lingual query generator on (question in Y, its context in X) training pairs.

xqg.model: `warm` (BERT2BERT warm-started from the xDR's starting encoder, frozen; decoder from its top
layers, pruned vocabulary, language token first), `tiny` (a small T5 from scratch) or a Hugging Face
seq2seq id / path (the paper: google/mt5-base), fine-tuned with the paper's prompt.
xqg.context_languages: the context languages X to train on ([en] by default: generation reads the
English corpus), or `all` for every X/Y combination MLQA gives.
"""
import argparse
from pathlib import Path

from xaug.cli import run_stage, setup
from xaug.io import read_jsonl, write_json
from xaug.params import load_params
from xaug.xqg import train_generator


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--data", default="data/mlqa")
    ap.add_argument("--out", default="models/xqg")
    ap.add_argument("--metrics", default="metrics/train_xqg.json")
    args = ap.parse_args()
    p = load_params(args.params)
    cfg = p.get_path("xqg")
    log = setup(cfg.get("threads"))
    data = Path(args.data)
    contexts = read_jsonl(data / "contexts.jsonl")
    history = train_generator(cfg, p.get_path("xdr"), contexts, read_jsonl(data / "queries.jsonl"),
                              read_jsonl(data / "links.jsonl"), [c for c in contexts if c["lang"] == "en"],
                              Path(args.out), seed=p.seed(), device=p.device())
    write_json(Path(args.out) / "training.json", history)
    write_json(args.metrics, {"model": cfg["model"], **{k: v for k, v in history.items() if k != "seconds"}})
    log.info("trained %s generator on %d examples", cfg["model"], history["examples"])


if __name__ == "__main__":
    run_stage(main)
