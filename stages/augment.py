#!/usr/bin/env python
"""augment: p' = (1 - alpha) E(p) + alpha * G(p) over the first n_languages target languages.

Reads the baseline passage embeddings and <generated>/<lang>.npz of one --method; alpha, weight (fixed:
G is the mean of all items, so the generated part weighs alpha whatever the number of languages |
per_item: their sum), renormalize and n_queries_used come from augment.<method> in params.yaml, `auto`
values from the tune stage's --tuning file. Writes <out>.npy + <out>.ids.txt for the index stage.
"""
import argparse
from pathlib import Path

import numpy as np

from xaug.cli import run_stage, setup
from xaug.fusion import augment, check_n_languages
from xaug.io import read_json, save_matrix
from xaug.methods import check_methods, fusion_settings, load_method
from xaug.params import load_params
from xaug.search import read_ids, write_ids


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--method", required=True)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--passages", default="data/embeddings/passages")
    ap.add_argument("--generated", default=None, help="default data/generated/<method>")
    ap.add_argument("--tuning", default="metrics/tuning.json", help="the tune stage's choices (for `auto`)")
    ap.add_argument("--out", default=None, help="default data/augmented/<method>")
    args = ap.parse_args()
    log = setup()
    p = load_params(args.params)
    check_methods([args.method])
    languages = p.get_path("languages")
    k = check_n_languages(p.get_path("n_languages"), languages)
    tuning = read_json(args.tuning) if Path(args.tuning).is_file() else None
    settings = fusion_settings(p, args.method, tuning)
    inputs = load_method(args.generated or f"data/generated/{args.method}", args.method, languages[:k])
    fused = augment(np.load(args.passages + ".npy"), inputs.raw, settings)
    out = args.out or f"data/augmented/{args.method}"
    save_matrix(out + ".npy", fused)
    write_ids(out + ".ids.txt", read_ids(args.passages + ".ids.txt"))
    log.info("%s: augmented with %d language(s) %s, alpha %.3g, %s weight%s", args.method, k, languages[:k],
             settings.alpha, settings.weight,
             "" if settings.n_items_used is None else f", {settings.n_items_used} items per language")


if __name__ == "__main__":
    run_stage(main)
