#!/usr/bin/env python
"""Score trained warm query generators and translators on the tune split, to choose their settings there.

Train a variant with its own params file (``python stages/train_xqg.py --params variant.yaml --out
/tmp/variant/xqg``; ``stages/train_translator.py`` likewise), then score it with the workspace of a
pipeline run (its prepared data, passage embeddings and xDR):

- ``--xqg``: ``--queries`` sampled queries (top-k sampling as ``xqg``) for each tune-split corpus passage in
  every language of ``languages``: round-trip R@10 against the baseline xDR over the whole corpus, the
  share written in the target language's script, and chrF against those passages' real tune questions
  (``xaug/genquality.py``);
- ``--translator``: chrF of corpus language -> L translations of the tune split's parallel questions and
  answer sentences (``--pairs`` per language and kind).

A model is ``FOLDER`` or ``NAME=FOLDER`` (the name keys its scores in ``--out``). Nothing is read from the
evaluation split. ``docs/generators.md`` has the grids it scored and the rule
that chose from them. Sampling is seeded (``--seed``; each language from the same seed), so a model
scores the same every time.

    python benchmarks/tune_choice.py --xqg models/xqg ls0.3=/tmp/ls3/xqg --out /tmp/xqg_choice.json
    python benchmarks/tune_choice.py --translator models/translator /tmp/all/translator
"""
import argparse
from pathlib import Path

import numpy as np
import torch
import yaml

from xaug.cli import run_stage, setup
from xaug.decoding import TRANSLATE_GROUP_KEYS, SamplingSettings, TranslateSettings
from xaug.device import use_bf16
from xaug.encoding import DenseEncoder
from xaug.errors import ConfigError
from xaug.formats import read_embeddings, read_training
from xaug.generators import load_generator
from xaug.genquality import chrf_against_real, in_script, real_questions_by_passage, round_trip
from xaug.io import read_jsonl, write_json
from xaug.params import from_params
from xaug.parallel_text import parallel_pairs
from xaug.translator_training import translation_quality
from xaug.translators import load_translator


def tune_passages(corpus: list[dict], links: list[dict], pivot: str) -> list[dict]:
    """The corpus passages that hold the answer to a tune-split question, in corpus order."""
    tune = {l["contexts"][pivot] for l in links if l["split"] == "tune" and pivot in l["contexts"]}
    return [c for c in corpus if c["id"] in tune]


def score_generator(folder: str, passages: list[dict], languages: list[str], encoder: DenseEncoder,
                    passage_vectors: np.ndarray, row: dict[str, int], real: dict[str, dict],
                    settings: SamplingSettings, bf16: bool) -> dict:
    generator = load_generator(folder)
    report = {}
    for lang in languages:
        torch.manual_seed(settings.seed)
        queries, _ = generator.generate(passages, lang, settings)
        flat = [q for qs in queries for q in qs]
        owner = [row[p["id"]] for p, qs in zip(passages, queries) for _ in qs]
        vectors, _ = encoder.encode(flat, "query", bf16=bf16, progress=False)
        report[lang] = {"R@10": round(float(round_trip(vectors, owner, passage_vectors)["R@10"]), 4),
                        "in_script": round(float(np.mean([in_script(q, lang) for q in flat])), 3),
                        "chrF": round(chrf_against_real({p["id"]: qs for p, qs in zip(passages, queries)},
                                                        real[lang]), 2),
                        "examples": flat[:2]}
    for key in ("R@10", "in_script", "chrF"):
        report[f"{key}_average"] = round(float(np.mean([report[l][key] for l in languages])), 4)
    report["in_script_lowest"] = min(report[l]["in_script"] for l in languages)
    return report


TRAINING_KEYS = ("steps", "max_steps", "best_step", "tune_loss", "stopped")


def training_record(folder: str) -> dict:
    """How the model was trained, from the record its training stage writes beside it (if any)."""
    return {k: v for k, v in read_training(folder).items() if k in TRAINING_KEYS}


def named(models: list[str]) -> dict[str, str]:
    """``FOLDER`` or ``NAME=FOLDER`` arguments, by name."""
    pairs = [m.split("=", 1) if "=" in m else (m, m) for m in models]
    if len({name for name, _ in pairs}) < len(pairs):
        raise ConfigError(f"--xqg / --translator: a name is given twice in {models}")
    return dict(pairs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workspace", default=".", help="a pipeline run: data/mlqa, data/embeddings, models/xdr")
    ap.add_argument("--params", default=None, help="params.yaml (default: the workspace's)")
    ap.add_argument("--xqg", nargs="*", default=[], help="warm query generators: FOLDER or NAME=FOLDER")
    ap.add_argument("--translator", nargs="*", default=[], help="warm translators: FOLDER or NAME=FOLDER")
    ap.add_argument("--queries", type=int, default=3, help="sampled queries per passage and language")
    ap.add_argument("--pairs", type=int, default=100, help="tune pairs per language and kind (translators)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=None, help="the scores as JSON")
    args = ap.parse_args()
    log = setup(args.threads)
    ws = Path(args.workspace)
    data = ws / "data" / "mlqa"
    if not (data / "corpus.jsonl").is_file() or not (ws / "data" / "embeddings" / "passages.npy").is_file():
        raise ConfigError(f"{ws}: no pipeline run here (run `dvc repro encode`, or pass --workspace)")
    if not args.xqg and not args.translator:
        raise ConfigError("--xqg / --translator: nothing to score")
    params = yaml.safe_load(Path(args.params or ws / "params.yaml").read_text())
    corpus, links, queries = (read_jsonl(data / f"{n}.jsonl") for n in ("corpus", "links", "queries"))
    pivot, languages = params["data"]["corpus_language"], params["languages"]
    out = {"xqg": {}, "translator": {}}
    if args.xqg:
        passages = tune_passages(corpus, links, pivot)
        passage_vectors, ids = read_embeddings(ws / "data" / "embeddings" / "passages")
        row = {pid: k for k, pid in enumerate(ids)}
        encoder = DenseEncoder.load(ws / "models" / "xdr")
        bf16 = use_bf16(params["encode"].get("bf16", "auto"), torch.device("cpu"))
        real = {lang: real_questions_by_passage(queries, links, lang, "tune", pivot) for lang in languages}
        settings = SamplingSettings(n_queries=args.queries, top_k=params["xqg"]["top_k"],
                                    max_new_tokens=params["xqg"]["max_new_tokens"], seed=args.seed)
        log.info("%d tune-split corpus passages, %d queries each in %s", len(passages), args.queries, languages)
        for name, folder in named(args.xqg).items():
            r = out["xqg"][name] = score_generator(folder, passages, languages, encoder, passage_vectors, row,
                                                     real, settings, bf16)
            r["training"] = training_record(folder)
            log.info("%s: R@10 %.3f (%s), in script %.3f at the lowest, chrF %.2f", name, r["R@10_average"],
                     ", ".join(f"{l} {r[l]['R@10']:.3f}" for l in languages), r["in_script_lowest"],
                     r["chrF_average"])
    if args.translator:
        pairs = [p for p in parallel_pairs(read_jsonl(data / "contexts.jsonl"), links, queries, "tune", pivot=pivot)
                 if p["lang"] in languages]
        settings = from_params(TranslateSettings, params["translate"], others=TRANSLATE_GROUP_KEYS,
                               only=("max_new_tokens", "batch_size", "length_ratio"))
        for name, folder in named(args.translator).items():
            torch.manual_seed(args.seed)
            r = translation_quality(load_translator(folder), pairs, settings, args.pairs)
            for kind in ("question", "sentence"):  # over the languages the tune split has such pairs in
                scores = [r[l][f"chrF_{kind}"] for l in languages if f"chrF_{kind}" in r.get(l, {})]
                r[f"chrF_{kind}_average"] = round(float(np.mean(scores)), 2) if scores else None
            r["training"] = training_record(folder)
            out["translator"][name] = r
            log.info("%s: chrF questions %s, sentences %s (%s)", name, r["chrF_question_average"],
                     r["chrF_sentence_average"], ", ".join(f"{l} {r[l]['chrF_question']:.1f}" for l in languages
                                                           if "chrF_question" in r.get(l, {})))
    if args.out:
        write_json(args.out, out)


if __name__ == "__main__":
    run_stage(main)
