#!/usr/bin/env python
"""real_questions: the real_questions method's texts for each target language (`languages`, or --lang).

For every corpus passage, the archive's own questions in that language whose relevant passage it is
(every split), with the question id of each (`sources`): the ceiling of query generation, scored
leave-question-out (a query's own question never augments any passage: xaug/leave_out.py). Writes
<out>/<lang>.jsonl and <out>/<lang>.stats.json (coverage: passages with a question, and with two, which
is what a question's own passage keeps once it is left out; cost 0: nothing is generated).
"""
from pathlib import Path

from xaug.cli import run
from xaug.formats import write_texts
from xaug.io import read_jsonl
from xaug.real_questions import real_questions


def arguments(ap):
    ap.add_argument("--lang", nargs="+", default=None, help="target language codes (default: `languages`)")
    ap.add_argument("--data", default="data/mlqa")
    ap.add_argument("--out", default="data/generated/real_questions")


def main(args, p, log):
    data = Path(args.data)
    corpus, queries, links = (read_jsonl(data / f"{name}.jsonl") for name in ("corpus", "queries", "links"))
    for lang in args.lang or p.get_path("languages"):
        rows, stats = real_questions(corpus, queries, links, lang)
        write_texts(args.out, lang, rows, stats)
        log.info("%s: %d of %d passages have a real question (%.0f%%), %d have two or more (what a left-out "
                 "question's passage keeps)", lang, stats["covered"], stats["passages"], 100 * stats["coverage"],
                 stats["covered_after_leave_out"])


if __name__ == "__main__":
    run(main, __doc__, arguments)
