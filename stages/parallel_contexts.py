#!/usr/bin/env python
"""parallel_contexts: the parallel_contexts method's texts for each target language (`languages`, or --lang).

For every English corpus passage, MLQA's context in that language that shares a question id with it:
a paragraph of the L Wikipedia around the aligned answer sentence, comparable text rather than a
translation of the English paragraph. Only passages with such a context are covered (MLQA has one
where it has L questions), so in the global corpus the relevant passages of in-set questions are
covered more often than distractors: report this method in the parallel setting, or beside its
coverage-keeping shuffled control. Writes <out>/<lang>.jsonl and <out>/<lang>.stats.json (coverage;
cost 0: nothing is generated).
"""
from pathlib import Path

from xaug.cli import run
from xaug.parallel import parallel_contexts
from xaug.formats import write_texts
from xaug.io import read_jsonl


def arguments(ap):
    ap.add_argument("--lang", nargs="+", default=None, help="target language codes (default: `languages`)")
    ap.add_argument("--data", default="data/mlqa")
    ap.add_argument("--out", default="data/generated/parallel_contexts")


def main(args, p, log):
    data = Path(args.data)
    corpus, contexts, links = (read_jsonl(data / f"{name}.jsonl") for name in ("corpus", "contexts", "links"))
    for lang in args.lang or p.get_path("languages"):
        rows, stats = parallel_contexts(corpus, contexts, links, lang)
        write_texts(args.out, lang, rows, stats)
        log.info("%s: %d of %d passages have a parallel context (%.0f%%)", lang, stats["covered"], stats["passages"],
                 100 * stats["coverage"])


if __name__ == "__main__":
    run(main, __doc__, arguments)
