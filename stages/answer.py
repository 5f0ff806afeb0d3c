#!/usr/bin/env python
"""answer: each method's nDCG@10 gain at k = 1..n target languages against what producing its items would
cost on the paper's corpus, on MLQA and XQuAD (xaug/answer.py).

Reads the scaling tables of both archives (the configured fusion, alpha tuned per k, all queries of the
parallel setting: on MLQA the setting where both ceilings are reported, on XQuAD the same as the global one)
and metrics/cost.json (device-hours by k: queries for the query side, translated passages for the passage
side; human-made ceilings priced as the generator they stand for). Writes --table (plots/answer.csv) and
--plot (plots/answer.png: gain against device-hours, one panel per archive).
"""
import pandas as pd

from xaug.answer import gain_and_cost
from xaug.cli import run
from xaug.formats import read_table, write_table
from xaug.io import read_json
from xaug.plots import plot_answer

SETTING = "parallel"


def arguments(ap):
    ap.add_argument("--scaling", nargs="+", metavar="NAME=CSV",
                    default=["MLQA=plots/scaling.csv", "XQuAD=plots/xquad/scaling.csv"])
    ap.add_argument("--cost", default="metrics/cost.json")
    ap.add_argument("--table", default="plots/answer.csv")
    ap.add_argument("--plot", default="plots/answer.png")


def main(args, p, log):
    cost = read_json(args.cost)
    tables = []
    for entry in args.scaling:
        name, _, path = entry.partition("=")
        tables.append(gain_and_cost(read_table(path), cost, name, SETTING))
    table = pd.concat(tables, ignore_index=True)
    write_table(args.table, table)
    inputs = cost["inputs"]
    plot_answer(table, args.plot, f"nDCG@10 gain against the cost of producing the items for "
                f"{inputs['passages'] / 1e6:.1f}M passages ({inputs['n_queries']} queries, or one translated "
                f"passage of {inputs['passage_words']:g} words, per passage and language) on {cost['device']}; "
                "bars: 95% CI over relevant passages; filled: Holm p < 0.05; numbers: k")
    for (dataset, method), part in table.groupby(["dataset", "method"], sort=False):
        last = part.iloc[-1]
        log.info("%s, %s: k=%d gain %+.3f [%+.3f, %+.3f] for %.4g device-hours", dataset, method, last["k"],
                 last["gain"], last["ci_low"], last["ci_high"], last["device_hours"])


if __name__ == "__main__":
    run(main, __doc__, arguments, params=False)
