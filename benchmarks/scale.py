#!/usr/bin/env python
"""How each stage's time and memory grow with the corpus: the MLQA branch of the pipeline on synthetic
archives of about P = 1k, 10k and 100k English paragraphs.

A synthetic archive replicates the source archive (MLQA layout, every language file) r times. Copy r >= 1
of a paragraph appends one sentence drawn from another paragraph of its language (so it is a new passage:
prepare keys contexts by text), its article's title gets `` [r]`` and its questions' ids ``-r<r>`` in every
file, so questions stay linked across languages and answers stay in their paragraphs: about P passages and
the questions of the source archive times P / its passages.

Each size runs in its own copy of the repository (tracked files) with ``params.yaml`` set by ``PRESET`` and
``--set`` (quality does not matter here: the tiny xDR, a few training steps, three languages, one query per
passage). The stages run one after the other as ``dvc repro`` would order them (dvc.yaml's DAG), without DVC
itself; each stage's wall time and the peak resident memory of its largest process (``wait4``) go to
``--out`` (JSON), a table on stdout and ``--plot`` (time and memory against P, log-log), with each stage's
growth exponent between consecutive sizes. A stage that fails (out of memory, a time limit) is recorded
with its last error line, and the stages after it are not run for that size. Each stage's user + system
CPU seconds (all its processes) are recorded beside its wall time: they are what the machine's cores
spent, and they move far less than wall time when something else shares the machine. So is the peak of its
processes' summed proportional set size (``peak_pss_mb``, sampled every second; none for a stage that ends
before the first sample): the memory the stage holds in all, where forked workers share their parent's pages.
Each sitting records the machine's speed on a fixed workload before its first stage and after its last
(``machine_speed``): the same code's CPU seconds moved by up to a fifth between days, so rows of different
sittings compare only with it beside them.

A size's progress is kept in its work folder (``progress.json``, after every stage). ``--resume`` keeps
the work folder and its finished stages and goes on from the first unfinished one; the text stages
resume from their finished chunks (``xaug/chunks.py``), so a stage interrupted (SIGINT / SIGTERM to the
benchmark stops the stage too) records its ``attempts`` and the wall seconds of the interrupted ones
(``interrupted_seconds``); its other figures are those of the attempt that finished. ``--previous``
takes the sizes not run now from an earlier ``--out`` (each size names the commit it ran). ``--variant LABEL
--only STAGE ...`` (with ``--resume``) runs those stages of a finished size again with the ``--set`` values for
that run alone (e.g. evaluate's index), their rows under the size's ``variants`` and their growth in the report.

    python benchmarks/scale.py --source ../shared/data/MLQA_V1_dev.zip --sizes 1000 --out /tmp/scale.json
    python benchmarks/scale.py --sizes 10000 --work /tmp/scale --keep --previous /tmp/scale.json \\
        --set "scaling.candidate_index='IVF100,Flat'" --set "scaling.candidate_search='nprobe=16'" \\
        --out /tmp/scale.json --plot /tmp/scale.png

docs/testing.md has the command of the committed report (an index per size for the candidate lists and for
evaluate).
"""
from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path


REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from xaug.cli import run_stage, setup  # noqa: E402
from xaug.data import MlqaArchive  # noqa: E402
from xaug.errors import ConfigError  # noqa: E402

# Settings where quality does not matter, only cost (each a params.yaml key; --set adds or overrides).
PRESET = {
    "languages": ["ar", "de", "zh"], "n_languages": 3,
    "xdr.model": "tiny",
    "xqg.n_queries": 1, "tune.n_queries_used": [1],
    "xqg.warm.max_steps": 20, "xqg.warm.check_every": 0, "xqg.warm.decoder_layers": 2,
    "translate.warm.max_steps": 20, "translate.warm.check_every": 0,
    "scaling.permutations": 2,
    "scaling.candidates": 200,  # the engine for large corpora (docs/design.md): memory queries x K
    "scaling.seeds": [],  # one draw of the trained models (the seeds stages would repeat training and generation)
}
STOP_GRACE = 10.0  # seconds a stopped stage has to clean up after SIGTERM before SIGKILL
PSS_EVERY = 1.0  # seconds between samples of a stage's summed PSS (a peak shorter than that may be missed)
# the MLQA branch: every stage but XQuAD's and those that need it (the answer, the reports, the cost table)
SKIP = re.compile(r"^(xquad_|answer$|report$|cost$)")
SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s*")


def sentences(text: str) -> list[str]:
    return [s.strip() for s in SENTENCE_END.split(text) if len(s.strip()) >= 4]


def _pick(pool: list[str], text: str, r: int) -> str:
    """Copy ``r``'s sentence for a paragraph: ``pool`` (distinct sentences) from a stable hash of ``text`` on,
    one further per copy, so the copies of a paragraph differ (while r < len(pool)) in every file and process."""
    start = int(hashlib.sha256(text.encode("utf-8")).hexdigest()[:12], 16)
    return pool[(start + r) % len(pool)]


def synthetic_archive(source, replicas: int, out: Path) -> dict:
    """Write ``replicas`` copies of ``source`` (MLQA layout) into the zip ``out``; returns its counts."""
    archive = MlqaArchive(source)
    split = archive.splits()[0]
    pools: dict[str, list[str]] = {}
    for c, q in archive.pairs(split):
        if c == q:
            pools[c] = sorted({s for a in archive.read(split, c, q)["data"] for p in a["paragraphs"]
                               for s in sentences(p["context"])}) or ["(no sentence)"]
    counts = {"replicas": replicas, "paragraphs": {}, "questions": {}}
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for c, q in archive.pairs(split):
            doc = archive.read(split, c, q)
            pool = pools.get(c) or ["(no sentence)"]
            data = []
            for r in range(replicas):
                for article in doc["data"]:
                    title = article.get("title", "")
                    paragraphs = []
                    for para in article.get("paragraphs", []):
                        extra = "" if r == 0 else " " + _pick(pool, para["context"], r)
                        text = para["context"] + extra
                        qas = [{**qa, "id": qa["id"] if r == 0 else f"{qa['id']}-r{r}"} for qa in para.get("qas", [])]
                        paragraphs.append({**para, "context": text, "qas": qas})
                    data.append({**article, "title": title if r == 0 else f"{title} [{r}]", "paragraphs": paragraphs})
            name = f"MLQA_V1/{split}/{split}-context-{c}-question-{q}.json"
            zf.writestr(name, json.dumps({**doc, "data": data}, ensure_ascii=False))
            if c == q:
                counts["paragraphs"][c] = sum(len(a["paragraphs"]) for a in data)
                counts["questions"][c] = sum(len(p["qas"]) for a in data for p in a["paragraphs"])
    return counts


def set_params(path: Path, values: dict) -> None:
    """Apply ``values`` (key -> value, or a string as ``-S`` gives it) to the params file ``path`` with DVC's
    own ``-S`` (struct mode: an unknown key is refused)."""
    from dvc.utils.hydra import apply_overrides

    pairs = [f"{k}={v if isinstance(v, str) else json.dumps(v)}" for k, v in values.items()]
    try:
        apply_overrides(path, pairs)
    except Exception as exc:  # hydra's and omegaconf's errors; the key is in the message or its cause
        text = " ".join(str(e) for e in (exc, exc.__cause__) if e).splitlines()[0]
        raise ConfigError(f"--set: {text}") from None


def pipeline_stages(root: Path) -> list[tuple[str, str]]:
    """(name, command) of the benchmarked stages of ``root``'s dvc.yaml, dependencies first."""
    import networkx as nx
    from dvc.repo import Repo

    graph = Repo(str(root)).index.graph  # edges: a stage -> the stages it depends on
    order = reversed(list(nx.topological_sort(graph)))
    return [(s.name, s.cmd) for s in order if not SKIP.match(s.name)]


class Interrupted(Exception):
    """SIGINT or SIGTERM reached the benchmark while a stage ran (the stage was stopped with it)."""


def _interrupt(signum, frame):
    raise Interrupted(signal.Signals(signum).name)


def group_pss_mb(group: int) -> float:
    """The proportional set size (MB) of every live process of process group ``group``, summed: the memory the
    group holds together, each page shared between its processes (a forked worker's inherited pages) counted
    once in all. Processes that end while they are read are skipped."""
    total_kb = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
            if int(stat[stat.rindex(")") + 2:].split()[2]) != group:  # the fields after the command: state ppid pgrp
                continue
            rollup = Path(entry.path, "smaps_rollup").read_text()
        except (OSError, ValueError):
            continue
        total_kb += next((int(line.split()[1]) for line in rollup.splitlines() if line.startswith("Pss:")), 0)
    return total_kb / 1024


def run_stage_command(cmd: str, cwd: Path, env: dict, timeout: float) -> dict:
    """Wall seconds, CPU seconds (user + system of all its processes), peak RSS (MB, the largest process),
    the peak of its processes' summed PSS (MB, sampled every ``PSS_EVERY`` seconds: what the stage holds in
    all, a forked worker's pages shared with its parent counted once) and status of one stage command. An
    interruption stops the stage's process group and re-raises with the row so far (``exit`` None)."""
    started = time.perf_counter()
    log = cwd / "stage.log"
    peak_pss, sampled = None, started
    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd, shell=True, cwd=cwd, env=env, stdout=fh, stderr=subprocess.STDOUT,
                                start_new_session=True)
        deadline = started + timeout
        try:
            while True:
                pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    break
                now = time.perf_counter()
                if now > deadline:
                    pid, status, usage = _stop(proc.pid)
                    break
                if now - sampled >= PSS_EVERY:
                    peak_pss, sampled = max(peak_pss or 0.0, group_pss_mb(proc.pid)), now
                time.sleep(0.2)
        except Interrupted as exc:
            _stop(proc.pid)
            exc.row = {"seconds": round(time.perf_counter() - started, 1), "exit": None}
            raise
    seconds = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    row = {"seconds": round(seconds, 1), "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 1),
           "peak_rss_mb": round(usage.ru_maxrss / 1024), "exit": code}
    if peak_pss is not None:  # a stage that ends before the first sample has no summed-PSS figure, not a zero
        row["peak_pss_mb"] = round(peak_pss)
    if code != 0:
        lines = [l for l in log.read_text(errors="replace").splitlines() if l.strip()]
        row["error"] = "time limit" if seconds > timeout else (lines[-1][:300] if lines else f"exit {code}")
    return row


def _stop(pid: int, grace: float = STOP_GRACE):
    """Stop a stage's process group: SIGTERM (the stage harness unwinds, removing its temporary outputs), then,
    for whatever of the group is left after ``grace`` seconds, SIGKILL; -> ``os.wait4``'s (pid, status, usage)
    of the group's leader (the shell, which may end before the stage it runs)."""
    os.killpg(pid, signal.SIGTERM)
    done, until = None, time.perf_counter() + grace
    while time.perf_counter() < until:
        if done is None:
            reaped = os.wait4(pid, os.WNOHANG)
            done = reaped if reaped[0] else None
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            break  # the whole group is gone
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    return done or os.wait4(pid, 0)


def _add_attempt(before: dict | None, row: dict) -> dict:
    """``row`` (an attempt of a stage) after the earlier interrupted attempts ``before``: their count and wall
    seconds (``interrupted_seconds``; a killed stage's CPU time and memory are not known); the row's own figures
    are its attempt's (a text stage resumes from its finished chunks, so they leave those chunks out)."""
    if not before or before.get("exit") is not None:
        return row
    return {**row, "attempts": before.get("attempts", 1) + 1, "interrupted_seconds": before.get("interrupted_seconds", 0)}


def _commit() -> str:
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
    return done.stdout.strip() or "unknown"


# what --sync leaves as the work folder has it: its own params and the stages' outputs that git tracks in the
# checkout (the committed run's metrics and plots would replace the size's own, e.g. the tuning a resumed
# scaling stage reads)
SYNC_SKIP = ("params.yaml", "dvc.lock", "metrics/", "plots/")


def _copy_tracked(work: Path, skip: tuple[str, ...] = ()) -> None:
    """The checkout's tracked files into ``work``, but those named in ``skip`` or under a folder of it (``a/``)."""
    files = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    for name in files:
        if not any(name == s or s.endswith("/") and name.startswith(s) for s in skip):
            (work / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, work / name)


def _prepare_work(work: Path, size: int, args, replicas: int) -> dict:
    """A fresh copy of the repository's tracked files, its synthetic archive and params; the size's counts."""
    shutil.rmtree(work, ignore_errors=True)
    _copy_tracked(work)
    subprocess.run(["git", "init", "-q"], cwd=work, check=True)  # DVC wants a repository to read its DAG
    set_params(work / "params.yaml", {**PRESET, **dict(kv.split("=", 1) for kv in args.set),
                                      "data.source": "synthetic.zip"})  # a bad --set fails before the archive
    return synthetic_archive(args.source, replicas, work / "synthetic.zip")


def _redo(result: dict, work: Path, args) -> dict:
    """``--redo STAGE``: forget ``STAGE`` and every stage after it (kept under ``redone``, with the --set they
    ran with), apply the --set values that differ from the work folder's to its params.yaml, and remove the text
    stages' resumable chunks (``data/work``), so that a stage run again is timed from its start, not from the
    chunks its last run left."""
    names = [name for name, _ in pipeline_stages(work)]
    if args.redo not in names:
        raise ConfigError(f"--redo: {args.redo!r} is not a benchmarked stage ({', '.join(names)})")
    later = names[names.index(args.redo):]
    redone = {name: result["stages"].pop(name) for name in later if name in result["stages"]}
    result.setdefault("redone", []).append({"set": result.get("set"), "stages": redone})
    changed = [kv for kv in args.set if kv not in (result.get("set") or [])]
    if changed:
        set_params(work / "params.yaml", dict(kv.split("=", 1) for kv in changed))
    result["set"] = args.set
    shutil.rmtree(work / "data" / "work", ignore_errors=True)
    (work / "progress.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


def _stage_env(work: Path) -> dict:
    """The stages' environment: the work folder's own xaug, not the editable install's (the checkout may change
    while the benchmark runs)."""
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "PYTHONPATH": str(work.resolve())}


def _log_row(log, size: int, name: str, row: dict, note: str = "") -> None:
    log.info("P ~ %d  %-32s %8.1f s %8.1f cpu-s %7d MB%s%s", size, name, row["seconds"], row["cpu_seconds"],
             row["peak_rss_mb"], note, f"  FAILED: {row['error']}" if row["exit"] else "")


def _run_variant(result: dict, work: Path, args, log) -> dict:
    """``--variant LABEL --only STAGE ...``: run only those stages of a finished size again, in the DAG's order,
    with the --set values applied to its params.yaml for that run alone (restored afterwards), and keep their rows
    under ``variants[LABEL]`` (with the --set values), beside the size's own rows, which stay as they were.
    The stages' outputs are the variant's afterwards (``--redo`` of the first of them runs them as the size has
    them again)."""
    names = [name for name, _ in pipeline_stages(work)]
    unknown = [name for name in args.only if name not in names]
    if unknown:
        raise ConfigError(f"--only: {', '.join(map(repr, unknown))} not a benchmarked stage ({', '.join(names)})")
    params = work / "params.yaml"
    saved = params.read_text()
    rows = {}
    speed = machine_speed()
    log.info("P ~ %d: machine speed: %s", result["target"], speed)
    try:
        set_params(params, dict(kv.split("=", 1) for kv in args.set))
        for name, cmd in pipeline_stages(work):
            if name not in args.only:
                continue
            row = {**run_stage_command(cmd, work, _stage_env(work), args.timeout),
                   "commit": result.get("code", result.get("commit"))}
            rows[name] = row
            _log_row(log, result["target"], name, row, f"  (variant {args.variant})")
            if row["exit"]:
                break
    finally:
        params.write_text(saved)
    result.setdefault("variants", {})[args.variant] = {"set": args.set, "stages": rows, "machine_speed": speed}
    (work / "progress.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


CALIBRATION_ROUNDS = 20  # of the machine-speed check below (about 2 s on the 2-core AMD EPYC)


def machine_speed(rounds: int | None = None) -> dict:
    """Seconds of a fixed workload, run before and after a size's stages in each sitting: the same code's CPU
    seconds on this machine (a shared host) moved by up to a fifth between days, so sizes or sittings compare
    only with this beside them. ``matmul_s``: float32 matrix products (BLAS, the threads torch and faiss would use);
    ``python_s``: an interpreted loop (the harness, tokenizers' Python side)."""
    import numpy as np

    rounds = CALIBRATION_ROUNDS if rounds is None else rounds
    a = np.random.default_rng(0).standard_normal((768, 768)).astype(np.float32)
    start = time.perf_counter()
    for _ in range(rounds * 10):
        a = np.tanh(a @ a * 1e-2)
    matmul = time.perf_counter() - start
    start = time.perf_counter()
    total = 0
    for i in range(rounds * 250_000):
        total += i % 7
    return {"matmul_s": round(matmul, 3), "python_s": round(time.perf_counter() - start, 3)}


def split_queries(work: Path) -> dict:
    """Per split (train, tune, eval), the questions in the languages the size evaluates (params.yaml's
    ``languages`` and the corpus language), from prepare's ``data/mlqa/stats.json``; {} before prepare ran."""
    import yaml

    stats = work / "data" / "mlqa" / "stats.json"
    if not stats.is_file():
        return {}
    counts = json.loads(stats.read_text())
    evaluated = set(yaml.safe_load((work / "params.yaml").read_text())["languages"]) | {counts["corpus_language"]}
    return {split: sum(n for lang, n in by_language.items() if lang in evaluated)
            for split, by_language in counts["queries"].items()}


def table(results: list[dict]) -> list[str]:
    """The stages' wall seconds and peak memory per size, a Markdown table: ``-`` where a size has no row of the
    stage, ``interrupted`` where its only attempt was stopped (``--resume`` goes on from it)."""
    def cell(row: dict | None) -> str:
        if row is None:
            return "-"
        if "seconds" not in row:
            return f"interrupted after {row.get('interrupted_seconds', 0)} s"
        return f"{row['seconds']} / {row['peak_rss_mb']}" + (" (failed)" if row["exit"] else "")

    names = list(dict.fromkeys(n for r in results for n in r["stages"]))
    return ["| stage | " + " | ".join(f"P = {r['passages']}: s / MB" for r in results) + " |",
            "|---|" + "---|" * len(results),
            *(f"| {name} | " + " | ".join(cell(r["stages"].get(name)) for r in results) + " |" for name in names)]


def run_size(size: int, args, log) -> dict:
    archive = MlqaArchive(args.source)
    split = archive.splits()[0]
    paragraphs = sum(len(a["paragraphs"]) for a in archive.read(split, "en", "en")["data"])
    replicas = max(1, round(size / paragraphs))
    work = Path(args.work) / f"P{size}"
    progress = work / "progress.json"
    if getattr(args, "variant", None) and not progress.is_file():
        raise ConfigError(f"--variant: {progress}: no size to run it on (run the size first, with --keep)")
    if args.resume and progress.is_file():
        result = json.loads(progress.read_text())
        if getattr(args, "variant", None):
            if args.sync:
                _copy_tracked(work, skip=SYNC_SKIP)
                result["code"] = _commit()
            return _run_variant(result, work, args, log)
        if args.redo:
            result = _redo(result, work, args)
        elif result.get("set") != args.set:
            raise ConfigError(f"--resume: {progress} was run with --set {result.get('set')}, not {args.set}")
        log.info("P ~ %d: resuming %s (%d stages finished)", size, work,
                 sum(1 for r in result["stages"].values() if r.get("exit") == 0))
        if args.sync:  # the checkout's code for the stages still to run (its params and outputs stay the size's own)
            _copy_tracked(work, skip=SYNC_SKIP)
            result["code"] = _commit()
    else:
        counts = _prepare_work(work, size, args, replicas)
        result = {"target": size, "replicas": replicas, "passages": counts["paragraphs"].get("en"),
                  "questions": counts["questions"], "commit": _commit(), "set": args.set, "stages": {}}
        progress.write_text(json.dumps(result, indent=2) + "\n")
    env = _stage_env(work)
    stages = pipeline_stages(work)
    first = next((name for name, _ in stages if result["stages"].get(name, {}).get("exit") != 0), None)
    if first is not None:  # a sitting that runs stages: the machine's speed before and after them
        speed = machine_speed()
        result.setdefault("machine_speed", []).append({"before": first, **speed})
        log.info("P ~ %d: machine speed before %s: %s", size, first, speed)
    log.info("P ~ %d: %d replicas, %s English paragraphs", size, replicas, result["passages"])
    for name, cmd in stages:
        before = result["stages"].get(name)
        if before and before.get("exit") == 0:
            continue
        try:
            # the commit whose code the work folder holds (the checkout may have moved on since it was copied)
            row = _add_attempt(before, {**run_stage_command(cmd, work, env, args.timeout),
                                        "commit": result.get("code", result.get("commit"))})
        except Interrupted as exc:
            so_far = before if before and before.get("exit") is None else {}
            result["stages"][name] = {"exit": None, "attempts": so_far.get("attempts", 0) + 1,
                                      "interrupted_seconds": round(so_far.get("interrupted_seconds", 0)
                                                                   + exc.row["seconds"], 1)}
            result["machine_speed"].append({"after": name, **machine_speed()})
            progress.write_text(json.dumps(result, indent=2) + "\n")
            log.info("P ~ %d  %-32s interrupted after %.1f s (%s); --resume goes on from it",
                     size, name, exc.row["seconds"], exc)
            raise
        result["stages"][name] = row
        progress.write_text(json.dumps(result, indent=2) + "\n")
        _log_row(log, size, name, row)
        if row["exit"]:
            break
    if first is not None:
        result["machine_speed"].append({"after": name, **machine_speed()})
    result["split_queries"] = split_queries(work)
    progress.write_text(json.dumps(result, indent=2) + "\n")
    if not args.keep and not args.resume:
        shutil.rmtree(work, ignore_errors=True)
    return result


def growth(results: list[dict]) -> dict:
    """Per stage, the exponent b of time ~ P^b (wall seconds; ``cpu``: user + system CPU seconds, where both
    sizes recorded them) and of peak memory between consecutive sizes that both finished."""
    out = {}
    for a, b in zip(results, results[1:]):
        ratio = math.log(b["passages"] / a["passages"])
        for name, row in b["stages"].items():
            old = a["stages"].get(name)
            if old and old["exit"] == 0 and row["exit"] == 0 and old["seconds"] > 0.5:
                entry = {"from": a["passages"], "to": b["passages"],
                         "time": round(math.log(max(row["seconds"], 1e-3) / old["seconds"]) / ratio, 2),
                         "memory": round(math.log(row["peak_rss_mb"] / max(old["peak_rss_mb"], 1)) / ratio, 2)}
                if (old.get("cpu_seconds") or 0) > 0.5 and row.get("cpu_seconds"):
                    entry["cpu"] = round(math.log(max(row["cpu_seconds"], 1e-3) / old["cpu_seconds"]) / ratio, 2)
                out.setdefault(name, []).append(entry)
    return out


MEMORY_LABEL = {"peak_pss_mb": "peak memory, GB (summed PSS of a stage's processes)",
                "peak_rss_mb": "peak resident memory, GB (largest process)"}


def plot(results: list[dict], path: Path, top: int = 10) -> None:
    """Time and peak memory against P (log-log) of the ``top`` stages that take longest at the largest P,
    one colour each, with a dotted line of slope 1 (linear growth) through the slowest stage's first point."""
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def ok(r, name):
        return name in r["stages"] and r["stages"][name]["exit"] == 0

    last = results[-1]["stages"]
    names = sorted((n for n in last if last[n]["exit"] == 0), key=lambda n: -last[n]["seconds"])[:top]
    # the summed PSS of a stage's processes where every plotted row has it, else the largest process's RSS
    memory = "peak_pss_mb" if all("peak_pss_mb" in r["stages"][n] for r in results for n in names if ok(r, n)) \
        else "peak_rss_mb"
    colours = plt.get_cmap("tab10").colors
    fig, axes = plt.subplots(1, 2, figsize=(13, 5))
    for i, name in enumerate(names):
        xs = [r["passages"] for r in results if ok(r, name)]
        rows = [r["stages"][name] for r in results if ok(r, name)]
        style = dict(marker="o", color=colours[i % len(colours)], linestyle="-" if i < len(colours) else "--")
        axes[0].plot(xs, [row["seconds"] for row in rows], label=name, **style)
        axes[1].plot(xs, [row[memory] / 1024 for row in rows], **style)
    if names and len(results) > 1:
        xs = [r["passages"] for r in results]
        first = next(r["stages"][names[0]]["seconds"] for r in results if ok(r, names[0]))
        axes[0].plot(xs, [first * x / xs[0] for x in xs], ":", color="black", label="linear in P")
    for ax, label in zip(axes, ("seconds (2 cores)", MEMORY_LABEL[memory])):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("English paragraphs P (synthetic MLQA archive)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3, which="both")
    axes[1].yaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%.1f"))
    axes[1].yaxis.set_minor_formatter(matplotlib.ticker.FormatStrFormatter("%.1f"))
    fig.legend(*axes[0].get_legend_handles_labels(), loc="center left", bbox_to_anchor=(0.80, 0.5), fontsize=8)
    fig.suptitle(f"Cost of the {len(names)} slowest stages at the largest P against the corpus size "
                 "(benchmarks/scale.py; failed stages not plotted)")
    fig.tight_layout(rect=(0, 0, 0.80, 0.95))
    fig.savefig(path, dpi=120)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--source", default=str(REPO.parent / "shared" / "data" / "MLQA_V1_dev.zip"))
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="another params.yaml value")
    ap.add_argument("--work", default="/tmp/xaug-scale", help="scratch folder (one repository copy per size)")
    ap.add_argument("--timeout", type=float, default=3600, help="seconds a stage may run")
    ap.add_argument("--keep", action="store_true", help="keep each size's work folder")
    ap.add_argument("--resume", action="store_true",
                    help="go on from a size's progress.json in --work (keeps the work folder)")
    ap.add_argument("--sync", action="store_true",
                    help="with --resume: copy the checkout's code into the work folder first (not params.yaml, "
                         "dvc.lock, metrics/ or plots/, which stay the size's own)")
    ap.add_argument("--redo", default=None, metavar="STAGE",
                    help="with --resume: run STAGE and every stage after it again, with the --set values given (those "
                         "that differ from the work folder's are applied to its params.yaml; the stages before keep "
                         "their results)")
    ap.add_argument("--variant", default=None, metavar="LABEL",
                    help="with --resume and --only: run those stages of a finished size again with the --set values "
                         "(for that run alone), their rows kept under variants[LABEL]")
    ap.add_argument("--only", nargs="+", default=[], metavar="STAGE", help="the stages a --variant runs")
    ap.add_argument("--previous", default=None, metavar="JSON",
                    help="an earlier --out: its sizes not in --sizes join the report")
    ap.add_argument("--out", default=None, help="write the figures as JSON")
    ap.add_argument("--plot", default=None, help="write the figure (PNG)")
    args = ap.parse_args()
    if args.redo and not args.resume:
        ap.error("--redo needs --resume (a work folder to go on from)")
    if bool(args.variant) != bool(args.only) or (args.variant and (not args.resume or args.redo)):
        ap.error("--variant and --only go together, with --resume and without --redo")
    log = setup()
    if not Path(args.source).is_file():
        raise ConfigError(f"--source: {args.source}: no such archive")
    previous = []
    if args.previous:
        try:
            old = json.loads(Path(args.previous).read_text())
            previous = [{"set": old.get("set", []), **r} for r in old["sizes"] if r["target"] not in args.sizes]
        except (OSError, ValueError, KeyError) as exc:
            raise ConfigError(f"--previous: {args.previous}: {exc}") from None
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    try:
        results = [run_size(size, args, log) for size in sorted(args.sizes)]
    except Interrupted as exc:
        log.error("interrupted (%s): each size's progress is in its work folder; --resume goes on", exc)
        sys.exit(130)
    results = sorted(previous + results, key=lambda r: r["target"])
    report = {"preset": PRESET, "sizes": results, "growth": growth(results)}
    labels = dict.fromkeys(label for r in results for label in r.get("variants", {}))
    if labels:  # each variant's growth over the sizes that ran it
        report["variant_growth"] = {label: growth([{"passages": r["passages"], "stages": r["variants"][label]["stages"]}
                                                   for r in results if label in r.get("variants", {})])
                                    for label in labels}
    if args.out:  # before the table: the figures are kept whatever prints
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print("\n".join(table(results)))
    if args.plot:
        plot(results, Path(args.plot))


if __name__ == "__main__":
    run_stage(main)
