#!/usr/bin/env python
"""The candidate-based engine against the dense one on a finished run: the scaling stage of a workspace
(its data/ and metrics/tuning.json, e.g. a clean clone after `make repro`) run again with
``scaling.candidates`` = 0 (every passage) and each K of ``--candidates`` (each list's top K found exactly,
``scaling.candidate_index: Flat``), and with each K and each ``--index`` (``FACTORY|PARAMS``: the lists'
top K from faiss indexes, ``scaling.candidate_index`` and ``candidate_search``), each in a scratch folder with
this repository's params.yaml set there (the way ``dvc exp run -S`` sets it). Per run: the stage's wall time
and peak memory, and how far its gains table (plots/scaling.csv) is from the dense one: the largest absolute
difference of any per-row mean measure and gain, the share of rows equal to 1e-9, and the share of Holm
decisions (p_holm < 0.05) that agree. Writes ``--out`` (JSON) and a table on stdout.

    python benchmarks/candidates.py --workspace ../cc/main --candidates 100 200 400 \\
        --out benchmarks/results/candidates.json
    python benchmarks/candidates.py --workspace /tmp/scale/P10000 --params /tmp/scale/P10000/params.yaml \\
        --candidates 200 --index 'IVF256,Flat|nprobe=16' --out /tmp/c.json

``--compare BEFORE AFTER`` compares two gains tables already written (two runs' plots/scaling.csv, e.g. the
scale benchmark's work folder before and after a change of the engine) the same way, and per variant.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from scale import run_stage_command  # noqa: E402

KEYS = ["setting", "method", "variant", "weight", "renormalize", "k", "group"]


def stage_command(root: Path) -> str:
    """The scaling stage's command, from ``root``'s dvc.yaml, with the repository's script."""
    import yaml

    cmd = " ".join(yaml.safe_load((root / "dvc.yaml").read_text())["stages"]["scaling"]["cmd"].split())
    return cmd.replace("python stages/", f"{sys.executable} {REPO}/stages/")


def run_name(k: int, index: str = "Flat", search: str = "") -> str:
    return f"k{k}" if index == "Flat" else f"k{k}-{index}-{search}".replace(",", "_").replace("=", "")


def run_k(workspace: Path, scratch: Path, k: int, timeout: float, params: Path = REPO / "params.yaml",
          index: str = "Flat", search: str = "") -> dict:
    """The scaling stage with ``scaling.candidates`` = k (and ``candidate_index`` / ``candidate_search``) in
    ``scratch`` (data/ and metrics/ linked from the workspace; ``params`` there with K set, plots/ and the
    stage's JSON outputs written there)."""
    from dvc.utils.hydra import apply_overrides

    folder = scratch / run_name(k, index, search)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    shutil.copy(params, folder / "params.yaml")  # the run's parameters, but for K and the candidate index
    apply_overrides(folder / "params.yaml", [f"scaling.candidates={k}", f"++scaling.candidate_index='{index}'",
                                             f"++scaling.candidate_search='{search}'"])
    (folder / "data").symlink_to((workspace / "data").resolve())
    (folder / "metrics").mkdir()
    shutil.copy(workspace / "metrics" / "tuning.json", folder / "metrics" / "tuning.json")
    row = run_stage_command(stage_command(REPO), folder, dict(os.environ), timeout)
    row.update(k=k, candidate_index=index, candidate_search=search, run=folder.name)
    return row


def compare(dense: pd.DataFrame, other: pd.DataFrame) -> dict:
    """How far ``other``'s gains table is from ``dense``'s (the same rows, matched on KEYS)."""
    merged = dense.merge(other, on=KEYS, suffixes=("", "_c"))
    assert len(merged) == len(dense) == len(other), (len(merged), len(dense), len(other))
    means = [c for c in dense.columns if c.startswith(("nDCG", "RR", "R@")) and c in other.columns]
    gains = [c for c in dense.columns if c.startswith("delta_")]
    holm = [c for c in dense.columns if c.startswith("p_holm_")]
    diff = {c: float(np.nanmax(np.abs(merged[c] - merged[c + "_c"]))) for c in means + gains}
    same = np.isclose(merged[means + gains].to_numpy(float), merged[[c + "_c" for c in means + gains]].to_numpy(float),
                      rtol=0, atol=1e-9, equal_nan=True).all(1)
    decided = [(merged[c] < 0.05) == (merged[c + "_c"] < 0.05) for c in holm]
    worst = pd.DataFrame({c: (merged[c] - merged[c + "_c"]).abs() for c in means}).max(axis=1)
    return {"rows": int(len(merged)), "rows_equal": round(float(same.mean()), 4),
            "max_abs_mean_by_method": {m: round(float(v), 6) for m, v in worst.groupby(merged["method"]).max().items()},
            "max_abs_mean": round(max(diff[c] for c in means), 6),
            "max_abs_gain": round(max(diff[c] for c in gains), 6),
            "max_abs_gain_nDCG@10": round(diff.get("delta_nDCG@10", float("nan")), 6),
            "holm_decisions_agree": round(float(np.mean(pd.concat(decided))), 4) if decided else None}


def compare_tables(before: Path, after: Path, out: Path) -> None:
    """``--compare``: ``compare`` of two gains tables, over all rows and per variant, to ``out`` and stdout."""
    one, two = pd.read_csv(before), pd.read_csv(after)
    report = {"before": str(before), "after": str(after), "all": compare(one, two),
              "by_variant": {v: compare(one[one["variant"] == v], two[two["variant"] == v])
                             for v in dict.fromkeys(one["variant"])}}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(pd.DataFrame({"all": report["all"], **report["by_variant"]}).T.drop(columns="max_abs_mean_by_method")
          .to_string())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workspace", type=Path, help="a finished run (data/, metrics/tuning.json)")
    ap.add_argument("--candidates", type=int, nargs="+", help="values of K (each >= evaluate.depth)")
    ap.add_argument("--compare", type=Path, nargs=2, metavar=("BEFORE", "AFTER"),
                    help="only compare two gains tables (plots/scaling.csv) already written")
    ap.add_argument("--params", type=Path, default=REPO / "params.yaml",
                    help="the run's parameters (default: this commit's; e.g. a scale benchmark workspace's)")
    ap.add_argument("--index", nargs="*", default=[], metavar="FACTORY|PARAMS",
                    help="candidate indexes run with each K, e.g. 'IVF256,Flat|nprobe=16'")
    ap.add_argument("--scratch", type=Path, default=Path("/tmp/xaug-candidates"))
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--timeout", type=float, default=3600)
    args = ap.parse_args()
    if args.compare:
        compare_tables(*args.compare, args.out)
        return
    if args.workspace is None or not args.candidates:
        ap.error("--workspace and --candidates are required (or --compare)")
    runs = [(k, "Flat", "") for k in [0, *args.candidates]]
    runs += [(k, *(spec.split("|", 1) + [""])[:2]) for spec in args.index for k in args.candidates]
    rows = []
    for k, index, search in runs:
        rows.append(run_k(args.workspace, args.scratch, k, args.timeout, args.params, index, search))
        if rows[-1]["exit"] != 0:
            sys.exit(f"error: scaling with candidates={k}, candidate_index={index!r}: {rows[-1].get('error')}")
        print({key: rows[-1][key] for key in ("run", "seconds", "peak_rss_mb") if key in rows[-1]}, flush=True)
    tables = {r["run"]: pd.read_csv(args.scratch / r["run"] / "plots" / "scaling.csv") for r in rows}
    for r in rows:
        r.update(compare(tables["k0"], tables[r["run"]]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"workspace": str(args.workspace), "results": rows}, indent=1) + "\n")
    print(pd.DataFrame(rows).set_index("run").to_string())


if __name__ == "__main__":
    main()
