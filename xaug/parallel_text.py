"""Parallel text: sentences, the (pivot, L) and (L1, L2) pairs MLQA's parallel questions and contexts
give, and the translator's training examples built from them (``xaug.translators`` holds the translators)."""
from __future__ import annotations

import hashlib
import itertools
import re
from typing import Sequence

from .languages import DEFAULT_CORPUS_LANGUAGE

UNSPACED = {"zh", "ja"}  # sentences joined without a space
_SENTENCE_END = re.compile(r"(?<=[.!?؟।])\s+|(?<=[。！？])")


def split_sentences(text: str) -> list[str]:
    """Sentences of ``text``: split after . ! ? ؟ । followed by white space, and after 。！？."""
    return [s for s in (part.strip() for part in _SENTENCE_END.split(text)) if s]


def join_sentences(sentences: Sequence[str], lang: str) -> str:
    return ("" if lang in UNSPACED else " ").join(s.strip() for s in sentences if s.strip())


def first_sentences(corpus: list[dict], max_sentences: int) -> dict[str, list[str]]:
    """Passage id -> its first ``max_sentences`` (0 = all) sentences: what the translator reads."""
    return {p["id"]: split_sentences(p["text"])[: max_sentences or None] for p in corpus}


def source_sentences(corpus: list[dict], max_sentences: int) -> list[tuple[str, str]]:
    """(``<passage id>#<j>``, sentence) for the first ``max_sentences`` (0 = all) sentences of each passage."""
    return [(f"{pid}#{j}", s) for pid, sentences in first_sentences(corpus, max_sentences).items()
            for j, s in enumerate(sentences)]


def answer_sentence(context: str, answers: Sequence[str]) -> str | None:
    """The sentence of ``context`` holding the first answer found in it (MLQA aligns these across languages)."""
    for answer in answers:
        pos = context.find(answer) if answer else -1
        if pos < 0:
            continue
        offset = 0
        for sentence in split_sentences(context):
            start = context.find(sentence, offset)
            if start <= pos < start + len(sentence):
                return sentence
            offset = max(offset, start)
    return None


def _versions(contexts: list[dict], links: list[dict], queries: list[dict], split: str, pivot: str):
    """Each question of ``split`` that has a ``pivot`` context, by qid: (qid, {language: (the question in it
    or None, the answer sentence of its context there or None)}) over its context languages, sorted."""
    text_of = {c["id"]: c["text"] for c in contexts}
    question = {(q["qid"], q["lang"]): q["text"] for q in queries}
    for link in sorted(links, key=lambda l: l["qid"]):
        if link.get("split") != split or pivot not in link["contexts"]:
            continue
        qid = link["qid"]
        yield qid, {lang: (question.get((qid, lang)),
                           answer_sentence(text_of[link["contexts"][lang]], link["answers"].get(lang, [])))
                    for lang in sorted(link["contexts"])}


def parallel_pairs(contexts: list[dict], links: list[dict], queries: list[dict], split: str,
                   languages: Sequence[str] | None = None, pivot: str = DEFAULT_CORPUS_LANGUAGE) -> list[dict]:
    """(pivot, L) text pairs of ``split`` (pivot: the corpus language): each question in its languages and
    the answer sentences of parallel contexts. Each pair: ``{"kind", "qid", "lang", "en", "text"}``
    (``text`` in ``lang``; ``en`` holds the pivot-language side, whatever the pivot)."""
    pairs = []
    for qid, versions in _versions(contexts, links, queries, split, pivot):
        en_question, en_sentence = versions[pivot]
        for lang, (q, sentence) in versions.items():
            if lang == pivot or (languages is not None and lang not in languages):
                continue
            if en_question is not None and q is not None:
                pairs.append({"kind": "question", "qid": qid, "lang": lang, "en": en_question, "text": q})
            if en_sentence and sentence:
                pairs.append({"kind": "sentence", "qid": qid, "lang": lang, "en": en_sentence, "text": sentence})
    return pairs


def non_pivot_pairs(contexts: list[dict], links: list[dict], queries: list[dict], split: str,
                    pivot: str = DEFAULT_CORPUS_LANGUAGE) -> list[dict]:
    """(L1, L2) text pairs of ``split`` between two languages other than the pivot (L1 before L2): a
    question in both, and the answer sentences of its contexts in both. Each pair: ``{"kind", "qid",
    "source_lang", "source", "lang", "text"}``. More target-language text for the translator's decoder."""
    pairs = []
    for qid, versions in _versions(contexts, links, queries, split, pivot):
        others = [lang for lang in versions if lang != pivot]
        for a, b in itertools.combinations(others, 2):
            (qa, sa), (qb, sb) = versions[a], versions[b]
            if qa is not None and qb is not None:
                pairs.append({"kind": "question", "qid": qid, "source_lang": a, "source": qa, "lang": b, "text": qb})
            if sa and sb:
                pairs.append({"kind": "sentence", "qid": qid, "source_lang": a, "source": sa, "lang": b, "text": sb})
    return pairs


def training_examples(pairs: list[dict], pivot: str = DEFAULT_CORPUS_LANGUAGE) -> list[dict]:
    """Both directions of each pair (``parallel_pairs``' (pivot, L) or ``non_pivot_pairs``' (L1, L2)) as
    generator examples (source keyed by its text)."""
    def key(text: str) -> str:
        return hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]

    examples = []
    for p in pairs:
        source, source_lang = (p["source"], p["source_lang"]) if "source_lang" in p else (p["en"], pivot)
        examples.append({"passage_id": key(source), "source": source, "target": p["text"], "lang": p["lang"]})
        examples.append({"passage_id": key(p["text"]), "source": p["text"], "target": source, "lang": source_lang})
    return examples
