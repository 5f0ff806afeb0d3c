"""Does generation work? Round-trip retrieval, script, chrF against real questions, duplicates."""
from __future__ import annotations

import re
from collections import defaultdict
from functools import lru_cache
from pathlib import Path

import numpy as np

from .data import corpus_language as prepared_corpus_language
from .formats import flat_items, items_path, read_embeddings, read_items, read_text_stats, read_texts
from .io import read_jsonl
from .languages import script_class

LETTER = re.compile(r"[^\W\d_]")


@lru_cache(maxsize=None)
def script_pattern(lang: str) -> re.Pattern:
    """One letter of any of ``lang``'s scripts (``xaug.languages``: Latin for de, en, es, vi, ...)."""
    return re.compile(script_class(lang))


def in_script(text: str, lang: str) -> bool:
    """True when most letters of ``text`` are in ``lang``'s script(s) (Latin for de, en, es, vi, ...)."""
    letters = LETTER.findall(text)
    if not letters:
        return False
    pattern = script_pattern(lang)
    return sum(bool(pattern.match(ch)) for ch in letters) / len(letters) > 0.5


def duplicate_rate(query_lists: list[list[str]]) -> float:
    """Mean over passages of the share of a passage's queries that repeat an earlier one."""
    rates = [1 - len(set(q.strip().lower() for q in qs)) / len(qs) for qs in query_lists if qs]
    return float(np.mean(rates)) if rates else 0.0


def chrf_against_real(generated: dict[str, list[str]], real: dict[str, list[str]]) -> float:
    """Mean sentence chrF of each generated query against the real questions of its passage."""
    from sacrebleu.metrics import CHRF  # sacrebleu: only this metric needs it

    chrf = CHRF()
    scores = [chrf.sentence_score(q, real[pid]).score for pid, qs in generated.items() if real.get(pid) for q in qs]
    return float(np.mean(scores)) if scores else float("nan")


def round_trip(query_vectors: np.ndarray, owner: list[int], passage_vectors: np.ndarray, ks=(1, 10),
               rows: int = 4096) -> dict:
    """R@k of each query retrieving the passage it belongs to (``owner`` = row in ``passage_vectors``), scored
    ``rows`` queries at a time (memory: rows x passages scores, not queries x passages)."""
    if len(owner) == 0:
        return {f"R@{k}": float("nan") for k in ks}
    passages = passage_vectors.astype(np.float32)
    owner = np.asarray(owner)
    rank = np.empty(len(owner), dtype=np.int64)  # 0 = ranked first
    for start in range(0, len(owner), rows):
        scores = query_vectors[start: start + rows].astype(np.float32) @ passages.T
        own = scores[np.arange(len(scores)), owner[start: start + rows]]
        rank[start: start + rows] = (scores > own[:, None]).sum(1)
    return {f"R@{k}": round(float(np.mean(rank < k)), 4) for k in ks}


def real_questions_by_passage(queries: list[dict], links: list[dict], lang: str, split: str = "eval",
                              corpus_language: str = "en") -> dict[str, list[str]]:
    """Corpus passage id -> the real ``split`` questions in ``lang`` whose answer it holds."""
    pivot = {l["qid"]: l["contexts"][corpus_language] for l in links}
    out: dict[str, list[str]] = defaultdict(list)
    for q in queries:
        if q["lang"] == lang and q["split"] == split:
            out[pivot[q["qid"]]].append(q["text"])
    return dict(out)


def sampled_passages(n: int, sample: int, seed: int) -> np.ndarray | None:
    """Rows of a seeded sample of ``sample`` of ``n`` passages (ascending), or None for all of them
    (``sample`` 0 or at least ``n``)."""
    if sample <= 0 or sample >= n:
        return None
    return np.sort(np.random.default_rng(seed).choice(n, sample, replace=False))


def generation_report(folder, languages, data_dir, passages_prefix, queries_prefix,
                      corpus_language: str | None = None, log=None, items=None, sample: int = 0,
                      seed: int = 0) -> dict:
    """Per language (and averaged): round-trip R@1/R@10 of the generated texts in ``folder`` (their items
    file, embedded with the baseline xDR) and of the real held-out questions of the same passages,
    share in script, chrF against those real questions, duplicates, and generated tokens.
    ``corpus_language``: None = the one the prepare stage recorded in ``data_dir``. ``sample`` > 0: only
    the texts of a seeded sample of that many passages are measured (``sampled_passages``; each still
    retrieves among every passage), and ``passages_sampled`` says how many."""
    data = Path(data_dir)
    corpus_language = corpus_language or prepared_corpus_language(data)
    passages, pids = read_embeddings(passages_prefix)
    row_of = {pid: i for i, pid in enumerate(pids)}
    queries, links = read_jsonl(data / "queries.jsonl"), read_jsonl(data / "links.jsonl")
    pivot = {l["qid"]: l["contexts"][corpus_language] for l in links if corpus_language in l["contexts"]}
    real_vectors, real_ids = read_embeddings(queries_prefix)
    real_row = {q: i for i, q in enumerate(real_ids)}
    qmeta = {q["id"]: q for q in queries}
    chosen = sampled_passages(len(pids), sample, seed)
    kept = None if chosen is None else {pids[i] for i in chosen}
    report = {}
    for lang in languages:
        rows = read_texts(folder, lang)
        item_vectors, counts = read_items(items_path(folder if items is None else items, lang))
        real = real_questions_by_passage(queries, links, lang, corpus_language=corpus_language)
        held = [r for r in real_ids if qmeta[r]["lang"] == lang and qmeta[r]["qid"] in pivot]
        if chosen is None:
            vectors, owner = flat_items(item_vectors, counts)
        else:  # only the sampled passages' items are read from the memory-mapped file
            vectors, owner = flat_items(item_vectors[chosen], counts[chosen])
            owner = chosen[owner]
            rows = {pid: texts for pid, texts in rows.items() if pid in kept}
            real = {pid: texts for pid, texts in real.items() if pid in kept}
            held = [r for r in held if pivot[qmeta[r]["qid"]] in kept]
        evalset = np.isin(owner, [row_of[pid] for pid in real])
        flat = [q for pid in pids if pid in rows for q in rows[pid]]
        report[lang] = {
            **round_trip(vectors, owner.tolist(), passages),
            **{f"heldout_passages_{k}": v for k, v in round_trip(vectors[evalset], owner[evalset].tolist(), passages).items()},
            **{f"real_{k}": v for k, v in round_trip(real_vectors[[real_row[r] for r in held]],
                                                      [row_of[pivot[qmeta[r]["qid"]]] for r in held], passages).items()},
            "in_script": round(float(np.mean([in_script(q, lang) for q in flat])), 4) if flat else float("nan"),
            "chrF": round(chrf_against_real({pid: rows[pid] for pid in real}, real), 2),
            "duplicates": round(duplicate_rate(list(rows.values())), 4),
            "queries": len(flat), "generated_tokens": read_text_stats(folder, lang)["generated_tokens"],
            **({} if chosen is None else {"passages_sampled": len(chosen)}),
        }
        if log is not None:
            log.info("%s: round-trip R@10 %.3f (real questions %.3f), in script %.2f, chrF %.1f, duplicates %.2f",
                     lang, report[lang]["R@10"], report[lang]["real_R@10"], report[lang]["in_script"],
                     report[lang]["chrF"], report[lang]["duplicates"])
    langs = list(report)
    report["avg"] = {k: round(float(np.mean([report[l][k] for l in langs])), 4)
                     for k in ("R@1", "R@10", "real_R@1", "real_R@10", "in_script", "chrF", "duplicates")}
    return report
