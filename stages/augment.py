#!/usr/bin/env python
"""augment: p' = (1 - alpha) E(p) + alpha * G(p) over the first n_languages target languages.

Reads the baseline passage embeddings and <items>/<lang> of one --method; alpha, weight (fixed:
G is the mean of all items, so the generated part weighs alpha whatever the number of languages |
per_item: their sum), renormalize and n_queries_used come from augment.<method> in params.yaml, `auto`
values from the tune stage's --tuning file. Writes <out>.npy + <out>.ids.txt for the index stage, and
<out>.leave_out.npz: for a method whose items are the evaluated questions (real_questions), each passage
fused without each of its questions' items, which the evaluate stage scores instead (leave-question-out;
empty for the other methods).
"""
from pathlib import Path

from xaug.cli import run
import numpy as np

from xaug.formats import read_embeddings, write_embeddings, write_leave_out
from xaug.fusion import augment
from xaug.io import read_json
from xaug.leave_out import question_left_out
from xaug.methods import check_methods, fusion_settings, load_method


def arguments(ap):
    ap.add_argument("--method", required=True)
    ap.add_argument("--passages", default="data/embeddings/passages")
    ap.add_argument("--generated", default=None, help="the texts' stats (cost): default data/generated/<method>")
    ap.add_argument("--items", default=None, help="the <lang> items folders (default: --generated)")
    ap.add_argument("--tuning", default="metrics/tuning.json", help="the tune stage's choices (for `auto`)")
    ap.add_argument("--out", default=None, help="default data/augmented/<method>")


def main(args, p, log):
    check_methods([args.method])
    languages = p.get_path("languages")  # with n_languages, checked when params.yaml is loaded
    k = p.get_path("n_languages")
    tuning = read_json(args.tuning) if Path(args.tuning).is_file() else None
    settings = fusion_settings(p, args.method, tuning)
    inputs = load_method(args.generated or f"data/generated/{args.method}", args.method, languages[:k], args.items)
    passages, ids = read_embeddings(args.passages)
    out = args.out or f"data/augmented/{args.method}"
    if inputs.sources is not None:
        questions, cols, vectors = question_left_out(passages, inputs.raw, inputs.sources, settings)
        log.info("%s: %d questions left out of %d passages", args.method, len(questions), len(set(cols.tolist())))
    else:
        questions, cols, vectors = [], np.zeros(0, np.int64), np.zeros((0, passages.shape[1]), np.float32)
    write_leave_out(f"{out}.leave_out.npz", questions, [ids[c] for c in cols], vectors)
    write_embeddings(out, augment(passages, inputs.raw, settings), ids)
    log.info("%s: augmented with %d language(s) %s, alpha %.3g, %s weight%s", args.method, k, languages[:k],
             settings.alpha, settings.weight,
             "" if settings.n_items_used is None else f", {settings.n_items_used} items per language")


if __name__ == "__main__":
    run(main, __doc__, arguments)
