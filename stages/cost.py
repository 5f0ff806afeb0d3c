#!/usr/bin/env python
"""cost: device-hours to augment the paper's corpus (cost.passages) for k = 1..cost.languages target
languages, by xQG (cost.n_queries queries per passage and language) vs by translating whole passages.

    xQG:         passages * k * n_queries * tokens_per_query / generated_tokens_per_s / 3600
    translation: passages * k * tokens_per_passage / translated_tokens_per_s / 3600

Rates and token statistics come from the pipeline's own runs (<generated-root>/xqg/*.stats.json,
<generated-root>/translate/*.stats.json, <data>/corpus.jsonl) or, per method, from cost.rates (a JSON
written by benchmarks/generation.py --out FILE). Writes --out (the formula, inputs, rates with their
device, hours per k; wall-clock derived, so a plain output rather than a DVC metric) and --plot
(hours vs k, log scale). See xaug/cost.py.
"""
from pathlib import Path

from xaug.cli import run
from xaug.cost import CostSettings, estimate, pipeline_statistics, plot, read_rates, read_stats, rounded
from xaug.io import read_jsonl, write_json
from xaug.params import from_params


def arguments(ap):
    ap.add_argument("--data", default="data/mlqa")
    ap.add_argument("--generated-root", default="data/generated")
    ap.add_argument("--out", default="metrics/cost.json")
    ap.add_argument("--plot", default="plots/cost_scale.png")


def main(args, p, log):
    settings = from_params(CostSettings, p.get_path("cost"))
    root = Path(args.generated_root)
    stats = pipeline_statistics(read_jsonl(Path(args.data) / "corpus.jsonl"), read_stats(root / "xqg", "xqg"),
                                read_stats(root / "translate", "translate"))
    report = rounded(estimate(settings, stats, read_rates(settings.rates) if settings.rates else None))
    write_json(args.out, report)
    plot(report, args.plot)
    last = report["by_k"][-1]
    log.info("k=%d on %s: xQG %.4g device-hours, translation %.4g (%.2fx)", last["k"], report["device"],
             last["xqg_hours"], last["translate_hours"], report["ratio_translate_to_xqg"])


if __name__ == "__main__":
    run(main, __doc__, arguments)
