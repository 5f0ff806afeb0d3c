"""Scoring a set of passage vectors against the evaluation (or tuning) queries (shared by evaluate and scaling)."""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import ConfigError
from .formats import read_dataset, read_embeddings, read_trec_qrels, write_run, write_table
from .io import gc_paused, read_jsonl
from .languages import check_languages
from .leave_out import rerank
from .metrics import evaluate_run, join_tokens, recall_tokens, summarise
from .parallel import parallel_passages
from .params import check_int
from .search import FaissSearcher


SETTINGS = ("global", "parallel")
QUERY_SPLITS = ("eval", "tune")  # the held-out splits an Evaluator scores (train is never scored)


def check_setting(setting: str) -> str:
    if setting not in SETTINGS:
        raise ConfigError(f"evaluate.settings: unknown corpus setting {setting!r} (expected one of {list(SETTINGS)})")
    return setting


@dataclass
class EvaluateSettings:
    """The ``evaluate`` params group: the ranking depth, and the corpus settings every system is scored in."""

    depth: int = 100
    settings: list[str] = field(default_factory=lambda: ["global"])

    def __post_init__(self):
        check_int(self.depth, "evaluate.depth")
        if not isinstance(self.settings, list) or not self.settings:
            raise ConfigError(f"evaluate.settings: expected a non-empty list of corpus settings among "
                              f"{list(SETTINGS)}, got {self.settings!r}")
        for setting in self.settings:
            check_setting(setting)


def default_systems(index_dir, methods: list[str]) -> list[str]:
    """``NAME=INDEX`` of the baseline and every method, from ``index_dir/<name>.faiss``."""
    return [f"{name}={Path(index_dir) / name}.faiss" for name in ["baseline", *methods]]


def system_indexes(specs: list[str]) -> dict[str, Path]:
    """System name -> its index file, from ``NAME=INDEX`` specs (in order; a repeated name: the last index);
    every file must exist (checked now, before any is loaded)."""
    indexes = {}
    for spec in specs:
        name, _, index = spec.partition("=")
        if not Path(index).is_file():
            raise ConfigError(f"{index}: index file not found (system {name!r})")
        indexes[name] = Path(index)
    return indexes


def load_systems(specs: list[str], search_params: str = ""):
    """(system name, its searcher) for each ``NAME=INDEX`` spec, loaded one at a time as the caller asks for
    the next: one index in memory at once, however many systems are compared."""
    for name, index in system_indexes(specs).items():
        yield name, FaissSearcher.load(index, search_params)


def metrics_path(out, setting: str) -> Path:
    """Where a corpus setting's summary goes: ``out`` for global, ``<stem>_<setting><suffix>`` beside it otherwise."""
    out = Path(out)
    return out if setting == "global" else out.with_name(f"{out.stem}_{setting}{out.suffix}")


@gc_paused()  # the runs and per-query measures: millions of acyclic objects (docs/testing.md)
def evaluate_systems(evaluator: "Evaluator", searchers: dict[str, FaissSearcher], runs,
                     left_out: dict[str, tuple[list[str], list[str], np.ndarray]] | None = None) -> dict[str, dict]:
    """Search and score every system in ``evaluator``'s corpus setting: per system a TREC run and the per-query
    measures (CSV) in ``runs`` (``<name>[.<setting>].trec`` / ``.per_query.csv``); returns name -> summary.
    ``left_out``: system -> its passages fused without one question's items (``formats.read_leave_out``),
    scored leave-question-out (``Evaluator.leave_out``)."""
    suffix = "" if evaluator.setting == "global" else f".{evaluator.setting}"
    runs = Path(runs)
    metrics = {}
    for name, searcher in searchers.items():
        held = (left_out or {}).get(name)
        if held is not None and len(held[0]):
            ranking, scores = evaluator.leave_out(*evaluator.search(searcher, evaluator.depth + 1), *held)
        else:
            ranking, scores = evaluator.search(searcher)
        per_query = evaluator.per_query(ranking, scores)
        metrics[name] = evaluator.summary(per_query)
        write_run(runs / f"{name}{suffix}.trec", ranking, scores, name)
        write_table(runs / f"{name}{suffix}.per_query.csv", evaluator.frame(per_query))
    return metrics


def allowed_passages(data_dir, setting: str, corpus_language: str) -> dict[str, set[str]]:
    """Query language -> the passages its queries may rank in corpus ``setting`` (the parallel setting: those with
    a parallel in that language, from ``data_dir``/links.jsonl); empty: every passage."""
    if check_setting(setting) != "parallel":
        return {}
    return parallel_passages(read_jsonl(Path(data_dir) / "links.jsonl"), corpus_language)


class Evaluator:
    """Loads queries, qrels, answers and passage tokens once; scores any searcher over the corpus.

    Corpus settings: ``global`` (XOR-TyDi style: every query searches every corpus paragraph) and
    ``parallel`` (MTEB's MLQARetrieval: a query in L searches only the corpus paragraphs that have an
    L parallel; queries in the corpus language search everything). The corpus language is the one the
    prepare stage recorded (``corpus_language``); its queries are scored beside ``languages``.

    ``split``: ``eval`` (the test set) or ``tune`` (the tuning split, for choosing settings such as fusion
    weights): qrels.<split>.trec, and only the loaded queries that queries.jsonl puts in that split.
    """

    @gc_paused()  # the passages' and answers' tokens, the queries: millions of acyclic objects
    def __init__(self, data_dir, query_prefix, languages: list[str], depth: int = 100, setting: str = "global",
                 split: str = "eval"):
        data = Path(data_dir)
        self.setting = check_setting(setting)
        if split not in QUERY_SPLITS:
            raise ConfigError(f"split: expected one of {list(QUERY_SPLITS)}, got {split!r}")
        self.split = split
        dataset = read_dataset(data)
        self.corpus_language = dataset["corpus_language"]
        self.languages = check_languages(languages, dataset["languages"], corpus_language=self.corpus_language)
        self.depth = depth
        queries = {q["id"]: q for q in read_jsonl(data / "queries.jsonl") if q["split"] == split}
        vectors, ids = read_embeddings(query_prefix)
        if not any(q in queries for q in ids):
            raise ConfigError(f"{query_prefix}.ids.txt: none of its {len(ids)} queries is in the {split!r} split "
                              f"of {data / 'queries.jsonl'}")
        wanted = set(self.languages) | {self.corpus_language}
        # queries of other splits are dropped: a query file holding them cannot leak into this split's scores
        keep = [i for i, q in enumerate(ids) if q in queries and queries[q]["lang"] in wanted]
        self.query_ids = [ids[i] for i in keep]
        self.query_vectors = vectors[keep]
        self.query_lang = {q: queries[q]["lang"] for q in self.query_ids}
        self.query_question = {q: queries[q]["qid"] for q in self.query_ids}  # shared by a question's translations
        self.qrels = {q: r for q, r in read_trec_qrels(data / f"qrels.{split}.trec").items() if q in self.query_lang}
        # augmentation changes passages: every query whose relevant passage is p (a question, its translations and
        # the other questions about p) is one cluster, the unit of significance tests
        self.query_cluster = {q: "|".join(sorted(d for d, rel in self.qrels.get(q, {}).items() if rel > 0))
                              for q in self.query_ids}
        self.doc_tokens = {c["id"]: recall_tokens(c["text"]) for c in read_jsonl(data / "corpus.jsonl")}
        self._doc_strings: dict[str, str] = {}  # filled on first use, shared with in_setting's copies
        answers = {a["qid"]: [recall_tokens(x) for x in a["answers"]] for a in read_jsonl(data / "answers.jsonl")}
        self.answers = {q: answers.get(queries[q]["qid"], []) for q in self.query_ids}
        self.data = data
        self.allowed = self._allowed(setting)

    def in_setting(self, setting: str) -> "Evaluator":
        """This evaluator in another corpus setting, sharing its queries, judgements, answers and passage tokens
        (loaded once however many settings are scored)."""
        other = copy.copy(self)
        other.setting = check_setting(setting)
        other.allowed = self._allowed(setting)
        return other

    def _allowed(self, setting: str) -> dict[str, set[str]]:
        return allowed_passages(self.data, setting, self.corpus_language)

    def search(self, searcher: FaissSearcher, depth: int | None = None) -> tuple[dict, dict]:
        """Top-``depth`` (default ``self.depth``) passages per query; in the parallel setting, ranked among the
        allowed ones only: each language's queries search deeper until ``depth`` allowed passages are found
        or the index is exhausted (from the depth that the share of allowed passages predicts, doubling;
        memory queries x that depth, not queries x passages; exact for a Flat index)."""
        depth = self.depth if depth is None else depth
        if not self.allowed:
            scores, ranked = searcher.search(self.query_vectors, depth)
            return (dict(zip(self.query_ids, ranked)),
                    {q: [float(x) for x in s[: len(r)]] for q, s, r in zip(self.query_ids, scores, ranked)})
        n = searcher.index.ntotal
        everything = np.ones(n + 1, dtype=bool)
        everything[-1] = False  # position -1: nothing found
        groups: dict[str, list[int]] = {}
        for row, q in enumerate(self.query_ids):
            groups.setdefault(self.query_lang[q], []).append(row)
        ranking, score_lists = {}, {}
        for lang, rows in groups.items():
            mask = everything
            if lang in self.allowed:
                mask = np.array([pid in self.allowed[lang] for pid in searcher.ids] + [False])
            share = max(int(mask.sum()), 1) / max(n, 1)
            todo, k = np.array(rows), min(n, max(depth, int(np.ceil(2 * depth / share))))
            while len(todo):
                scores, idx = searcher.search_positions(self.query_vectors[todo], k)
                short = []
                for row, s, r in zip(todo, scores, idx):
                    keep = np.flatnonzero(mask[r])[:depth]
                    if len(keep) < depth and k < n:
                        short.append(row)
                        continue
                    q = self.query_ids[row]
                    ranking[q] = [searcher.ids[j] for j in r[keep]]
                    score_lists[q] = s[keep].astype(float).tolist()
                todo, k = np.array(short, dtype=np.int64), min(n, 2 * k)
        return {q: ranking[q] for q in self.query_ids}, {q: score_lists[q] for q in self.query_ids}

    def leave_out(self, ranking: dict, score_lists: dict, questions: list[str], passages: list[str],
                  vectors: np.ndarray) -> tuple[dict, dict]:
        """The top ``depth`` of each query once the passages holding its own question's items are scored
        without them (``vectors``: row i is passage ``passages[i]`` fused without question ``questions[i]``'s
        items); ``ranking`` must hold the top ``depth + 1`` of the search (``xaug.leave_out.rerank``)."""
        held: dict[str, list[int]] = {}
        for i, question in enumerate(questions):
            held.setdefault(question, []).append(i)
        ranking, score_lists = dict(ranking), dict(score_lists)
        for row, q in enumerate(self.query_ids):
            allowed = self.allowed.get(self.query_lang[q])
            for i in held.get(self.query_question[q], ()):
                if allowed is None or passages[i] in allowed:
                    score = float(np.dot(self.query_vectors[row], vectors[i]))
                    ranking[q], score_lists[q] = rerank(ranking[q], score_lists[q], passages[i], score, self.depth + 1)
        return ({q: r[: self.depth] for q, r in ranking.items()},
                {q: s[: self.depth] for q, s in score_lists.items()})

    def per_query(self, ranking, score_lists) -> dict[str, dict[str, float]]:
        if not self._doc_strings:
            self._doc_strings.update(join_tokens(self.doc_tokens))
        return evaluate_run(ranking, score_lists, self.qrels, self.doc_tokens, self.answers, self._doc_strings)

    def summary(self, per_query, languages: list[str] | None = None) -> dict:
        return summarise(per_query, self.query_lang, languages if languages is not None else self.languages,
                         pivot=self.corpus_language)

    def frame(self, per_query) -> pd.DataFrame:
        frame = pd.DataFrame.from_dict(per_query, orient="index").rename_axis("query_id").reset_index()
        frame.insert(1, "lang", frame["query_id"].map(self.query_lang))
        return frame.sort_values("query_id").reset_index(drop=True)
