"""The query set of an experiment: one corpus setting's evaluation (or tuning) queries, their language
and question, and a scorer of passage matrices against them (every measure per query, vectorised)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .leave_out import Correction
from .metrics import ALL_MEASURES
from .ranking import RankScorer
from .search import FaissSearcher


@dataclass
class QuerySet:
    """The evaluation queries of one corpus setting, and a scorer of passage matrices against them."""

    vectors: np.ndarray       # (Q, dim)
    lang: np.ndarray          # (Q,) index into `languages`; -1 = the corpus language
    clusters: np.ndarray      # (Q,) question id: a question and its translations form one cluster
    scorer: RankScorer
    setting: str
    factory: str = "Flat"
    search_params: str = ""
    questions: np.ndarray | None = None  # (Q,) the question id each query asks (shared by its translations)

    @classmethod
    def from_evaluator(cls, evaluator, languages: list[str], passage_ids: list[str], factory: str = "Flat",
                       search_params: str = "") -> "QuerySet":
        index = {lang: i for i, lang in enumerate(languages)}
        lang = np.array([index.get(evaluator.query_lang[q], -1) for q in evaluator.query_ids])
        clusters = np.array([evaluator.query_cluster[q] for q in evaluator.query_ids])
        questions = np.array([evaluator.query_question[q] for q in evaluator.query_ids])
        return cls(np.ascontiguousarray(evaluator.query_vectors, dtype=np.float32), lang, clusters,
                   RankScorer.from_evaluator(evaluator, passage_ids), evaluator.setting, factory, search_params,
                   questions)

    def ranks_like(self, other: "QuerySet") -> bool:
        """Whether ``other`` scores every passage matrix as this one does: the same queries, relevant passages,
        answers, depth, index and passages each query may rank (no mask and an all-true mask are the same)."""
        a, b = self.scorer, other.scorer
        mask = (lambda s: np.ones(s.ends.shape, dtype=bool) if s.allowed is None else s.allowed)
        same = [(self.vectors, other.vectors), (self.lang, other.lang), (self.clusters, other.clusters),
                (a.relevant, b.relevant), (a.lengths, b.lengths), (a.ends, b.ends), (mask(a), mask(b))]
        return (self.factory == other.factory and self.search_params == other.search_params and a.depth == b.depth
                and a.budgets == b.budgets and np.array_equal(self.questions, other.questions)
                and all(x.shape == y.shape and np.array_equal(x, y) for x, y in same))

    def measures(self, scores: np.ndarray, names: list[str] | None = None) -> np.ndarray:
        """Every measure of ALL_MEASURES (or of ``names``) per query, (M, Q), from a (Q, N) score matrix."""
        names = ALL_MEASURES if names is None else names
        values = self.scorer.score(scores, names)
        return np.stack([values[m] for m in names])

    def score(self, passages: np.ndarray, correction: Correction | None = None,
              names: list[str] | None = None) -> np.ndarray:
        """Every measure of ALL_MEASURES (or of ``names``) per query, (M, Q), for the corpus as ``passages``;
        ``correction``: scores to overwrite (``xaug.leave_out``; with an approximate index, those passages are
        scored exactly whether or not the index found them)."""
        if self.factory == "Flat":
            scores = self.vectors @ np.asarray(passages, dtype=np.float32).T
        else:  # an approximate index ranks only what it finds
            searcher = FaissSearcher.build(passages, [str(i) for i in range(len(passages))], self.factory,
                                           self.search_params)
            found, idx = searcher.search_positions(self.vectors, len(passages))
            scores = np.full((len(self.vectors), len(passages)), -np.inf, dtype=np.float32)
            rows = np.repeat(np.arange(len(idx)), idx.shape[1]).reshape(idx.shape)
            scores[rows[idx >= 0], idx[idx >= 0]] = found[idx >= 0]
        return self.measures(scores if correction is None else correction.apply(scores), names)
