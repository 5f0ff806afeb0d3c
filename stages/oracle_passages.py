#!/usr/bin/env python
"""oracle_passages: the translate_oracle method's texts for one language (--lang).

For every English corpus passage, MLQA's human-translated parallel context in that language (the
context sharing a question id with it), the ceiling of passage generation; passages without one are
not augmented for that language. Writes <out>/<lang>.jsonl and <out>/<lang>.stats.json (coverage;
cost 0: nothing is generated).
"""
import argparse
from pathlib import Path

from xaug.cli import run_stage, setup
from xaug.io import read_jsonl, write_json, write_jsonl
from xaug.translation import oracle_translations


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lang", required=True)
    ap.add_argument("--data", default="data/mlqa")
    ap.add_argument("--out", default="data/generated/translate_oracle")
    args = ap.parse_args()
    log = setup()
    data = Path(args.data)
    rows, stats = oracle_translations(read_jsonl(data / "corpus.jsonl"), read_jsonl(data / "contexts.jsonl"),
                                      read_jsonl(data / "links.jsonl"), args.lang)
    write_jsonl(Path(args.out) / f"{args.lang}.jsonl", rows)
    write_json(Path(args.out) / f"{args.lang}.stats.json", stats)
    log.info("%s: %d of %d passages have a parallel context (%.0f%%)", args.lang, stats["covered"], stats["passages"],
             100 * stats["coverage"])


if __name__ == "__main__":
    run_stage(main)
