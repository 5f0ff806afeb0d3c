#!/usr/bin/env python
"""Queries/s of the batched, length-sorted generator against a naive per-passage `generate` loop.

Both decode greedily (one query per passage) on the same model and passages, so their outputs must
match; the script prints both rates, the speed-up and the share of identical outputs.

For a warm generator it then times its decoding loop: the per-row Python reference loop
(``xaug.warm_reference.reference_decode_ids``) against the tensorised ``decode_ids``, interleaved
in one process (reference, tensorised, tensorised, reference, ...) so that load on a shared machine hits both alike, on the same
encoder states and length-sorted batches: queries/s, generated tokens/s and whether the ids are identical,
for sampling (the committed xqg settings by default), greedy decoding, and greedy without repeated bigrams
(translation). ``--model untrained`` times it without a pipeline run: a warm generator over the xDR
backbone with the committed xqg.warm architecture, not trained (its outputs are noise; the loop's cost
is the same). ``--data`` also takes an MLQA archive (.zip): its English paragraphs are the passages.
The paper's own models (mT5-base xQG, NLLB-200-distilled-600M translation): benchmarks/paper_models.py.

    python benchmarks/generation.py --model models/xqg --passages 64 --lang de
    python benchmarks/generation.py --model untrained --data ../shared/data/MLQA_V1_dev.zip --device cpu
"""
import argparse
import statistics
import time
from pathlib import Path

import torch
import yaml

from xaug.backend import device_name
from xaug.cli import run_stage, setup
from xaug.data import MlqaArchive
from xaug.decoding import SamplingSettings
from xaug.device import resolve_device
from xaug.errors import ConfigError
from xaug.generators import load_generator
from xaug.io import read_jsonl, write_json
from xaug.models import load_backbone
from xaug.preparation import prepare
from xaug.warm import WarmGenerator, WarmSettings, build_decoder, pruned_vocabulary
from xaug.warm_reference import reference_decode_ids

REPO = Path(__file__).resolve().parents[1]


def read_corpus(data: str, n: int) -> list[dict]:
    """The first ``n`` passages of a prepared folder (corpus.jsonl) or of an MLQA archive's English paragraphs."""
    if data.endswith(".zip"):
        return prepare(MlqaArchive(data), ["dev"]).corpus[:n]
    return read_jsonl(Path(data) / "corpus.jsonl")[:n]


TINY = {"vocab_size": 2000, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
        "intermediate_size": 64, "max_position_embeddings": 256}


def untrained_warm(texts: list[str], lang: str, seed: int = 0, tiny: bool = False) -> WarmGenerator:
    """A warm generator over params.yaml's xDR backbone with the committed xqg.warm architecture, untrained,
    its output vocabulary pruned to the pieces of ``texts``. ``tiny``: over a tiny BERT (hidden size 32) with
    a one-layer decoder instead, whose steps cost next to nothing, so the loop's own overhead shows (what
    a fast accelerator leaves of the step time)."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    xdr, settings = params["xdr"], WarmSettings(**params["xqg"]["warm"], seed=seed)
    if tiny:
        xdr = {"model": "tiny", "tiny": TINY, "passage_prefix": ""}
        settings = WarmSettings(**{**params["xqg"]["warm"], "decoder_layers": 1}, seed=seed)
    torch.manual_seed(seed)
    encoder, tokenizer, _ = load_backbone(xdr["model"], tiny_config=xdr.get("tiny"), texts=texts)
    kept = pruned_vocabulary(tokenizer, texts)
    decoder = build_decoder(encoder, kept, [lang], settings.decoder_layers, settings.cross_from_self)
    return WarmGenerator(encoder, tokenizer, decoder, kept, [lang], xdr.get("passage_prefix", ""), settings)


def compare_loops(generator: WarmGenerator, corpus: list[dict], args) -> None:
    """The per-row Python reference against the tensorised warm decoding loop, interleaved; prints the rates."""
    texts = [p["text"] for p in corpus]
    states, sources = generator.encode_passages(texts), generator.copy_sources(texts)  # once, outside the timing
    order = sorted(range(len(corpus)), key=lambda i: (-states[i].shape[0], i))
    batches = [order[i : i + args.batch_size] for i in range(0, len(order), args.batch_size)]
    loops = {"ref": lambda *a: reference_decode_ids(generator, *a), "tensor": generator.decode_ids}
    cases = {f"sampled, top-k {args.top_k}, {args.n_queries}/passage":
             SamplingSettings(n_queries=args.n_queries, top_k=args.top_k, max_new_tokens=args.max_new_tokens),
             "greedy": SamplingSettings(n_queries=1, do_sample=False, max_new_tokens=args.max_new_tokens),
             "greedy, no repeated bigrams": SamplingSettings(n_queries=1, do_sample=False, no_repeat_bigrams=True,
                                                             max_new_tokens=args.max_new_tokens)}

    def decode(loop, s):
        torch.manual_seed(s.seed)
        ids = []
        for idx in batches:  # decode_ids returns lists on the host: the device is done when it returns
            ids += loops[loop]([states[i] for i in idx], args.lang, s, s.n_queries, [sources[i] for i in idx])
        return ids

    print(f"\nwarm decoding loop, {generator.device}, {'bf16 autocast' if generator.settings.bf16 else 'fp32'}, "
          f"batches of {args.batch_size} passages, max {args.max_new_tokens} new tokens, "
          f"{args.rounds} interleaved rounds (rates of the median round; best round in brackets)")
    for name, s in cases.items():
        decode("tensor", s), decode("ref", s)  # warm-up
        seconds, outputs = {"ref": [], "tensor": []}, {}
        for r in range(args.rounds):
            for loop in ("ref", "tensor") if r % 2 == 0 else ("tensor", "ref"):
                started = time.perf_counter()
                outputs[loop] = decode(loop, s)
                seconds[loop].append(time.perf_counter() - started)
        queries, tokens = len(outputs["tensor"]), sum(len(ids) for ids in outputs["tensor"])
        median = {loop: statistics.median(t) for loop, t in seconds.items()}
        best = {loop: min(t) for loop, t in seconds.items()}
        print(f"{name} ({queries} queries, {tokens} generated tokens; ids identical: "
              f"{outputs['ref'] == outputs['tensor']})")
        for loop, label in (("ref", "per-row Python reference"), ("tensor", "tensorised")):
            print(f"  {label:<24}: {queries / median[loop]:8.1f} queries/s {tokens / median[loop]:9.1f} tokens/s "
                  f"({median[loop]:.2f} s) [{queries / best[loop]:.1f} queries/s, {tokens / best[loop]:.1f} tokens/s]")
        print(f"  speed-up                : {median['ref'] / median['tensor']:8.2f}x "
              f"[{best['ref'] / best['tensor']:.2f}x]")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="models/xqg", help="a generator folder written by stages/train_xqg.py, or "
                    "`untrained` (a warm generator of the committed architecture, untrained: times the decoding loop)"
                    ", or `untrained-tiny` (the same over a tiny BERT: the loop's own overhead)")
    ap.add_argument("--data", default="data/mlqa", help="a prepared data folder, or an MLQA archive (.zip)")
    ap.add_argument("--lang", default="de")
    ap.add_argument("--passages", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--max-new-tokens", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="auto", help="auto (the GPU when there is one) | cpu | cuda | cuda:N")
    ap.add_argument("--bf16", action="store_true", help="bfloat16 autocast (faster; padding then flips a few argmaxes)")
    ap.add_argument("--n-queries", type=int, default=3, help="warm loop comparison: sampled queries per passage")
    ap.add_argument("--top-k", type=int, default=10, help="warm loop comparison: top-k of the sampling")
    ap.add_argument("--rounds", type=int, default=3, help="warm loop comparison: interleaved timing rounds")
    ap.add_argument("--out", default=None, metavar="FILE",
                    help="also write the measured rates and the device's name as JSON (params.yaml cost.rates)")
    args = ap.parse_args()
    setup(args.threads)
    untrained = args.model in ("untrained", "untrained-tiny")
    if not untrained and not Path(args.model).is_dir():
        raise ConfigError(f"--model: {args.model} not found; train one first (python stages/train_xqg.py)")
    generator_device = resolve_device(args.device)
    corpus = read_corpus(args.data, args.passages)
    generator = (untrained_warm([p["text"] for p in corpus], args.lang, tiny=args.model == "untrained-tiny")
                 if untrained else load_generator(args.model)).to(generator_device)
    if hasattr(generator, "settings"):  # warm generators: fp32 by default, so outputs must match exactly
        generator.settings.bf16 = args.bf16
    greedy = SamplingSettings(n_queries=1, do_sample=False, max_new_tokens=args.max_new_tokens,
                              batch_size=args.batch_size)

    torch.manual_seed(0)
    started = time.perf_counter()
    naive = [generator.generate([p], args.lang, greedy)[0][0][0] for p in corpus]
    naive_s = time.perf_counter() - started

    started = time.perf_counter()
    lengths = generator.source_lengths(corpus, args.lang)
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
    if args.out:  # the batched rates, for the cost stage (xaug/cost.py); tokens: the outputs re-tokenised
        tokens = sum(len(ids) for ids in generator.tokenizer(batched, add_special_tokens=False)["input_ids"])
        write_json(args.out, {
            "device": device_name(generator_device), "model": args.model, "language": args.lang,
            "passages": len(corpus), "batch_size": args.batch_size, "max_new_tokens": args.max_new_tokens,
            "threads": args.threads, "bf16": args.bf16, "decoding": "greedy, one query per passage",
            "xqg": {"queries_per_s": len(corpus) / batched_s, "generated_tokens_per_s": tokens / batched_s,
                    "tokens_per_query": tokens / len(corpus), "seconds": batched_s},
            "naive_queries_per_s": len(corpus) / naive_s, "identical_outputs": same})
        print(f"rates written to {args.out}")
    if isinstance(generator, WarmGenerator):
        compare_loops(generator, corpus, args)


if __name__ == "__main__":
    run_stage(main)
