"""Retrieval metrics: ir-measures for rank metrics, plus XOR-Retrieve's answer recall at k tokens."""
from __future__ import annotations

import re
from collections import defaultdict

import ir_measures
import numpy as np

RANK_MEASURES = ["nDCG@10", "RR@10", "R@1", "R@5", "R@20", "R@100"]
TOKEN_BUDGETS = {"R@2kt": 2000, "R@5kt": 5000}
ALL_MEASURES = RANK_MEASURES + list(TOKEN_BUDGETS)

# DPR's SimpleTokenizer idea: runs of letters/digits/marks, or any single other non-space character.
_TOKEN = re.compile(r"[\w\u0300-\u036f\u0900-\u097f\u0600-\u06ff]+|[^\w\s]", re.UNICODE)


def recall_tokens(text: str) -> list[str]:
    """Lower-cased word tokens used by R@kt (the same tokenizer for passages and answers)."""
    return _TOKEN.findall(text.lower())


def _occurs(needle: list[str], padded: str) -> bool:
    """Whether ``needle`` is a contiguous run of the tokens in ``padded`` (the tokens joined by spaces, with a
    space at each end; tokens hold no whitespace, so the substring test is exact)."""
    return bool(needle) and f" {' '.join(needle)} " in padded


def contains_sequence(haystack: list[str], needle: list[str]) -> bool:
    """Whether ``needle`` occurs as a contiguous run of ``haystack``."""
    return _occurs(needle, f" {' '.join(haystack)} ")


def answer_in_top_tokens(ranked_docs: list[str], doc_tokens: dict[str, list[str]], answers: list[list[str]],
                         budget: int, doc_strings: dict[str, str] | None = None) -> float:
    """1.0 if any answer occurs as a token sequence within the first ``budget`` tokens of the ranking.

    Passages are taken in rank order and the ranking is cut at ``budget`` tokens (XOR-TyDi's R@2kt/R@5kt);
    an answer must lie inside one (possibly cut) passage, never across two.
    ``doc_strings``: each passage's tokens joined by spaces, precomputed (``join_tokens``) when many
    rankings are scored.
    """
    n = 0
    for doc in ranked_docs:
        if n >= budget:
            break
        tokens = doc_tokens[doc]
        if n + len(tokens) > budget:
            text = " ".join(tokens[: budget - n])
        else:
            text = doc_strings[doc] if doc_strings is not None else " ".join(tokens)
        padded = f" {text} "
        if any(_occurs(ans, padded) for ans in answers):
            return 1.0
        n += len(tokens)
    return 0.0


def join_tokens(doc_tokens: dict[str, list[str]]) -> dict[str, str]:
    return {d: " ".join(tokens) for d, tokens in doc_tokens.items()}


def rank_measures(run: dict[str, dict[str, float]], qrels: dict[str, dict[str, int]]) -> dict[str, dict[str, float]]:
    """Per query: every measure in RANK_MEASURES, via ir-measures (queries absent from the run score 0)."""
    measures = [ir_measures.parse_measure(m) for m in RANK_MEASURES]
    per_query: dict[str, dict[str, float]] = {q: {m: 0.0 for m in RANK_MEASURES} for q in qrels}
    for m in ir_measures.iter_calc(measures, qrels, run):
        if m.query_id in per_query:
            per_query[m.query_id][str(m.measure)] = float(m.value)
    return per_query


def evaluate_run(ranking: dict[str, list[str]], scores: dict[str, list[float]], qrels: dict[str, dict[str, int]],
                 doc_tokens: dict[str, list[str]], answers: dict[str, list[list[str]]],
                 doc_strings: dict[str, str] | None = None) -> dict[str, dict[str, float]]:
    """Per-query rank measures and answer recall at 2k/5k tokens; ``doc_strings``: ``join_tokens(doc_tokens)``,
    where the caller scores many runs over one corpus."""
    run = {q: {d: float(s) for d, s in zip(docs, scores[q])} for q, docs in ranking.items()}
    per_query = rank_measures(run, qrels)
    doc_strings = join_tokens(doc_tokens) if doc_strings is None else doc_strings
    for q in per_query:
        for name, budget in TOKEN_BUDGETS.items():
            per_query[q][name] = answer_in_top_tokens(ranking.get(q, []), doc_tokens, answers.get(q, []), budget,
                                                      doc_strings)
    return per_query


def summarise(per_query: dict[str, dict[str, float]], query_lang: dict[str, str], languages: list[str],
              pivot: str = "en") -> dict:
    """``{"avg": macro average over cross-lingual languages, "by_lang": {...}, pivot: {...}}``."""
    groups: dict[str, list[dict]] = defaultdict(list)
    for q, values in per_query.items():
        groups[query_lang[q]].append(values)

    def mean(rows):
        return {m: round(float(np.mean([r[m] for r in rows])), 4) for m in ALL_MEASURES} | {"queries": len(rows)}

    by_lang = {lang: mean(groups[lang]) for lang in languages if groups.get(lang)}
    avg = {m: round(float(np.mean([v[m] for v in by_lang.values()])), 4) for m in ALL_MEASURES} if by_lang else {}
    out = {"avg": avg, "by_lang": by_lang}
    if groups.get(pivot):
        out[pivot] = mean(groups[pivot])
    return out

