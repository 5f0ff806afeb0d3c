"""The real questions of a passage: the ceiling of query generation.

For a corpus passage and a language L, the items of the ``real_questions`` method are the archive's own
L questions whose relevant passage it is (every split: the training and tune questions of their passages,
the evaluation questions of theirs). They are what a perfect query generator could write, with one
difference that scoring has to remove: a passage's items include the very question being evaluated. The
scorers therefore leave it out (``xaug.leave_out``): when a query of question q is scored, in any
language, no item made from q is in any passage. What remains of a passage are its *other* questions,
which may overlap with q as a perfect generator's queries would.

Each row records the question id of every item (``sources``), so that the leave-out is exact.
"""
from __future__ import annotations

from collections import defaultdict

from .data import corpus_language_of
from .errors import ConfigError


def real_questions(corpus: list[dict], queries: list[dict], links: list[dict], lang: str) -> tuple[list[dict], dict]:
    """For every corpus passage, its real ``lang`` questions (texts and question ids, sorted by id); with
    coverage statistics: passages with at least one question (``covered``) and with at least two
    (``covered_after_leave_out``: what an evaluated question's own passage keeps once it is left out)."""
    pivot = corpus_language_of(corpus)
    passage_of = {link["qid"]: link["contexts"].get(pivot) for link in links}
    by_passage: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
    for q in queries:
        if q["lang"] == lang and passage_of.get(q["qid"]):
            by_passage[passage_of[q["qid"]]].append((q["qid"], q["text"], q["split"]))
    if not by_passage:
        raise ConfigError(f"real_questions: the archive has no {lang!r} questions about corpus passages "
                          "(queries.jsonl lists none); the real_questions method needs them")
    rows, splits = [], defaultdict(int)
    for p in corpus:
        asked = sorted(by_passage.get(p["id"], []))
        rows.append({"id": p["id"], "queries": [text for _, text, _ in asked], "sources": [qid for qid, _, _ in asked]})
        for _, _, split in asked:
            splits[split] += 1
    covered = sum(1 for r in rows if r["queries"])
    twice = sum(1 for r in rows if len(r["queries"]) > 1)
    return rows, {"lang": lang, "passages": len(corpus), "covered": covered,
                  "coverage": round(covered / max(len(corpus), 1), 4), "covered_after_leave_out": twice,
                  "questions": dict(sorted(splits.items())), "seconds": 0.0, "generated_tokens": 0}
