#!/usr/bin/env python
"""prepare: normalise the MLQA archive into BEIR-style JSONL, TREC qrels, answers and training pairs.

Writes to --out: corpus.jsonl (the paragraphs in data.corpus_language, English by default),
contexts.jsonl (all languages), queries.jsonl, links.jsonl (shared question id -> context per language,
answers), answers.jsonl, train_pairs.jsonl, qrels.eval.trec, qrels.tune.trec, stats.json and
dataset.json (the corpus language, which later stages read from here, and the languages present).
Every row carries its split: `train`, `tune` (data.tune_fraction of the training articles, for
choosing settings off the evaluation set; never trained on) or `eval`. Every language in the archive
is kept; `languages` filters later, so changing it does not re-run this stage. --group xquad reads the
same keys from the `xquad` group (XQuAD in the MLQA layout).
"""
from xaug.cli import run
from xaug.data_settings import named_group, prepare_settings
from xaug.languages import name as language_name
from xaug.preparation import prepare_download, save_prepared


def arguments(ap):
    ap.add_argument("--raw", default="data/raw", help="download stage output (default: %(default)s)")
    ap.add_argument("--out", default="data/mlqa", help="output folder (default: %(default)s)")
    ap.add_argument("--group", default="data", help="the params group of the archive (default: %(default)s)")


def main(args, p, log):
    with named_group(args.group):
        data = prepare_download(args.raw, prepare_settings(p.get_path(args.group)), p.seed())
    save_prepared(data, args.out)
    s = data.stats
    log.info("corpus %d %s passages; articles %s; eval queries %s; tune queries %s", s["corpus_passages"],
             language_name(data.corpus_language), s["articles"], s["queries"]["eval"], s["queries"]["tune"])


if __name__ == "__main__":
    run(main, __doc__, arguments)
