"""What augmenting the paper's corpus would cost: device-hours of xQG vs passage translation for k languages.

The paper augments XOR-TyDi's corpus (``cost.passages``: 18.2M passages) for up to ``cost.languages``
target languages. For k = 1..languages:

    xQG:         hours = passages * k * n_queries * tokens_per_query  / generated_tokens_per_s  / 3600
    translation: hours = passages * k * tokens_per_passage            / translated_tokens_per_s / 3600
                 tokens_per_passage = passage_words * translated_tokens_per_source_word

Both are *device-hours* on the device the rates were measured on (one GPU, or one CPU with its
threads), i.e. hours of one such device; n devices take 1/n of the time.

Inputs: the throughput (generated tokens/s and queries/s of the query generator, translated tokens/s
of the translator) and the token statistics, measured by the pipeline itself: each
``<generated>/xqg/<lang>.stats.json`` (generate_queries: generated tokens, queries, seconds summed over
its chunks, device) and ``<generated>/translate/<lang>.stats.json`` (translate_passages: generated tokens,
sentences and their source words, seconds, device), with the corpus (data/mlqa/corpus.jsonl) for the
words per passage. ``cost.rates`` may name a JSON of measured rates
instead (``benchmarks/generation.py --out FILE``: the paper's architecture on its GPU); a method it
does not cover keeps the pipeline's rates, and each method records where its rate came from and on
which device.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigError
from .io import atomic_path
from .params import check_int

XQG_FORMULA = "passages * k * n_queries * tokens_per_query / generated_tokens_per_s / 3600"
TRANSLATE_FORMULA = ("passages * k * tokens_per_passage / translated_tokens_per_s / 3600, "
                     "tokens_per_passage = passage_words * translated_tokens_per_source_word")


@dataclass
class CostSettings:
    """The ``cost`` params group."""

    passages: int = 18_200_000     # XOR-TyDi's corpus (the paper)
    languages: int = 7             # k = 1..languages
    n_queries: int = 5             # per passage and language (the paper)
    passage_words: float = 100     # words per passage (XOR-TyDi: 100-word passages); 0 = the pipeline corpus's mean
    rates: str = ""                # a JSON of measured rates (benchmarks/generation.py --out); '' = the pipeline's

    def __post_init__(self):
        for name in ("passages", "languages", "n_queries"):
            check_int(getattr(self, name), f"cost.{name}")
        if isinstance(self.passage_words, bool) or not isinstance(self.passage_words, (int, float)) \
                or self.passage_words < 0:
            raise ConfigError(f"cost.passage_words: expected a number >= 0 (0 = the corpus's mean), "
                              f"got {self.passage_words!r}")
        self.rates = self.rates or ""


def words(text: str) -> int:
    return len(text.split())


def read_stats(folder: Path, method: str) -> list[dict]:
    files = sorted(Path(folder).glob("*.stats.json"))
    if not files:
        raise ConfigError(f"{folder}: no <lang>.stats.json of {method} (run its generation stages first)")
    stats = []
    for f in files:
        s = json.loads(f.read_text(encoding="utf-8"))
        if not isinstance(s, dict) or not {"seconds", "generated_tokens"} <= set(s):
            raise ConfigError(f"{f}: expected 'seconds' and 'generated_tokens' (a {method} stats file)")
        stats.append({**s, "file": str(f)})
    return stats


def _device(stats: list[dict]) -> str:
    names = sorted({s.get("device") or "unknown device" for s in stats})
    return ", ".join(names)


def translated_words(stats: dict, corpus_words: int) -> tuple[float, str]:
    """Source words of the sentences a translate stats file covers: its ``source_words``, or for a file
    without them the sentence share of the corpus's words (translated sentences / all
    sentences * the corpus's words: the proxy of its ``estimated_full_seconds``)."""
    if stats.get("source_words"):
        return float(stats["source_words"]), "counted"
    if stats.get("sentences") and stats.get("sentences_in_corpus"):
        return stats["sentences"] / stats["sentences_in_corpus"] * corpus_words, "sentence share (no source_words)"
    raise ConfigError(f"{stats.get('file', 'translate stats')}: expected source_words, or sentences and "
                      f"sentences_in_corpus")


def pipeline_statistics(corpus: list[dict], xqg: list[dict], translate: list[dict]) -> dict:
    """Token statistics and rates of the pipeline's own runs (all languages pooled; seconds are the
    stats files' summed chunk seconds, i.e. time on one device)."""
    passages = [p for p in corpus if p["text"].strip()]
    if not passages:
        raise ConfigError("corpus: no non-empty passage to measure words per passage on")
    corpus_words = sum(words(p["text"]) for p in passages)
    gen_tokens, queries, gen_seconds = (sum(s.get(k, 0) for s in xqg) for k in ("generated_tokens", "queries", "seconds"))
    if queries <= 0 or gen_tokens <= 0 or gen_seconds <= 0:
        raise ConfigError("xqg stats: no generated queries, tokens or seconds to measure a rate on")
    counted = [translated_words(s, corpus_words) for s in translate]
    source_words = sum(w for w, _ in counted)
    tr_tokens, tr_seconds = sum(s["generated_tokens"] for s in translate), sum(s["seconds"] for s in translate)
    if tr_tokens <= 0 or tr_seconds <= 0 or source_words <= 0:
        raise ConfigError("translate stats: no translated tokens or seconds to measure a rate on (translate.model "
                          "oracle generates nothing: measure a translator and give its rates in cost.rates)")
    return {
        "corpus_passages": len(corpus),
        "words_per_passage": corpus_words / len(passages),
        "tokens_per_query": gen_tokens / queries,
        "translated_tokens_per_source_word": tr_tokens / source_words,
        "xqg": {"generated_tokens_per_s": gen_tokens / gen_seconds, "queries_per_s": queries / gen_seconds,
                "device": _device(xqg), "source": "pipeline stats: " + ", ".join(Path(s.get("file", "?")).name for s in xqg),
                "generated_tokens": gen_tokens, "queries": queries, "seconds": gen_seconds},
        "translate": {"translated_tokens_per_s": tr_tokens / tr_seconds, "device": _device(translate),
                      "source": "pipeline stats: " + ", ".join(Path(s.get("file", "?")).name for s in translate),
                      "generated_tokens": tr_tokens, "source_words": source_words, "seconds": tr_seconds,
                      "source_words_from": ", ".join(sorted({how for _, how in counted}))},
    }


def read_rates(path) -> dict:
    """A measured-rates JSON (``benchmarks/generation.py --out``): ``{"device", "xqg": {"generated_tokens_per_s",
    "queries_per_s", ...}, "translate": {"translated_tokens_per_s", ...}}``, either method optional; a
    method may name its own ``device``."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"cost.rates: {path} not found (write it with benchmarks/generation.py --out FILE, "
                          f"or set '' for the pipeline's own rates)")
    data = json.loads(path.read_text(encoding="utf-8"))
    needs = {"xqg": "generated_tokens_per_s", "translate": "translated_tokens_per_s"}
    out = {}
    for method, key in needs.items():
        if method not in data:
            continue
        rate = data[method].get(key)
        if not isinstance(rate, (int, float)) or rate <= 0:
            raise ConfigError(f"cost.rates: {path}: {method}.{key} must be a positive number, got {rate!r}")
        out[method] = {**data[method], "device": data[method].get("device") or data.get("device") or "unknown device",
                       "source": str(path)}
    if not out:
        raise ConfigError(f"cost.rates: {path} holds neither xqg nor translate rates")
    return out


def estimate(settings: CostSettings, stats: dict, rates: dict | None = None) -> dict:
    """Hours for k = 1..languages by both methods (``stats``: ``pipeline_statistics``; ``rates``: ``read_rates``,
    overriding the pipeline's rates per method). Token counts per query and per source word stay the
    pipeline's unless the rates file gives ``tokens_per_query`` / ``translated_tokens_per_source_word``."""
    rates = rates or {}
    xqg = {**stats["xqg"], **rates.get("xqg", {})}
    tr = {**stats["translate"], **rates.get("translate", {})}
    tokens_per_query = float(xqg.get("tokens_per_query") or stats["tokens_per_query"])
    per_word = float(tr.get("translated_tokens_per_source_word") or stats["translated_tokens_per_source_word"])
    passage_words = float(settings.passage_words or stats["words_per_passage"])
    tokens_per_passage = passage_words * per_word
    n, q = settings.passages, settings.n_queries
    rows = []
    for k in range(1, settings.languages + 1):
        xqg_s = n * k * q * tokens_per_query / xqg["generated_tokens_per_s"]
        tr_s = n * k * tokens_per_passage / tr["translated_tokens_per_s"]
        row = {"k": k, "xqg_hours": xqg_s / 3600, "translate_hours": tr_s / 3600,
               "xqg_generated_tokens": n * k * q * tokens_per_query, "translate_generated_tokens": n * k * tokens_per_passage}
        if xqg.get("queries_per_s"):  # the same cost from the query rate (equal for the pipeline's own stats)
            row["xqg_hours_from_queries_per_s"] = n * k * q / xqg["queries_per_s"] / 3600
        rows.append(row)
    same = xqg["device"] == tr["device"]
    return {
        "formula": {"xqg": XQG_FORMULA, "translate": TRANSLATE_FORMULA,
                    "unit": "device-hours: hours of one device of the kind each rate was measured on"},
        "device": xqg["device"] if same else f"xQG: {xqg['device']}; translation: {tr['device']}",
        "inputs": {"passages": n, "languages": settings.languages, "n_queries": q, "passage_words": passage_words,
                   "tokens_per_query": tokens_per_query, "translated_tokens_per_source_word": per_word,
                   "tokens_per_passage": tokens_per_passage,
                   "corpus_words_per_passage": stats["words_per_passage"]},
        "rates": {"xqg": _clean(xqg), "translate": _clean(tr)},
        "ratio_translate_to_xqg": rows[0]["translate_hours"] / rows[0]["xqg_hours"],
        "by_k": rows,
    }


def _clean(rate: dict) -> dict:
    return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in rate.items()}


def rounded(report: dict, digits: int = 4) -> dict:
    """The report with floats rounded (a JSON for people)."""
    def r(x):
        if isinstance(x, float):
            return float(f"{x:.{digits}g}") if math.isfinite(x) and x != 0 else x
        if isinstance(x, dict):
            return {k: r(v) for k, v in x.items()}
        if isinstance(x, list):
            return [r(v) for v in x]
        return x
    return r(report)


def plot(report: dict, path) -> None:
    """Hours vs k, one line per method, log y axis, the device in the title."""
    import matplotlib  # heavy (a second to import): only the stage that draws loads it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = report["by_k"]
    ks = [r["k"] for r in rows]
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    ax.plot(ks, [r["xqg_hours"] for r in rows], "o-", label=f"xQG ({report['inputs']['n_queries']} queries per passage and language)")
    ax.plot(ks, [r["translate_hours"] for r in rows], "s-", label="passage translation")
    ax.set_yscale("log")
    ax.set_xticks(ks)
    ax.set_xlabel("target languages k")
    ax.set_ylabel("device-hours")
    inputs = report["inputs"]
    ax.set_title(f"Augmenting {inputs['passages'] / 1e6:.1f}M passages: device-hours on {report['device']}",
                 fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=path.suffix.lstrip(".") or "png", dpi=120)
    plt.close(fig)
