"""Preparation: normalise an MLQA archive into contexts, queries, links and a train/tune/eval split, and
write the prepared folder (BEIR-style JSONL, TREC qrels, answers, training pairs, stats, dataset.json).

The retrieval setting is XOR-style: the corpus is every paragraph in the corpus language
(``data.corpus_language``, English by default) of the splits in use; queries are questions in the
target languages; a question's relevant passage is the corpus-language paragraph holding its answer.
MLQA shares question ids across translations, so one id links a question in every language to its
context in every language (``links.jsonl``).
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from .data import MlqaArchive
from .errors import ConfigError
from .data_settings import PrepareSettings
from .formats import read_source, write_dataset, write_trec_qrels
from .io import atomic_dir, gc_paused, write_json, write_jsonl
from .languages import DEFAULT_CORPUS_LANGUAGE, check_language, is_supported
from .params import check_int
from .splits import SPLITS, check_splits, check_tune_fraction, select_heldout, select_subset, select_tune, stable_id


@dataclass
class Prepared:
    contexts: list[dict] = field(default_factory=list)
    queries: list[dict] = field(default_factory=list)
    links: list[dict] = field(default_factory=list)
    stats: dict = field(default_factory=dict)
    corpus_language: str = DEFAULT_CORPUS_LANGUAGE

    @property
    def corpus(self) -> list[dict]:
        return [{k: c[k] for k in ("id", "lang", "title", "text")} for c in self.contexts
                if c["lang"] == self.corpus_language]

    def eval_queries(self) -> list[dict]:
        return [q for q in self.queries if q["split"] == "eval"]

    def qrels(self, split: str = "eval") -> list[tuple[str, str, int]]:
        """(query id, corpus-language passage id, 1) for every question of ``split``."""
        pivot = {link["qid"]: link["contexts"][self.corpus_language] for link in self.links}
        return [(q["id"], pivot[q["qid"]], 1) for q in self.queries if q["split"] == split]

    def answers(self) -> list[dict]:
        """Shared question id -> answer strings in the corpus language."""
        return [{"qid": l["qid"], "answers": l["answers"][self.corpus_language]} for l in self.links]

    def train_pairs(self) -> list[dict]:
        """(question in any language, its corpus-language passage) for the training split."""
        pivot = {link["qid"]: link["contexts"][self.corpus_language] for link in self.links}
        return [
            {"query_id": q["id"], "lang": q["lang"], "query": q["text"], "passage_id": pivot[q["qid"]]}
            for q in self.queries if q["split"] == "train"
        ]


def prepare(archive: MlqaArchive, splits: list[str], holdout_fraction: float = 0.3, seed: int = 0,
            max_articles: int = 0, tune_fraction: float = 0.0,
            corpus_language: str = DEFAULT_CORPUS_LANGUAGE) -> Prepared:
    """Normalise ``archive`` into contexts (all languages), queries, links and a train/tune/eval split.

    ``splits == [s]``: split ``s`` only, a deterministic ``holdout_fraction`` of its articles held
    out for evaluation. ``splits == [a, b]``: train on ``a``, evaluate on ``b``. ``tune_fraction``
    (0 = none) of the training articles then become the ``tune`` split (for choosing settings off the
    evaluation set; never trained on). ``max_articles`` (0 = all) keeps a deterministic subset of
    articles per split, for tests and quick runs. ``corpus_language`` (``data.corpus_language``): the
    language of the corpus paragraphs every question is linked to (each split needs its
    ``{split}-context-C-question-C.json``); languages outside ``xaug.languages`` are skipped.
    """
    check_tune_fraction(tune_fraction)
    pivot = check_language(corpus_language, "data.corpus_language")
    archive.validate(pivot)
    check_splits(splits)
    for split in splits:
        if split not in archive.splits():
            raise ConfigError(f"data.splits: split {split!r} is not in {archive.path} (it has {archive.splits()})")
    check_int(max_articles, "data.max_articles", minimum=0, note="0 = all")

    contexts: dict[tuple[str, str], dict] = {}
    questions: dict[tuple[str, str], str] = {}
    links: dict[str, dict] = {}
    for split in splits:
        for c_lang, q_lang in archive.pairs(split):
            if not is_supported(c_lang) or not is_supported(q_lang):
                continue
            doc = archive.read(split, c_lang, q_lang)
            for article in doc["data"]:
                title = article.get("title", "")
                for para in article.get("paragraphs", []):
                    text = para.get("context")
                    if not isinstance(text, str):
                        raise ConfigError(f"{archive.path}: {split}-context-{c_lang}-question-{q_lang}.json: paragraph without a 'context' string")
                    key = (c_lang, text)
                    if key not in contexts:
                        contexts[key] = {"id": stable_id(c_lang, text), "lang": c_lang, "title": title, "text": text}
                    cid = contexts[key]["id"]
                    for n, qa in enumerate(para.get("qas", [])):
                        missing = [k for k in ("id", "question", "answers") if k not in qa] if isinstance(qa, dict) else ["id"]
                        if missing:
                            raise ConfigError(f"{archive.path}: {split}-context-{c_lang}-question-{q_lang}.json: question "
                                              f"{n} of a paragraph of {title!r} lacks {missing} (SQuAD format: id, "
                                              "question, answers)")
                        qid = qa["id"]
                        link = links.setdefault(qid, {"qid": qid, "source_split": split, "contexts": {}, "answers": {}})
                        link["contexts"][c_lang] = cid
                        link["answers"][c_lang] = sorted({a["text"] for a in qa.get("answers", []) if a.get("text")})
                        questions[(qid, q_lang)] = qa["question"]

    by_id = {c["id"]: c for c in contexts.values()}
    links = {qid: l for qid, l in links.items() if pivot in l["contexts"]}
    for link in links.values():
        link["article"] = by_id[link["contexts"][pivot]]["title"]

    # Articles per source split; optional subset; split assignment.
    article_split: dict[str, str] = {}
    for split in splits:
        arts = sorted({l["article"] for l in links.values() if l["source_split"] == split})
        if max_articles:
            arts = select_subset(arts, max_articles, seed)
        if len(splits) == 1:
            held = select_heldout(arts, holdout_fraction, seed)
            article_split.update({a: ("eval" if a in held else "train") for a in arts})
        else:
            article_split.update({a: ("train" if split == splits[0] else "eval") for a in arts})
    tune = select_tune(sorted(a for a, s in article_split.items() if s == "train"), tune_fraction, seed)
    article_split.update({a: "tune" for a in tune})
    links = {qid: l for qid, l in links.items() if l["article"] in article_split}
    for link in links.values():
        link["split"] = article_split[link["article"]]

    used = {cid: link for link in links.values() for cid in link["contexts"].values()}
    out_contexts = []
    for c in sorted(by_id.values(), key=lambda c: (c["lang"] != pivot, c["lang"], c["id"])):
        if c["id"] in used:
            link = used[c["id"]]
            out_contexts.append({**c, "article": link["article"], "split": link["split"]})
    out_queries = []
    for (qid, lang), text in sorted(questions.items()):
        if qid in links:
            out_queries.append({"id": f"{qid}-{lang}", "qid": qid, "lang": lang, "text": text, "split": links[qid]["split"]})
    out_links = [
        {k: links[qid][k] for k in ("qid", "split", "article", "contexts", "answers")} for qid in sorted(links)
    ]
    stats = {
        "splits": list(splits),
        "corpus_language": pivot,
        "languages": sorted({c["lang"] for c in out_contexts} | {q["lang"] for q in out_queries}),
        "articles": {s: sum(1 for v in article_split.values() if v == s) for s in SPLITS},
        "corpus_passages": sum(1 for c in out_contexts if c["lang"] == pivot),
        "contexts": _count(out_contexts, "lang"),
        "queries": {s: _count([q for q in out_queries if q["split"] == s], "lang") for s in SPLITS},
    }
    return Prepared(out_contexts, out_queries, out_links, stats, pivot)


def prepare_download(raw_dir, settings: PrepareSettings, seed: int) -> Prepared:
    """``prepare`` on the archive the download stage put in ``raw_dir``, with its provenance (``source``,
    ``kind``, ``sha256``) recorded in the stats."""
    source = read_source(raw_dir)
    archive = MlqaArchive(Path(raw_dir) / source["archive"])
    with gc_paused():  # the archive's JSON and the dataset built from it: millions of acyclic objects at scale
        data = prepare(archive, settings.splits, settings.holdout_fraction, seed=seed,
                       max_articles=settings.max_articles, tune_fraction=settings.tune_fraction,
                       corpus_language=settings.corpus_language)
    data.stats["source"] = {k: source[k] for k in ("source", "kind", "sha256")}
    return data


def _count(rows, key):
    counts = defaultdict(int)
    for r in rows:
        counts[r[key]] += 1
    return dict(sorted(counts.items()))


def save_prepared(prepared: Prepared, out_dir) -> None:
    """Write the normalised dataset: BEIR-style JSONL, TREC qrels (eval, tune), answers, training pairs, stats,
    and ``dataset.json`` (the corpus language and the languages present: ``read_dataset`` reads it)."""
    with atomic_dir(out_dir) as out, gc_paused():  # the folder is replaced as a whole
        write_jsonl(out / "corpus.jsonl", prepared.corpus)
        write_jsonl(out / "contexts.jsonl", prepared.contexts)
        write_jsonl(out / "queries.jsonl", prepared.queries)
        write_jsonl(out / "links.jsonl", prepared.links)
        write_jsonl(out / "answers.jsonl", prepared.answers())
        write_jsonl(out / "train_pairs.jsonl", prepared.train_pairs())
        write_trec_qrels(out / "qrels.eval.trec", prepared.qrels("eval"))
        write_trec_qrels(out / "qrels.tune.trec", prepared.qrels("tune"))
        write_json(out / "stats.json", prepared.stats)
        write_dataset(out, prepared.corpus_language, prepared.stats.get("languages", []))
