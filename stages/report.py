#!/usr/bin/env python
"""report: render docs/results.md, every table of results, from the committed metric files
(--metrics: retrieval, retrieval_parallel, transfer, tuning, generation, translation, train_xqg,
train_xdr, cost) and the scaling stage's CSVs (--plots: scaling.csv, contrasts.csv); the figures in
--plots are linked relative to --out. Reads no parameter. See xaug/report.py.
"""
import os
from pathlib import Path

from xaug.cli import run
from xaug.report import render, write


def arguments(ap):
    ap.add_argument("--metrics", default="metrics")
    ap.add_argument("--plots", default="plots")
    ap.add_argument("--out", default="docs/results.md")


def main(args, p, log):
    figures = Path(os.path.relpath(args.plots, Path(args.out).parent)).as_posix()
    text = render(args.metrics, args.plots, figures)
    write(args.out, text)
    log.info("%s: %d lines", args.out, text.count("\n"))


if __name__ == "__main__":
    run(main, __doc__, arguments, params=False)
