#!/usr/bin/env python
"""prepare: normalise the MLQA archive into BEIR-style JSONL, TREC qrels, answers and training pairs.

Writes to --out: corpus.jsonl (the paragraphs in data.corpus_language, English by default),
contexts.jsonl (all languages), queries.jsonl, links.jsonl (shared question id -> context per language,
answers), answers.jsonl, train_pairs.jsonl, qrels.eval.trec, qrels.tune.trec, stats.json and
dataset.json (the corpus language, which later stages read from here, and the languages present).
Every row carries its split: `train`, `tune` (data.tune_fraction of the training articles, for
choosing settings off the evaluation set; never trained on) or `eval`. Every language in the archive
is kept; `languages` filters later, so changing it does not re-run this stage.
"""
from pathlib import Path

from xaug.cli import run
from xaug.data import MlqaArchive, prepare, save_prepared
from xaug.io import read_json
from xaug.languages import name as language_name


def arguments(ap):
    ap.add_argument("--raw", default="data/raw", help="download stage output (default: %(default)s)")
    ap.add_argument("--out", default="data/mlqa", help="output folder (default: %(default)s)")


def main(args, p, log):
    source = read_json(Path(args.raw) / "source.json")
    archive = MlqaArchive(Path(args.raw) / source["archive"])
    data = prepare(archive, p.get_path("data.splits"), p.get_path("data.holdout_fraction"),
                   seed=p.seed(), max_articles=p.get_path("data.max_articles"),
                   tune_fraction=p.get_path("data.tune_fraction"),
                   corpus_language=p.get_path("data.corpus_language", "en"))
    data.stats["source"] = {k: source[k] for k in ("source", "kind", "sha256")}
    save_prepared(data, args.out)
    s = data.stats
    log.info("corpus %d %s passages; articles %s; eval queries %s; tune queries %s", s["corpus_passages"],
             language_name(data.corpus_language), s["articles"], s["queries"]["eval"], s["queries"]["tune"])


if __name__ == "__main__":
    run(main, __doc__, arguments)
