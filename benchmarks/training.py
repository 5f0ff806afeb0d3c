#!/usr/bin/env python
"""Seconds per training step of the warm query generator and the warm translator, and where the time goes.

Builds each model as the pipeline's training stage does (``xqg.warm`` / ``translate.warm`` of params.yaml:
the xDR backbone's encoder, frozen, its top layers copied into the decoder, the pruned output vocabulary),
encodes the sources that the timed steps read once (as training does), and runs the committed schedule's
first batches: ``--warmup`` untimed steps, then ``--steps`` timed ones (forward, backward, gradient
clipping, AdamW). It prints the seconds per step and the loss of each timed step (the loss curve a faster
step must reproduce) and, with ``--profile``, torch's operator table (self CPU time) over a few steps.
``--out`` writes the figures as JSON. Needs the prepared data of the pipeline (``dvc repro prepare``).

    python benchmarks/training.py --which xqg --steps 20 --profile
    python benchmarks/training.py --which translator --data data/mlqa --out /tmp/training.json
"""
import argparse
import time
from pathlib import Path

import torch
import yaml

from xaug.cli import run_stage, setup
from xaug.device import use_bf16
from xaug.errors import ConfigError
from xaug.io import read_jsonl, write_json
from xaug.parallel_text import parallel_pairs, training_examples as translation_examples
from xaug.training import adamw
from xaug.warm import WarmSettings
from xaug.warm_training import build_warm, example_lengths, training_schedule
from xaug.xqg_training import training_examples as query_examples

REPO = Path(__file__).resolve().parents[1]


def examples_for(which: str, data: Path, params: dict) -> tuple[list[dict], list[dict], WarmSettings]:
    """The training examples of the query generator (``xqg``) or the translator, the corpus and the settings."""
    if not (data / "corpus.jsonl").is_file():
        raise ConfigError(f"{data}: no prepared data (run `dvc repro prepare`, or pass --data)")
    contexts, queries = read_jsonl(data / "contexts.jsonl"), read_jsonl(data / "queries.jsonl")
    links, corpus = read_jsonl(data / "links.jsonl"), read_jsonl(data / "corpus.jsonl")
    pivot = params["data"]["corpus_language"]
    if which == "xqg":
        examples = query_examples(contexts, queries, links, params["xqg"].get("context_languages", [pivot]))
        group = "xqg.warm"
    else:
        examples = translation_examples(parallel_pairs(contexts, links, queries, "train", pivot=pivot), pivot)
        group = "translate.warm"
    section = params["xqg" if which == "xqg" else "translate"]["warm"]
    return examples, corpus, WarmSettings.from_params(section, params["seed"], group)


def benchmark(which: str, data: Path, params: dict, steps: int, warmup: int, profile: bool, log) -> dict:
    examples, corpus, settings = examples_for(which, data, params)
    gen, _, _ = build_warm(examples, params["xdr"], settings, [c["text"] for c in corpus])
    schedule = training_schedule(example_lengths(gen, examples), settings)
    batches = schedule[: warmup + steps]
    if len(batches) < warmup + steps:
        raise ConfigError(f"--steps: the committed schedule has {len(batches)} steps, fewer than {warmup + steps}")
    ids = sorted({examples[i]["passage_id"] for b in batches for i in b})
    sources = {e["passage_id"]: e["source"] for e in examples}
    started = time.perf_counter()
    states = dict(zip(ids, gen.encode_passages([sources[i] for i in ids])))
    encode_seconds = time.perf_counter() - started
    copy = dict(zip(ids, gen.copy_sources([sources[i] for i in ids])))
    targets = gen.encode_targets([e["target"] for e in examples], [e["lang"] for e in examples])
    params_ = gen.trainable()
    optimizer = adamw(params_, settings.lr)
    gen.train(True)
    torch.manual_seed(settings.seed)

    def step(batch):
        loss = gen.loss([states[examples[i]["passage_id"]] for i in batch], [targets[i] for i in batch],
                        [copy[examples[i]["passage_id"]] for i in batch])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params_, 1.0, foreach=True)
        optimizer.step()
        return float(loss.detach())

    losses = [step(b) for b in batches[:warmup]]
    times = []
    for b in batches[warmup:]:
        t0 = time.perf_counter()
        losses.append(step(b))
        times.append(time.perf_counter() - t0)
    times.sort()
    report = {"model": which, "steps": steps, "batch_size": settings.batch_size, "threads": torch.get_num_threads(),
              "bf16": use_bf16(settings.bf16, gen.device, f"{settings.group}.bf16"), "vocabulary": gen.vocab_size,
              "trainable_parameters": sum(p.numel() for p in params_),
              "seconds_per_step_median": round(times[len(times) // 2], 4),
              "seconds_per_step_mean": round(sum(times) / len(times), 4),
              "encode_seconds": round(encode_seconds, 2), "losses": [round(x, 4) for x in losses]}
    log.info("%s: %.3f s/step (median of %d; mean %.3f), %d trainable parameters, vocabulary %d, bf16 %s", which,
             report["seconds_per_step_median"], steps, report["seconds_per_step_mean"],
             report["trainable_parameters"], report["vocabulary"], report["bf16"])
    if profile:
        from torch.profiler import ProfilerActivity, profile as torch_profile

        more = schedule[warmup + steps: warmup + steps + 4]
        missing = sorted({examples[i]["passage_id"] for b in more for i in b} - set(states))
        states.update(zip(missing, gen.encode_passages([sources[i] for i in missing])))
        copy.update(zip(missing, gen.copy_sources([sources[i] for i in missing])))
        with torch_profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
            for b in more:
                step(b)
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=20))
        print(prof.key_averages(group_by_input_shape=True).table(sort_by="self_cpu_time_total", row_limit=30))
    return report


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--which", choices=["xqg", "translator", "both"], default="both")
    ap.add_argument("--data", default="data/mlqa", help="the prepare stage's folder")
    ap.add_argument("--params", default=str(REPO / "params.yaml"))
    ap.add_argument("--steps", type=int, default=20, help="timed steps")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--profile", action="store_true", help="print torch's operator table over 4 more steps")
    ap.add_argument("--out", default=None, help="write the figures as JSON")
    args = ap.parse_args()
    log = setup()
    if args.steps < 1 or args.warmup < 0:
        raise ConfigError("--steps: at least 1 (and --warmup at least 0)")
    torch.set_num_threads(args.threads)
    params = yaml.safe_load(Path(args.params).read_text())
    which = ["xqg", "translator"] if args.which == "both" else [args.which]
    report = {w: benchmark(w, Path(args.data), params, args.steps, args.warmup, args.profile, log) for w in which}
    if args.out:
        write_json(args.out, report)


if __name__ == "__main__":
    run_stage(main)
