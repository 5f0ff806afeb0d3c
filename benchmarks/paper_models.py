#!/usr/bin/env python
"""What the paper's own models cost per passage: mT5-base query generation (xQG) vs NLLB-200-distilled-600M
passage translation, timed with randomly initialised models of their architectures.

Decoding speed does not depend on the weights, only on the architecture, the lengths and the batch, so
the models are built from configs written here (no model hub, no download): the values are those of the
published checkpoints' config.json (google/mt5-base, which the paper's xQG model
ielabgroup/xor-tydi-docTquery-mt5-base fine-tunes; facebook/nllb-200-distilled-600M), checked against the
fields and defaults of ``transformers.MT5Config`` / ``transformers.M2M100Config`` (NLLB-200 dense models
are M2M100 models in transformers; 615M parameters). transformers 5 forces ``MT5Config.tie_word_embeddings``
to True, so the LM head is replaced by one of its own after building, as in the checkpoint (582M parameters;
tied: 390M, the same matmuls either way); dropout and layer-drop are off (eval mode).

Inputs are random token ids (seeded) with the length distribution of real passages: each passage's words
(MLQA paragraphs of ``--data``, a seeded sample) times ``TOKENS_PER_WORD`` = 1.3 (a SentencePiece rule of
thumb for English under these multilingual vocabularies), capped at ``--max-source-length`` (512: the
paper's passage + prompt for mT5; whole passages for NLLB), the last id being EOS. ``--data words:100``
uses fixed 100-word passages instead (XOR-TyDi's; no data needed).

  xQG: ``generate(do_sample=True, top_k=10, num_return_sequences=n_queries)`` per passage. Random weights
       rarely emit EOS, so every query runs to ``--max-new-tokens`` (64); ``min_new_tokens`` is set to the
       same value so the length is fixed whatever the weights (``--free-length``: let EOS stop a row).
       Real questions are far shorter (the pipeline's: 6-13 pieces), but a batch decodes until its longest
       row ends, so the queries/s at 64 is the cost of batches capped at 64; ``--max-new-tokens 32`` is
       closer to a real batch's longest question.
  translation: greedy ``generate`` with ``forced_bos_token_id`` (a language code's id), each passage to
       ``TARGET_PER_SOURCE`` = 1.2 x its source tokens (capped at ``--max-target-length``), forced likewise
       by ``min_new_tokens``; a batch decodes to its longest target, and only the passages' own targets
       count as translated tokens (``decoded_tokens_per_s`` counts the padding too).

Each is timed batched (length-sorted, ``--batch-size`` passages a batch) and as the naive per-passage loop
(on the first ``--naive-passages`` of them), after a warm-up call; ``--out FILE`` writes the batched rates
as ``cost.rates`` reads them (xaug/cost.py: ``xqg.generated_tokens_per_s``, ``queries_per_s``,
``tokens_per_query``; ``translate.translated_tokens_per_s``, ``translated_tokens_per_source_word``), with
the device's name, the architectures, sizes, lengths and the naive-loop rates. The timings include moving
each batch to the device; ``--device cuda`` also sets up deterministic kernels (as the pipeline does).

    python benchmarks/paper_models.py --passages 4 --batch-size 4 --n-queries 2 --max-new-tokens 16 --threads 2
    python benchmarks/paper_models.py --device cuda --bf16 --passages 256 --batch-size 32 --out rates.json
"""
from __future__ import annotations

import argparse
import contextlib
import gc
import math
import random
import statistics
import time
from pathlib import Path

import torch

from xaug.backend import device_name
from xaug.cli import run_stage, setup
from xaug.data import MlqaArchive
from xaug.device import resolve_device
from xaug.errors import ConfigError
from xaug.io import read_jsonl, write_json
from xaug.preparation import prepare

TOKENS_PER_WORD = 1.3     # source tokens per passage word (assumed; see the module docstring)
TARGET_PER_SOURCE = 1.2   # translated tokens per source token (assumed)
REAL_QUESTION_TOKENS = "6-13"  # pieces per question of the pipeline's xQG (metrics/generation.json: 8 on average)

# google/mt5-base config.json (the paper's xQG backbone)
MT5_BASE = {"vocab_size": 250112, "d_model": 768, "d_kv": 64, "d_ff": 2048, "num_layers": 12,
            "num_decoder_layers": 12, "num_heads": 12, "relative_attention_num_buckets": 32,
            "relative_attention_max_distance": 128, "feed_forward_proj": "gated-gelu", "tie_word_embeddings": False,
            "layer_norm_epsilon": 1e-6, "decoder_start_token_id": 0, "pad_token_id": 0, "eos_token_id": 1}
# facebook/nllb-200-distilled-600M config.json (the paper's translator)
NLLB_600M = {"vocab_size": 256206, "d_model": 1024, "encoder_layers": 12, "decoder_layers": 12,
             "encoder_attention_heads": 16, "decoder_attention_heads": 16, "encoder_ffn_dim": 4096,
             "decoder_ffn_dim": 4096, "activation_function": "relu", "scale_embedding": True,
             "max_position_embeddings": 1024, "encoder_layerdrop": 0.0, "decoder_layerdrop": 0.0,
             "pad_token_id": 1, "bos_token_id": 0, "eos_token_id": 2, "decoder_start_token_id": 2}
ARCHITECTURES = {"xqg": "mT5-base (google/mt5-base architecture, random weights)",
                 "translate": "NLLB-200-distilled-600M (facebook/nllb-200-distilled-600M architecture, random weights)"}
RESERVED_IDS = {"xqg": 3, "translate": 4}  # pad/eos/unk (mT5), bos/pad/eos/unk (NLLB): not drawn as passage ids


def mt5_config(**overrides):
    from transformers import MT5Config

    return MT5Config(**{**MT5_BASE, **overrides})


def nllb_config(**overrides):
    from transformers import M2M100Config

    return M2M100Config(**{**NLLB_600M, **overrides})


def build_model(config, device: torch.device, seed: int = 0, untie_head: bool = True):
    """A randomly initialised seq2seq model of ``config`` (MT5Config or M2M100Config), built on ``device``;
    an mT5 gets an LM head of its own (``untie_head``), as google/mt5-base has."""
    from transformers import M2M100ForConditionalGeneration, MT5ForConditionalGeneration

    cls = {"mt5": MT5ForConditionalGeneration, "m2m_100": M2M100ForConditionalGeneration}[config.model_type]
    torch.manual_seed(seed)
    with torch.device(device):
        model = cls(config)
        if config.model_type == "mt5" and untie_head:  # the checkpoint's own LM head (transformers 5 ties it)
            model.lm_head.weight = torch.nn.Parameter(torch.randn_like(model.lm_head.weight))
    return model.eval()


def parameters(model) -> int:
    """Parameters, tied matrices once."""
    return sum(p.numel() for p in model.parameters())


def passage_words(data: str, n: int, seed: int = 0) -> list[int]:
    """Words of ``n`` passages: a seeded sample of an MLQA archive's (.zip or folder) corpus-language paragraphs
    or of a prepared folder's corpus.jsonl (with repeats when it has fewer), or ``words:N`` (N each)."""
    if data.startswith("words:"):
        try:
            words = int(data.split(":", 1)[1])
        except ValueError:
            words = 0
        if words <= 0:
            raise ConfigError(f"--data {data}: expected words:N with N > 0")
        return [words] * n
    path = Path(data)
    if (path / "corpus.jsonl").is_file():
        corpus = read_jsonl(path / "corpus.jsonl")
    elif path.exists():
        corpus = prepare(MlqaArchive(path), ["dev"]).corpus
    else:
        raise ConfigError(f"--data {data}: not found (an MLQA archive, a prepared folder, or words:N)")
    texts = [p["text"] for p in corpus if p["text"].split()]
    if not texts:
        raise ConfigError(f"--data {data}: no non-empty passage")
    rng = random.Random(seed)
    sample = rng.sample(texts, n) if n <= len(texts) else rng.choices(texts, k=n)
    return [len(t.split()) for t in sample]


def source_lengths(words: list[int], cap: int) -> list[int]:
    return [min(cap, max(1, round(w * TOKENS_PER_WORD))) for w in words]


def random_sources(lengths: list[int], vocab_size: int, reserved: int, eos: int, seed: int = 0) -> list[torch.Tensor]:
    """Random ids in [reserved, vocab_size), one sequence per length, each ending in EOS."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for n in lengths:
        ids = torch.randint(reserved, vocab_size, (n,), generator=g)
        ids[-1] = eos
        out.append(ids)
    return out


def length_sorted_batches(lengths: list[int], batch_size: int) -> list[list[int]]:
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def pad_batch(seqs: list[torch.Tensor], pad_id: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for r, s in enumerate(seqs):
        ids[r, : len(s)], mask[r, : len(s)] = s, 1
    return ids.to(device), mask.to(device)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def autocast(device: torch.device, bf16: bool):
    return torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()


def row_lengths(out: torch.Tensor, eos: int) -> list[int]:
    """New tokens per output row (the decoder start dropped): up to and including the first EOS."""
    new = out[:, 1:]
    steps = new.shape[1]
    is_eos = new == eos
    first = torch.where(is_eos.any(1), is_eos.int().argmax(1) + 1,
                        torch.full_like(is_eos[:, 0], steps, dtype=torch.long))
    return first.tolist()


def run_batches(model, sources, groups, kwargs_of, device, bf16: bool, seed: int) -> tuple[float, list]:
    """Seconds to ``generate`` every group of ``sources`` (moving each batch to the device included), and the
    outputs (on the device)."""
    pad = model.config.pad_token_id
    torch.manual_seed(seed)
    outputs = []
    _sync(device)
    started = time.perf_counter()
    for idx in groups:
        ids, mask = pad_batch([sources[i] for i in idx], pad, device)
        with torch.inference_mode(), autocast(device, bf16):
            outputs.append(model.generate(input_ids=ids, attention_mask=mask, **kwargs_of(idx)))
    _sync(device)
    return time.perf_counter() - started, outputs


def measure_xqg(model, sources, args, device) -> dict:
    """Sampled queries, batched (length-sorted) vs the per-passage loop: queries/s and generated tokens/s."""
    eos, m = model.config.eos_token_id, args.max_new_tokens
    kwargs = {"do_sample": True, "top_k": args.top_k, "num_return_sequences": args.n_queries, "max_new_tokens": m}
    if not args.free_length:
        kwargs["min_new_tokens"] = m

    def rates(groups) -> dict:
        seconds, outs = run_batches(model, sources, groups, lambda idx: kwargs, device, args.bf16, args.seed)
        generated = sum(sum(row_lengths(o, eos)) for o in outs)
        queries = sum(o.shape[0] for o in outs)
        src = sum(len(sources[i]) for g in groups for i in g)
        return {"passages": sum(len(g) for g in groups), "queries": queries, "generated_tokens": generated,
                "source_tokens": src, "seconds": seconds, "queries_per_s": queries / seconds,
                "generated_tokens_per_s": generated / seconds, "source_tokens_per_s": src / seconds,
                "tokens_per_query": generated / queries}

    run_batches(model, sources, [[0]], lambda idx: {**kwargs, "max_new_tokens": 2, "min_new_tokens": 0}, device,
                args.bf16, args.seed)  # warm-up
    lengths = [len(s) for s in sources]
    batched = rates(length_sorted_batches(lengths, args.batch_size))
    naive = rates([[i] for i in range(min(args.naive_passages, len(sources)))]) if args.naive_passages else None
    return {**batched, "naive": naive, "decoding": f"sampled, top-k {args.top_k}, {args.n_queries} per passage",
            "n_queries": args.n_queries, "top_k": args.top_k, "max_new_tokens": m,
            "length": "free (EOS stops a row)" if args.free_length else "fixed (min_new_tokens = max_new_tokens)"}


def measure_translate(model, sources, args, device, lang_id: int | None = None) -> dict:
    """Greedy translation to ``TARGET_PER_SOURCE`` x the source tokens, batched vs the per-passage loop."""
    eos = model.config.eos_token_id
    lang_id = model.config.vocab_size - 1 if lang_id is None else lang_id  # NLLB's language codes sit at the end
    targets = [min(args.max_target_length, math.ceil(TARGET_PER_SOURCE * len(s))) for s in sources]

    def kwargs_of(idx):
        m = max(targets[i] for i in idx)
        kw = {"do_sample": False, "num_beams": 1, "forced_bos_token_id": lang_id, "max_new_tokens": m}
        if args.no_repeat_ngram:
            kw["no_repeat_ngram_size"] = args.no_repeat_ngram
        if not args.free_length:
            kw["min_new_tokens"] = m
        return kw

    def rates(groups) -> dict:
        seconds, outs = run_batches(model, sources, groups, kwargs_of, device, args.bf16, args.seed)
        translated = decoded = 0
        for idx, o in zip(groups, outs):  # a row's own target counts; the rest of the batch's steps are padding
            translated += sum(min(n, targets[i]) for i, n in zip(idx, row_lengths(o, eos)))
            decoded += o.shape[0] * (o.shape[1] - 1)
        src = sum(len(sources[i]) for g in groups for i in g)
        return {"passages": sum(len(g) for g in groups), "translated_tokens": translated, "decoded_tokens": decoded,
                "source_tokens": src, "seconds": seconds, "translated_tokens_per_s": translated / seconds,
                "decoded_tokens_per_s": decoded / seconds, "source_tokens_per_s": src / seconds,
                "passages_per_s": sum(len(g) for g in groups) / seconds}

    run_batches(model, sources, [[0]], lambda idx: {**kwargs_of(idx), "max_new_tokens": 2, "min_new_tokens": 0},
                device, args.bf16, args.seed)  # warm-up
    batched = rates(length_sorted_batches([len(s) for s in sources], args.batch_size))
    naive = rates([[i] for i in range(min(args.naive_passages, len(sources)))]) if args.naive_passages else None
    return {**batched, "naive": naive, "decoding": "greedy, forced target-language token",
            "target_per_source_token": TARGET_PER_SOURCE, "max_target_length": args.max_target_length,
            "translated_tokens_per_source_word": TOKENS_PER_WORD * TARGET_PER_SOURCE,
            "no_repeat_ngram_size": args.no_repeat_ngram,
            "length": "free (EOS stops a row)" if args.free_length else "fixed (min_new_tokens = max_new_tokens)"}


def _stats(values: list[int]) -> dict:
    return {"mean": statistics.mean(values), "median": statistics.median(values), "max": max(values),
            "min": min(values)}


def report(method: str, r: dict, model_info: str, batch_size: int) -> None:
    print(f"\n{model_info}")
    print(f"  {r['passages']} passages, {r['source_tokens'] / r['passages']:.0f} source tokens on average, "
          f"{r['decoding']}, {r['length']}")
    rows = [("batched, length-sorted", r, f"batch {batch_size}")]
    if r["naive"]:
        rows.append(("naive per-passage loop", r["naive"], f"{r['naive']['passages']} passages"))
    for label, x, note in rows:
        if method == "xqg":
            print(f"  {label:<23}: {x['queries_per_s']:9.2f} queries/s {x['generated_tokens_per_s']:10.1f} generated "
                  f"tokens/s {x['source_tokens_per_s']:10.1f} source tokens/s ({x['seconds']:.1f} s, {note})")
        else:
            print(f"  {label:<23}: {x['source_tokens_per_s']:9.1f} source tokens/s "
                  f"{x['translated_tokens_per_s']:10.1f} generated tokens/s ({x['decoded_tokens_per_s']:.1f} with "
                  f"padding; {x['passages_per_s']:.3f} passages/s; {x['seconds']:.1f} s, {note})")
    if r["naive"]:
        key = "queries_per_s" if method == "xqg" else "translated_tokens_per_s"
        print(f"  speed-up of batching   : {r[key] / r['naive'][key]:9.2f}x")
    if "peak_memory_gib" in r:
        print(f"  peak GPU memory        : {r['peak_memory_gib']:9.2f} GiB")


def run(args, configs: dict | None = None) -> dict:
    """Build each model in turn, time it, print and return the rates (``configs``: method -> config, the
    paper's by default); writes ``args.out`` when set."""
    from transformers import __version__ as transformers_version  # transformers: heavy, loaded on use

    device = resolve_device(args.device)
    if args.bf16 and device.type == "cpu":
        print("note: bf16 autocast on the CPU (slower than fp32 without AMX / AVX512-BF16)")
    configs = configs or {}
    words = passage_words(args.data, args.passages, args.seed)
    out = {"device": device_name(device), "device_type": device.type, "torch": torch.__version__,
           "transformers": transformers_version, "threads": torch.get_num_threads(),
           "precision": "bf16 autocast" if args.bf16 else "fp32", "data": args.data, "passages": args.passages,
           "passage_words": _stats(words), "tokens_per_word": TOKENS_PER_WORD, "batch_size": args.batch_size,
           "naive_passages": min(args.naive_passages, args.passages), "seed": args.seed}
    print(f"{out['device']} ({device}), {out['precision']}, {out['threads']} threads; {args.passages} passages of "
          f"{args.data}: {out['passage_words']['mean']:.0f} words on average (x {TOKENS_PER_WORD} = source tokens)")
    for method in args.methods:
        config = configs.get(method) or (mt5_config() if method == "xqg" else nllb_config())
        model = build_model(config, device, args.seed)
        n_params = parameters(model)
        lengths = source_lengths(words, args.max_source_length)
        sources = random_sources(lengths, config.vocab_size, RESERVED_IDS[method], config.eos_token_id, args.seed)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        r = (measure_xqg if method == "xqg" else measure_translate)(model, sources, args, device)
        if device.type == "cuda":  # weights, caches and logits at the largest batch: room for a larger one?
            r["peak_memory_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
        name = ARCHITECTURES[method] if method not in configs else f"{config.model_type} (custom config)"
        r = {**r, "architecture": name, "parameters": n_params, "config": config.to_diff_dict(),
             "batch_size": args.batch_size, "max_source_length": args.max_source_length,
             "source_lengths": _stats(lengths)}
        if r["naive"]:
            key = "queries_per_s" if method == "xqg" else "translated_tokens_per_s"
            r["speed_up"] = r[key] / r["naive"][key]
        out[method] = r
        report(method, r, f"{'xQG' if method == 'xqg' else 'translation'}: {name}, {n_params / 1e6:.1f}M parameters",
               args.batch_size)
        if args.out:  # after each method: a run cut short keeps what it measured
            write_json(args.out, out)
        del model
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
    if "xqg" in out and not args.free_length:
        print(f"\nnote: random weights: every query runs to {args.max_new_tokens} tokens (min_new_tokens fixes it); "
              f"the pipeline's real questions are {REAL_QUESTION_TOKENS} pieces, but a batch decodes until its "
              f"longest row ends")
    if args.out:
        print(f"rates written to {args.out} (cost.rates)")
    return out


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="../shared/data/MLQA_V1_dev.zip",
                    help="an MLQA archive (.zip or folder), a prepared folder (corpus.jsonl), or words:N")
    ap.add_argument("--passages", type=int, default=16)
    ap.add_argument("--naive-passages", type=int, default=16, help="passages of the per-passage loop (0: skip it)")
    ap.add_argument("--batch-size", type=int, default=8, help="passages per batch")
    ap.add_argument("--n-queries", type=int, default=5, help="xQG: queries per passage (the paper: 5)")
    ap.add_argument("--top-k", type=int, default=10, help="xQG: top-k sampling")
    ap.add_argument("--max-new-tokens", type=int, default=64, help="xQG: tokens per query")
    ap.add_argument("--max-source-length", type=int, default=512, help="source tokens per passage (both models)")
    ap.add_argument("--max-target-length", type=int, default=512, help="translation: cap of the target tokens")
    ap.add_argument("--no-repeat-ngram", type=int, default=0,
                    help="translation: no_repeat_ngram_size (0: plain greedy, as the pipeline's HF translators)")
    ap.add_argument("--free-length", action="store_true",
                    help="no min_new_tokens: EOS may stop a row (random weights rarely emit it)")
    ap.add_argument("--methods", default="xqg,translate", type=lambda s: [m for m in s.split(",") if m],
                    help="xqg, translate or both (comma-separated)")
    ap.add_argument("--device", default="auto", help="auto (the GPU when there is one) | cpu | cuda | cuda:N")
    ap.add_argument("--bf16", action="store_true", help="bfloat16 autocast (on the CPU only when asked)")
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None, metavar="FILE", help="write the rates as JSON (params.yaml cost.rates)")
    args = ap.parse_args(argv)
    bad = [m for m in args.methods if m not in ARCHITECTURES]
    if bad or not args.methods:
        ap.error(f"--methods: expected xqg and/or translate, got {bad or 'nothing'}")
    for name in ("passages", "batch_size", "n_queries", "top_k", "max_new_tokens", "max_source_length",
                 "max_target_length"):
        if getattr(args, name) <= 0:
            ap.error(f"--{name.replace('_', '-')}: expected a positive number")
    if args.max_source_length < 2:
        ap.error("--max-source-length: expected at least 2")
    return args


def main():
    args = parse_args()
    setup(args.threads)
    run(args)


if __name__ == "__main__":
    run_stage(main)
