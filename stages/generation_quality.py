#!/usr/bin/env python
"""generation_quality: does generation work? Per language, into metrics/generation.json:

- round-trip R@1 / R@10: each generated query (embedded with the baseline xDR: <items>/<lang>) retrieving its own
  passage among all corpus passages, beside the same figure for the real held-out questions of the
  same passages (`real_R@1`, `real_R@10`) and for generated queries of those passages only;
- `in_script`: share of queries mostly in the language's script (Latin for de, en, es, vi);
- `chrF`: sentence chrF (sacrebleu) of generated queries against the real held-out questions of
  the same passage; `duplicates`: share of a passage's queries repeating an earlier one;
- cost: generated tokens (wall seconds and queries/s stay in <generated>/<lang>.stats.json, out of the
  metrics that `dvc metrics diff` compares).

xqg.quality_passages > 0 measures the texts of a seeded sample of at most that many passages (each
query still retrieves among every passage; `passages_sampled` in the report when the corpus is larger).
The real held-out questions are evaluation-split questions, read for this report only
(`reads_heldout` in the report says so); nothing is trained or chosen on them.
"""
from xaug.cli import run
from xaug.genquality import generation_report
from xaug.io import write_json
from xaug.params import check_int


def arguments(ap):
    ap.add_argument("--method", default="xqg")
    ap.add_argument("--data", default="data/mlqa")
    ap.add_argument("--passages", default="data/embeddings/passages")
    ap.add_argument("--queries", default="data/embeddings/queries")
    ap.add_argument("--generated", default=None, help="default data/generated/<method>")
    ap.add_argument("--items", default=None, help="folder of the <lang> items folders (default: --generated)")
    ap.add_argument("--metrics", default="metrics/generation.json")


def main(args, p, log):
    sample = check_int(p.get_path("xqg.quality_passages", 0), "xqg.quality_passages", minimum=0, note="0 = all")
    report = generation_report(args.generated or f"data/generated/{args.method}", p.get_path("languages"),
                               args.data, args.passages, args.queries, log=log, items=args.items, sample=sample,
                               seed=p.seed())
    write_json(args.metrics, {args.method: report, "reads_heldout": "evaluation-split questions, for this report only; "
                                                                    "nothing is trained or chosen on them"})


if __name__ == "__main__":
    run(main, __doc__, arguments)
