#!/usr/bin/env python
"""evaluate: search the index with the evaluation queries and score the run.

Writes a TREC run file, per-query measures (CSV) and metrics/retrieval.json: nDCG@10, RR@10,
R@1/5/20/100 (ir-measures) and answer recall in the first 2000/5000 tokens (R@2kt, R@5kt) per query
language, their macro average over `languages` ("avg"), and English apart ("en").
"""
import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from xaug.cli import run_stage, setup
from xaug.data import PIVOT, check_languages, read_trec_qrels
from xaug.io import atomic_path, read_json, read_jsonl, write_json
from xaug.metrics import evaluate_run, recall_tokens, summarise, write_run
from xaug.params import load_params, positive_int
from xaug.search import FaissSearcher, read_ids


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--system", default="baseline", help="name of the system in the metrics file")
    ap.add_argument("--index", default="data/index/baseline.faiss")
    ap.add_argument("--queries", default="data/embeddings/queries")
    ap.add_argument("--data", default="data/mlqa")
    ap.add_argument("--runs", default="data/runs")
    ap.add_argument("--metrics", default="metrics/retrieval.json")
    args = ap.parse_args()
    log = setup()
    p = load_params(args.params)
    data = Path(args.data)
    languages = check_languages(p.get_path("languages"), read_json(data / "stats.json")["languages"])
    depth = positive_int(p.get_path("evaluate.depth"), "evaluate.depth")
    searcher = FaissSearcher.load(args.index, p.get_path("index.search_params", ""))

    queries = {q["id"]: q for q in read_jsonl(data / "queries.jsonl") if q["split"] == "eval"}
    ids = read_ids(args.queries + ".ids.txt")
    vectors = np.load(args.queries + ".npy")
    keep = [i for i, q in enumerate(ids) if queries[q]["lang"] in set(languages) | {PIVOT}]
    ids = [ids[i] for i in keep]
    scores, ranked = searcher.search(vectors[keep], depth)
    ranking = dict(zip(ids, ranked))
    score_lists = {q: list(map(float, s[: len(r)])) for q, s, r in zip(ids, scores, ranked)}

    qrels = {q: rel for q, rel in read_trec_qrels(data / "qrels.eval.trec").items() if q in ranking}
    passages = {c["id"]: c["text"] for c in read_jsonl(data / "corpus.jsonl")}
    doc_tokens = {d: recall_tokens(t) for d, t in passages.items()}
    answers_by_qid = {a["qid"]: [recall_tokens(x) for x in a["answers"]] for a in read_jsonl(data / "answers.jsonl")}
    answers = {q: answers_by_qid.get(queries[q]["qid"], []) for q in ids}

    per_query = evaluate_run(ranking, score_lists, qrels, doc_tokens, answers)
    query_lang = {q: queries[q]["lang"] for q in ids}
    summary = summarise(per_query, query_lang, languages)

    runs = Path(args.runs)
    write_run(runs / f"{args.system}.trec", ranking, score_lists, args.system)
    frame = pd.DataFrame.from_dict(per_query, orient="index").rename_axis("query_id").reset_index()
    frame.insert(1, "lang", frame["query_id"].map(query_lang))
    with atomic_path(runs / f"{args.system}.per_query.csv") as tmp:
        frame.sort_values("query_id").to_csv(tmp, index=False, float_format="%.6g")

    write_json(args.metrics, {args.system: summary})
    avg = summary["avg"]
    log.info("%s cross-lingual avg: R@1 %.3f RR@10 %.3f R@100 %.3f R@2kt %.3f; en R@1 %.3f", args.system,
             avg["R@1"], avg["RR@10"], avg["R@100"], avg["R@2kt"], summary.get(PIVOT, {}).get("R@1", float("nan")))


if __name__ == "__main__":
    run_stage(main)
