#!/usr/bin/env python
"""prepare: normalise the MLQA archive into BEIR-style JSONL, TREC qrels, answers and training pairs.

Writes to --out: corpus.jsonl (English paragraphs), contexts.jsonl (all languages), queries.jsonl,
links.jsonl (shared question id -> context per language, answers), answers.jsonl, train_pairs.jsonl,
qrels.eval.trec, qrels.tune.trec and stats.json. Every row carries its split: `train`, `tune`
(data.tune_fraction of the training articles, for choosing settings off the evaluation set; never
trained on) or `eval`. Every language in the archive is kept; `languages` filters later, so changing
it does not re-run this stage.
"""
import argparse
from pathlib import Path

from xaug.cli import run_stage, setup
from xaug.data import MlqaArchive, prepare, save_prepared
from xaug.io import read_json
from xaug.params import load_params


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--raw", default="data/raw", help="download stage output (default: %(default)s)")
    ap.add_argument("--out", default="data/mlqa", help="output folder (default: %(default)s)")
    args = ap.parse_args()
    log = setup()
    p = load_params(args.params)
    source = read_json(Path(args.raw) / "source.json")
    archive = MlqaArchive(Path(args.raw) / source["archive"])
    data = prepare(archive, p.get_path("data.splits"), p.get_path("data.holdout_fraction"),
                   seed=p.seed(), max_articles=p.get_path("data.max_articles"),
                   tune_fraction=p.get_path("data.tune_fraction"))
    data.stats["source"] = {k: source[k] for k in ("source", "kind", "sha256")}
    save_prepared(data, args.out)
    s = data.stats
    log.info("corpus %d English passages; articles %s; eval queries %s; tune queries %s", s["corpus_passages"],
             s["articles"], s["queries"]["eval"], s["queries"]["tune"])


if __name__ == "__main__":
    run_stage(main)
