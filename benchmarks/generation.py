#!/usr/bin/env python
"""Queries/s of the batched, length-sorted generator against a naive per-passage `generate` loop.

Both decode greedily (one query per passage) on the same model and passages, so their outputs must
match; the script prints both rates, the speed-up and the share of identical outputs.

    python benchmarks/generation.py --model models/xqg --passages 64 --lang de
"""
import argparse
import time
from pathlib import Path

import torch

from xaug.cli import run_stage, setup
from xaug.device import resolve_device
from xaug.errors import ConfigError
from xaug.generation import SamplingSettings
from xaug.io import read_jsonl
from xaug.xqg import load_generator


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="models/xqg", help="a generator folder written by stages/train_xqg.py")
    ap.add_argument("--data", default="data/mlqa")
    ap.add_argument("--lang", default="de")
    ap.add_argument("--passages", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--max-new-tokens", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="auto", help="auto (the GPU when there is one) | cpu | cuda | cuda:N")
    ap.add_argument("--bf16", action="store_true", help="bfloat16 autocast (faster; padding then flips a few argmaxes)")
    args = ap.parse_args()
    setup(args.threads)
    if not Path(args.model).is_dir():
        raise ConfigError(f"--model: {args.model} not found; train one first (python stages/train_xqg.py)")
    generator_device = resolve_device(args.device)
    generator = load_generator(args.model).to(generator_device)
    if hasattr(generator, "settings"):  # warm generators: fp32 by default, so outputs must match exactly
        generator.settings.bf16 = args.bf16
    corpus = read_jsonl(Path(args.data) / "corpus.jsonl")[: args.passages]
    greedy = SamplingSettings(n_queries=1, do_sample=False, max_new_tokens=args.max_new_tokens,
                              batch_size=args.batch_size)

    torch.manual_seed(0)
    started = time.perf_counter()
    naive = [generator.generate([p], args.lang, greedy)[0][0][0] for p in corpus]
    naive_s = time.perf_counter() - started

    started = time.perf_counter()
    lengths = generator.source_lengths(corpus)
    order = sorted(range(len(corpus)), key=lambda i: -lengths[i])
    batched = [None] * len(corpus)
    for s in range(0, len(order), args.batch_size):
        idx = order[s : s + args.batch_size]
        out, _ = generator.generate([corpus[i] for i in idx], args.lang, greedy)
        for i, qs in zip(idx, out):
            batched[i] = qs[0]
    batched_s = time.perf_counter() - started

    same = sum(a == b for a, b in zip(naive, batched)) / len(corpus)
    print(f"passages {len(corpus)}, language {args.lang}, greedy, max {args.max_new_tokens} new tokens, "
          f"{args.threads} threads, {generator_device}")
    print(f"naive per-passage loop : {len(corpus) / naive_s:7.1f} queries/s ({naive_s:.1f} s)")
    print(f"batched, length-sorted : {len(corpus) / batched_s:7.1f} queries/s ({batched_s:.1f} s, batch {args.batch_size})")
    print(f"speed-up               : {naive_s / batched_s:7.2f}x")
    print(f"identical outputs      : {same:.1%}")


if __name__ == "__main__":
    run_stage(main)
