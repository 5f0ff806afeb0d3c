"""MLQA's parallel contexts: for a corpus passage, the context in another language that shares a question
id with it (comparable text around the aligned answer sentence, not a translation). They are the texts
of the ``parallel_contexts`` method and define the ``parallel`` corpus setting of evaluation (a query in
L searches only the passages with an L parallel).
"""
from __future__ import annotations

from .data import corpus_language_of
from .errors import ConfigError
from .languages import DEFAULT_CORPUS_LANGUAGE, name as language_name


def parallel_passages(links: list[dict], corpus_language: str = DEFAULT_CORPUS_LANGUAGE) -> dict[str, set[str]]:
    """For each language L, the corpus-language paragraphs that have an L parallel (the `parallel` corpus setting)."""
    pivot = corpus_language
    out: dict[str, set[str]] = {}
    for link in links:
        ctx = link["contexts"]
        if pivot in ctx:
            for lang in ctx:
                if lang != pivot:
                    out.setdefault(lang, set()).add(ctx[pivot])
    return out


def parallel_contexts(corpus: list[dict], contexts: list[dict], links: list[dict], lang: str) -> tuple[list[dict], dict]:
    """For every corpus passage, MLQA's context in ``lang`` that shares a question id with it, if any
    (comparable text around the aligned answer sentence, not a translation); with coverage statistics.
    The corpus language is the one of the ``corpus`` rows."""
    pivot = corpus_language_of(corpus)
    text_of = {c["id"]: c["text"] for c in contexts}
    parallel: dict[str, str] = {}
    for link in sorted(links, key=lambda l: l["qid"]):
        ctx = link["contexts"]
        if pivot in ctx and lang in ctx:
            parallel.setdefault(ctx[pivot], ctx[lang])
    if not parallel:
        raise ConfigError(f"parallel_contexts: the archive has no {lang!r} contexts parallel to "
                          f"{language_name(pivot)} ones "
                          "(links.jsonl lists none); the parallel_contexts method needs them")
    rows = [{"id": p["id"], "texts": [text_of[parallel[p["id"]]]] if p["id"] in parallel else []} for p in corpus]
    covered = sum(1 for r in rows if r["texts"])
    return rows, {"lang": lang, "passages": len(corpus), "covered": covered,
                  "coverage": round(covered / max(len(corpus), 1), 4), "seconds": 0.0, "generated_tokens": 0}
