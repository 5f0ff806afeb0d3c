#!/usr/bin/env python
"""augment: p' = (1 - alpha) E(p) + alpha * pool_i E(g_i) over the first n_languages target languages.

Reads the baseline passage embeddings and <generated>/<lang>.npz of one --method; alpha, pool (sum |
mean), renormalize and n_queries_used come from augment.<method> in params.yaml. Writes
<out>.npy + <out>.ids.txt for the index stage.
"""
import argparse

import numpy as np

from xaug.cli import run_stage, setup
from xaug.io import save_matrix
from xaug.fusion import augment
from xaug.methods import fusion_settings, load_method
from xaug.params import load_params
from xaug.search import read_ids, write_ids


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--method", required=True)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--passages", default="data/embeddings/passages")
    ap.add_argument("--generated", default=None, help="default data/generated/<method>")
    ap.add_argument("--out", default=None, help="default data/augmented/<method>")
    args = ap.parse_args()
    log = setup()
    p = load_params(args.params)
    languages, k = p.get_path("languages"), p.get_path("n_languages")
    settings = fusion_settings(p, args.method)
    inputs = load_method(args.generated or f"data/generated/{args.method}", args.method, languages, k, settings)
    fused = augment(np.load(args.passages + ".npy"), inputs.generated, settings)
    out = args.out or f"data/augmented/{args.method}"
    save_matrix(out + ".npy", fused)
    write_ids(out + ".ids.txt", read_ids(args.passages + ".ids.txt"))
    log.info("%s: augmented with %d language(s) %s, alpha %.3g, %s pooling", args.method, k, languages[:k],
             settings.alpha, settings.pool)


if __name__ == "__main__":
    run_stage(main)
