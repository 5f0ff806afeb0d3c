"""Does generation work? Round-trip retrieval, script, chrF against real questions, duplicates."""
from __future__ import annotations

import re
from collections import defaultdict

import numpy as np

SCRIPT = {
    "ar": re.compile(r"[\u0600-\u06ff\u0750-\u077f]"),
    "hi": re.compile(r"[\u0900-\u097f]"),
    "zh": re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]"),
}
LATIN = re.compile(r"[A-Za-z\u00c0-\u024f\u1e00-\u1eff]")
LETTER = re.compile(r"[^\W\d_]")


def in_script(text: str, lang: str) -> bool:
    """True when most letters of ``text`` are in ``lang``'s script (Latin for de, en, es, vi)."""
    letters = LETTER.findall(text)
    if not letters:
        return False
    pattern = SCRIPT.get(lang, LATIN)
    return sum(bool(pattern.match(ch)) for ch in letters) / len(letters) > 0.5


def duplicate_rate(query_lists: list[list[str]]) -> float:
    """Mean over passages of the share of a passage's queries that repeat an earlier one."""
    rates = [1 - len(set(q.strip().lower() for q in qs)) / len(qs) for qs in query_lists if qs]
    return float(np.mean(rates)) if rates else 0.0


def chrf_against_real(generated: dict[str, list[str]], real: dict[str, list[str]]) -> float:
    """Mean sentence chrF of each generated query against the real questions of its passage."""
    from sacrebleu.metrics import CHRF

    chrf = CHRF()
    scores = [chrf.sentence_score(q, real[pid]).score for pid, qs in generated.items() if real.get(pid) for q in qs]
    return float(np.mean(scores)) if scores else float("nan")


def round_trip(query_vectors: np.ndarray, owner: list[int], passage_vectors: np.ndarray, ks=(1, 10)) -> dict:
    """R@k of each query retrieving the passage it belongs to (``owner`` = row in ``passage_vectors``)."""
    if len(owner) == 0:
        return {f"R@{k}": float("nan") for k in ks}
    scores = query_vectors.astype(np.float32) @ passage_vectors.astype(np.float32).T
    own = scores[np.arange(len(owner)), owner]
    rank = (scores > own[:, None]).sum(1)  # 0 = ranked first
    return {f"R@{k}": round(float(np.mean(rank < k)), 4) for k in ks}


def real_questions_by_passage(queries: list[dict], links: list[dict], lang: str, split: str = "eval") -> dict[str, list[str]]:
    pivot = {l["qid"]: l["contexts"]["en"] for l in links}
    out: dict[str, list[str]] = defaultdict(list)
    for q in queries:
        if q["lang"] == lang and q["split"] == split:
            out[pivot[q["qid"]]].append(q["text"])
    return dict(out)
