#!/usr/bin/env python
"""generation_quality: does generation work? Per language, into metrics/generation.json:

- round-trip R@1 / R@10: each generated query (embedded with the baseline xDR) retrieving its own
  passage among all corpus passages, beside the same figure for the real held-out questions of the
  same passages (`real_R@1`, `real_R@10`) and for generated queries of those passages only;
- `in_script`: share of queries mostly in the language's script (Latin for de, en, es, vi);
- `chrF`: sentence chrF (sacrebleu) of generated queries against the real held-out questions of
  the same passage; `duplicates`: share of a passage's queries repeating an earlier one;
- cost: generated tokens (wall seconds and queries/s stay in <generated>/<lang>.stats.json, out of the
  metrics that `dvc metrics diff` compares).

The real held-out questions are evaluation-split questions, read for this report only
(`reads_heldout` in the report says so); nothing is trained or chosen on them.
"""
import argparse
from pathlib import Path

import numpy as np

from xaug.cli import run_stage, setup
from xaug.genquality import chrf_against_real, duplicate_rate, in_script, real_questions_by_passage, round_trip
from xaug.io import read_json, read_jsonl, write_json
from xaug.params import load_params
from xaug.search import read_ids


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--method", default="xqg")
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--data", default="data/mlqa")
    ap.add_argument("--passages", default="data/embeddings/passages")
    ap.add_argument("--queries", default="data/embeddings/queries")
    ap.add_argument("--generated", default=None, help="default data/generated/<method>")
    ap.add_argument("--metrics", default="metrics/generation.json")
    args = ap.parse_args()
    log = setup()
    p = load_params(args.params)
    data = Path(args.data)
    folder = Path(args.generated or f"data/generated/{args.method}")
    passages, pids = np.load(args.passages + ".npy"), read_ids(args.passages + ".ids.txt")
    row_of = {pid: i for i, pid in enumerate(pids)}
    queries, links = read_jsonl(data / "queries.jsonl"), read_jsonl(data / "links.jsonl")
    pivot = {l["qid"]: l["contexts"]["en"] for l in links}
    real_vectors, real_ids = np.load(args.queries + ".npy"), read_ids(args.queries + ".ids.txt")
    real_row = {q: i for i, q in enumerate(real_ids)}
    qmeta = {q["id"]: q for q in queries}
    report = {}
    for lang in p.get_path("languages"):
        rows = {r["id"]: r["queries"] for r in read_jsonl(folder / f"{lang}.jsonl")}
        arrays = np.load(folder / f"{lang}.npz")
        items, counts = arrays["items"], arrays["counts"]
        owner = np.repeat(np.arange(len(pids)), counts)
        vectors = np.concatenate([items[i, : counts[i]] for i in range(len(pids))]) if counts.sum() else items[:0, 0]
        real = real_questions_by_passage(queries, links, lang)
        held = [r for r in real_ids if qmeta[r]["lang"] == lang]
        evalset = np.isin(owner, [row_of[pid] for pid in real])
        flat = [q for pid in pids for q in rows[pid]]
        stats = read_json(folder / f"{lang}.stats.json")
        report[lang] = {
            **{k: v for k, v in round_trip(vectors, owner.tolist(), passages).items()},
            **{f"heldout_passages_{k}": v for k, v in round_trip(vectors[evalset], owner[evalset].tolist(), passages).items()},
            **{f"real_{k}": v for k, v in round_trip(real_vectors[[real_row[r] for r in held]],
                                                      [row_of[pivot[qmeta[r]["qid"]]] for r in held], passages).items()},
            "in_script": round(float(np.mean([in_script(q, lang) for q in flat])), 4) if flat else float("nan"),
            "chrF": round(chrf_against_real({pid: rows[pid] for pid in real}, real), 2),
            "duplicates": round(duplicate_rate(list(rows.values())), 4),
            "queries": len(flat), "generated_tokens": stats["generated_tokens"],
        }
        log.info("%s %s: round-trip R@10 %.3f (real questions %.3f), in script %.2f, chrF %.1f, duplicates %.2f",
                 args.method, lang, report[lang]["R@10"], report[lang]["real_R@10"], report[lang]["in_script"],
                 report[lang]["chrF"], report[lang]["duplicates"])
    langs = list(report)
    report["avg"] = {k: round(float(np.mean([report[l][k] for l in langs])), 4)
                     for k in ("R@1", "R@10", "real_R@1", "real_R@10", "in_script", "chrF", "duplicates")}
    write_json(args.metrics, {args.method: report, "reads_heldout": "evaluation-split questions, for this report only; "
                                                                    "nothing is trained or chosen on them"})


if __name__ == "__main__":
    run_stage(main)
