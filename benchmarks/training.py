#!/usr/bin/env python
"""Seconds per training step of the warm query generator and the warm translator, and where the time goes.

Builds each model as the pipeline's training stage does (``xqg.warm`` / ``translate.warm`` of params.yaml:
the xDR backbone's encoder, frozen, its top layers copied into the decoder, the pruned vocabulary and the
softmax's share of it), encodes the sources that the timed steps read once (as training does), and runs the
schedule's first batches: ``--warmup`` untimed steps, then ``--steps`` timed ones (forward, backward,
gradient clipping, AdamW). Several ``--params`` files are variants, timed in one process with their steps
interleaved (step i of each, then step i + 1), so the machine's load hits them alike. It prints the seconds
per step and the loss of each step (the loss curve a faster step must reproduce) and, with ``--profile``,
torch's operator tables (self CPU time) over four more steps of each variant. ``--out`` writes the figures
as JSON. The process runs with the training stages' glibc malloc settings (``xaug.cli.MALLOC_ENV``: freed
memory stays in the heap, so the large tensors a step allocates need no fresh pages); ``--system-malloc``
times it with glibc's defaults instead. Needs the prepared data of the pipeline (``dvc repro prepare``).

    python benchmarks/training.py --which xqg --steps 20 --profile
    python benchmarks/training.py --params params.yaml /tmp/variant.yaml --out /tmp/training.json
"""
import argparse
import sys
import time
from pathlib import Path

import torch
import yaml

from xaug.cli import malloc_settings_on, reexec_with_malloc_settings, run_stage, setup
from xaug.device import use_bf16
from xaug.errors import ConfigError
from xaug.io import read_jsonl, write_json
from xaug.parallel_text import training_examples as translation_examples
from xaug.training import adamw
from xaug.translator_training import training_pairs
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
        pairs, others = training_pairs(params["translate"], contexts, queries, links, pivot)
        examples = translation_examples(pairs + others, pivot)
        group = "translate.warm"
    section = params["xqg" if which == "xqg" else "translate"]["warm"]
    return examples, corpus, WarmSettings.from_params(section, params["seed"], group)


def rng_state() -> tuple:
    """torch's CPU random state, and the current CUDA device's where there is one (dropout draws there)."""
    return torch.get_rng_state(), torch.cuda.get_rng_state() if torch.cuda.is_available() else None


def set_rng_state(state: tuple) -> None:
    torch.set_rng_state(state[0])
    if state[1] is not None:
        torch.cuda.set_rng_state(state[1])


class Run:
    """One variant's model, optimizer and batches, ready to take timed steps."""

    def __init__(self, which: str, data: Path, params: dict, label: str, steps: int, warmup: int, extra: int = 0):
        examples, corpus, settings = examples_for(which, data, params)
        gen, _, _ = build_warm(examples, params["xdr"], settings, [c["text"] for c in corpus])
        schedule = training_schedule(example_lengths(gen, examples), settings, [e["passage_id"] for e in examples])
        if len(schedule) < warmup + steps + extra:
            raise ConfigError(f"--steps: the committed schedule has {len(schedule)} steps, fewer than "
                              f"{warmup + steps + extra}")
        self.which, self.label, self.settings, self.gen, self.examples = which, label, settings, gen, examples
        self.batches = schedule[: warmup + steps + extra]
        ids = sorted({examples[i]["passage_id"] for b in self.batches for i in b})
        sources = {e["passage_id"]: e["source"] for e in examples}
        started = time.perf_counter()
        self.states = dict(zip(ids, gen.encode_passages([sources[i] for i in ids])))
        self.encode_seconds = time.perf_counter() - started
        self.copy = dict(zip(ids, gen.copy_sources([sources[i] for i in ids])))
        self.targets = gen.encode_targets([e["target"] for e in examples], [e["lang"] for e in examples])
        self.params = gen.trainable()
        self.optimizer = adamw(self.params, settings.lr)
        gen.train(True)
        torch.manual_seed(settings.seed)
        self.rng = rng_state()  # each variant draws its own dropout stream, interleaved or alone
        self.losses, self.times = [], []

    def step(self, batch, timed: bool = True) -> None:
        ex, gen = self.examples, self.gen
        set_rng_state(self.rng)
        t0 = time.perf_counter()
        loss = gen.loss([self.states[ex[i]["passage_id"]] for i in batch], [self.targets[i] for i in batch],
                        [self.copy[ex[i]["passage_id"]] for i in batch])
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.params, 1.0, foreach=True)
        self.optimizer.step()
        self.losses.append(float(loss.detach()))
        if timed:
            self.times.append(time.perf_counter() - t0)
        self.rng = rng_state()

    def report(self, steps: int) -> dict:
        times, gen = sorted(self.times), self.gen
        return {"model": self.which, "params": self.label, "steps": steps, "batch_size": self.settings.batch_size,
                "batch_by": self.settings.batch_by, "output_vocabulary": self.settings.output_vocabulary,
                "threads": torch.get_num_threads(),
                "malloc": "heap" if malloc_settings_on() else "system",
                "bf16": use_bf16(self.settings.bf16, gen.device, f"{self.settings.group}.bf16"),
                "vocabulary": gen.vocab_size, "softmax": gen.outputs,
                "sources_per_batch": round(sum(len({self.examples[i]["passage_id"] for i in b})
                                               for b in self.batches) / len(self.batches), 2),
                "trainable_parameters": sum(p.numel() for p in self.params),
                "seconds_per_step_median": round(times[len(times) // 2], 4),
                "seconds_per_step_mean": round(sum(times) / len(times), 4),
                "encode_seconds": round(self.encode_seconds, 2), "losses": [round(x, 4) for x in self.losses]}


def benchmark(which: str, data: Path, variants: list[tuple[str, dict]], steps: int, warmup: int, profile: bool,
              log) -> list[dict]:
    """Each variant's seconds per step, the variants' steps interleaved (step i of every variant, then
    step i + 1), so a change in the machine's load hits them alike."""
    runs = [Run(which, data, params, label, steps, warmup, 4 if profile else 0) for label, params in variants]
    for i in range(warmup + steps):
        for run in runs:
            run.step(run.batches[i], timed=i >= warmup)
    reports = [run.report(steps) for run in runs]
    for r in reports:
        log.info("%s (%s): %.3f s/step (median of %d; mean %.3f), softmax over %d of %d pieces, %.1f sources a "
                 "batch, bf16 %s", which, r["params"], r["seconds_per_step_median"], steps,
                 r["seconds_per_step_mean"], r["softmax"], r["vocabulary"], r["sources_per_batch"], r["bf16"])
    if profile:
        from torch.profiler import ProfilerActivity, profile as torch_profile

        for run in runs:
            with torch_profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
                for b in run.batches[warmup + steps:]:
                    run.step(b, timed=False)
            print(f"== {which} ({run.label})")
            print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=20))
            print(prof.key_averages(group_by_input_shape=True).table(sort_by="self_cpu_time_total", row_limit=30))
    return reports


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--which", choices=["xqg", "translator", "both"], default="both")
    ap.add_argument("--data", default="data/mlqa", help="the prepare stage's folder")
    ap.add_argument("--params", nargs="+", default=[str(REPO / "params.yaml")],
                    help="one params.yaml per variant; several are timed interleaved, step by step")
    ap.add_argument("--steps", type=int, default=20, help="timed steps")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--profile", action="store_true", help="print torch's operator table over 4 more steps")
    ap.add_argument("--out", default=None, help="write the figures as JSON")
    ap.add_argument("--system-malloc", action="store_true",
                    help="glibc's default malloc settings, not the training stages' (the allocator's share of a step)")
    args = ap.parse_args()
    log = setup()
    if args.steps < 1 or args.warmup < 0:
        raise ConfigError("--steps: at least 1 (and --warmup at least 0)")
    torch.set_num_threads(args.threads)
    variants = [(path, yaml.safe_load(Path(path).read_text())) for path in args.params]
    which = ["xqg", "translator"] if args.which == "both" else [args.which]
    report = {w: benchmark(w, Path(args.data), variants, args.steps, args.warmup, args.profile, log) for w in which}
    if args.out:
        write_json(args.out, report)


if __name__ == "__main__":
    if "--system-malloc" not in sys.argv[1:]:
        reexec_with_malloc_settings()  # as the training stages run
    run_stage(main)
