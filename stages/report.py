#!/usr/bin/env python
"""report: render docs/results.md, every table of results, from the committed metric files
(--metrics: retrieval, retrieval_parallel, transfer, tuning, generation, translation, train_xqg,
train_xdr, cost) and the scaling stage's CSVs (--plots: scaling.csv, contrasts.csv); the figures in
--plots are linked relative to --out. With --dataset NAME (xquad): the results of a second archive on
which only generation, tuning and the sweep run (transfer, coverage, tuning, generation and the scaling
CSVs). Reads no parameter. See xaug/report.py.
"""
import os
from pathlib import Path

from xaug.cli import run
from xaug.report import render, render_sweep, write


def arguments(ap):
    ap.add_argument("--metrics", default="metrics")
    ap.add_argument("--plots", default="plots")
    ap.add_argument("--out", default="docs/results.md")
    ap.add_argument("--dataset", default=None, help="a second archive's results (xquad); default: MLQA's")


def main(args, p, log):
    figures = Path(os.path.relpath(args.plots, Path(args.out).parent)).as_posix()
    text = render(args.metrics, args.plots, figures) if args.dataset is None else \
        render_sweep(args.metrics, args.plots, figures, args.dataset)
    write(args.out, text)
    log.info("%s: %d lines", args.out, text.count("\n"))


if __name__ == "__main__":
    run(main, __doc__, arguments, params=False)
