"""The query set of an experiment: one corpus setting's evaluation (or tuning) queries, their language
and question, and a scorer of passage matrices against them (every measure per query, vectorised): over
every passage, or over each query's candidates (``candidates`` = K > 0, ``xaug.candidates``)."""
from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from .candidates import CandidateSearch, candidate_scores, correction_at, list_tops, pairs_matrix, slots, union
from .leave_out import Correction
from .metrics import ALL_MEASURES
from .ranking import Judgements, RankScorer, integer_columns
from .search import FaissSearcher


# passages beyond a system's depth and corrections that a search of its own corpus returns (``QuerySet.own_depth``)
OWN_MARGIN = 10


def own_depth(candidates: int, depth: int, corrected: int = 0) -> int:
    """``QuerySet.own_depth`` of a query set with K ``candidates`` and ``evaluate.depth`` ``depth``."""
    return min(candidates, depth + corrected + OWN_MARGIN)


@dataclass
class QuerySet:
    """The evaluation queries of one corpus setting, and a scorer of passage matrices against them."""

    vectors: np.ndarray       # (Q, dim)
    lang: np.ndarray          # (Q,) index into `languages`; -1 = the corpus language
    clusters: np.ndarray      # (Q,) question id: a question and its translations form one cluster
    judgements: Judgements | None
    setting: str
    factory: str = "Flat"
    search_params: str = ""
    questions: np.ndarray | None = None  # (Q,) the question id each query asks (shared by its translations)
    candidates: int = 0       # 0: every passage is scored; K: each query's candidates (xaug.candidates)
    columns: np.ndarray | None = None    # (Q, W): the passages this view's score matrices hold, per query
    search: CandidateSearch = CandidateSearch()  # how each candidate list's top K is found (Flat: exactly)
    block: int = 0            # with candidates: queries scored at once (``blocks``); 0: all

    @classmethod
    def from_evaluator(cls, evaluator, languages: list[str], passage_ids: list[str], factory: str = "Flat",
                       search_params: str = "", candidates: int = 0,
                       search: CandidateSearch = CandidateSearch(), block: int = 0) -> "QuerySet":
        index = {lang: i for i, lang in enumerate(languages)}
        lang = np.array([index.get(evaluator.query_lang[q], -1) for q in evaluator.query_ids])
        clusters = np.array([evaluator.query_cluster[q] for q in evaluator.query_ids])
        questions = np.array([evaluator.query_question[q] for q in evaluator.query_ids])
        return cls(np.ascontiguousarray(evaluator.query_vectors, dtype=np.float32), lang, clusters,
                   Judgements.from_evaluator(evaluator, passage_ids), evaluator.setting, factory, search_params,
                   questions, candidates, search=search, block=block)

    @cached_property
    def scorer(self) -> RankScorer:
        """Scores (Q, N) matrices, or (Q, W) matrices over ``columns`` in a view (``restrict``)."""
        if self.columns is None:
            return self.judgements.dense()
        return self.judgements.restricted(self.columns)

    def restrict(self, columns: np.ndarray) -> "QuerySet":
        """A view that scores (Q, W) matrices whose row q holds passages ``columns[q]`` (``xaug.candidates``), int32
        or int64 as given (a block's candidates are int32: no int64 copy held beside them)."""
        return dataclasses.replace(self, columns=integer_columns(columns))

    def blocks(self) -> list[np.ndarray]:
        """The rows of each block of at most ``block`` queries that the engine scores at once: with candidates,
        memory is O(block x candidates) per scorer; every query's measures are its own, so the blocks' measures
        side by side equal those of one block. One block without candidates or ``block`` (0)."""
        n = len(self.vectors)
        if not self.candidates or not self.block or n <= self.block:
            return [np.arange(n)]
        return np.array_split(np.arange(n), -(-n // self.block))

    def take(self, rows: np.ndarray) -> "QuerySet":
        """The queries ``rows`` (distinct, ascending) as a query set of their own (itself for every row)."""
        rows = np.asarray(rows, dtype=np.int64)
        if len(rows) == len(self.vectors) and np.array_equal(rows, np.arange(len(rows))):
            return self
        return dataclasses.replace(self, vectors=self.vectors[rows], lang=self.lang[rows], clusters=self.clusters[rows],
                                   judgements=self.judgements.take(rows), columns=None,
                                   questions=None if self.questions is None else self.questions[rows])

    def candidate_columns(self, *parts: np.ndarray) -> np.ndarray:
        """``parts`` (each (Q, m) passage positions, -1: none) with every query's relevant passage."""
        return union(self.judgements.relevant[:, None], *parts)

    def ranks_like(self, other: "QuerySet") -> bool:
        """Whether ``other`` scores every passage matrix as this one does: the same queries, relevant passages,
        answers, depth, index, candidates and passages each query may rank (no mask and an all-true mask are
        the same)."""
        return self.ranking_key() == other.ranking_key()

    def ranking_key(self) -> tuple:
        """What ``ranks_like`` compares, in a few bytes (a stage keeps it rather than the query set)."""
        h = hashlib.blake2b(digest_size=20)
        for a in (self.vectors, self.lang, self.clusters):
            h.update(repr((a.dtype.str, a.shape)).encode())
            h.update(np.ascontiguousarray(a).data)
        h.update(repr(None if self.questions is None else self.questions.tolist()).encode())
        return (self.factory, self.search_params, self.candidates, self.search, h.hexdigest(),
                self.judgements.digest())

    def measures(self, scores: np.ndarray, names: list[str] | None = None) -> np.ndarray:
        """Every measure of ALL_MEASURES (or of ``names``) per query, (M, Q), from a (Q, N) score matrix."""
        names = ALL_MEASURES if names is None else names
        values = self.scorer.score(scores, names)
        return np.stack([values[m] for m in names])

    @property
    def searches_lists(self) -> bool:
        """Whether candidates come from searching an index of each list (``xaug.candidates.list_tops``)."""
        return bool(self.candidates) and not self.search.exact and self.factory == "Flat"

    def found_tops(self, passages: np.ndarray, corrected: int | None = None) -> np.ndarray | None:
        """(Q, K): every query's top K of ``passages`` from an index of ``search.index`` over them
        (``xaug.candidates.list_tops``), found once so that ``score`` can take each query block's rows (``tops``)
        instead of building that index once per block; None where ``score`` searches no such index (no
        candidates, a Flat search, or the corpus index of ``factory``). ``corrected``: ``passages`` are the
        system's own corpus, scored with leave-out corrections of at most that many passages per query: each
        query's top ``own_depth(corrected)`` instead, where that is the start of its top K (``_prefixes``)."""
        if not self.searches_lists:
            return None
        k = self.candidates if corrected is None else self.own_search_depth(len(passages), corrected)
        return list_tops(self.vectors, [np.asarray(passages, dtype=np.float32)], k, self.judgements,
                         None, self.search)[0]

    def own_depth(self, corrected: int = 0) -> int:
        """How deep a list of a system's own corpus (equal items' pooled corpus, a set's fused corpora:
        ``xaug.variants``) must be searched for that system's measures: its top ``judgements.depth`` passages are
        all the measures read (``xaug.ranking.RankScorer``), its relevant passage is scored anyway, and a leave-out
        correction may lower ``corrected`` passages out of that top, so that as many behind them are needed;
        ``OWN_MARGIN`` more for float rounding between the index's vectors and the scores, which may swap passages
        of nearly equal score (the synthetic archives' near-copies); at most K. Where a list's search to that depth
        is the start of its search to K (``found_tops``), the measures are those of a search to K, and a faiss
        search costs less the shallower it goes (its heap of results; docs/design.md)."""
        return own_depth(self.candidates, self.judgements.depth, corrected)

    def own_search_depth(self, n: int, corrected: int = 0) -> int:
        """How deep to search a system's own corpus of ``n`` passages: ``own_depth(corrected)`` where that search
        finds the start of the search to K (``_prefixes``), K elsewhere."""
        return self.own_depth(corrected) if self._prefixes(n) else self.candidates

    def _prefixes(self, n: int) -> bool:
        """Whether each query's search of a list of ``n`` passages to a smaller depth finds the start of its
        search to K: the index's does (``CandidateSearch.prefixes``), and every mask row the queries use allows
        more than K passages (a row of at most K is taken whole, exactly)."""
        if not self.search.prefixes(self.vectors.shape[1]):
            return False
        masks = self.judgements.masks
        allowed = n if masks is None else int(np.asarray(masks, bool)[np.unique(self.judgements.mask_of)].sum(1).min())
        return allowed > self.candidates

    def score(self, passages: np.ndarray, correction: Correction | None = None,
              names: list[str] | None = None, tops: np.ndarray | None = None) -> np.ndarray:
        """Every measure of ALL_MEASURES (or of ``names``) per query, (M, Q), for the corpus as ``passages``;
        ``correction``: scores to overwrite (``xaug.leave_out``; with an approximate index, those passages are
        scored exactly whether or not the index found them). With candidates, each query scores the top K of
        the search and its relevant and corrected passages (exact for a Flat index and K >= depth); ``tops``:
        these queries' rows of ``found_tops(passages)``, found beforehand for a larger set of queries.
        Without a correction, the candidates of an exact corpus index are scored ``blocks()`` at a time (memory
        O(block x K); the same measures): at P = 100k, 80,606 queries in one block held 1.9 GB, in 17 0.5 GB."""
        passages = np.asarray(passages, dtype=np.float32)
        if self.candidates:
            blocks = self.blocks()
            if len(blocks) > 1 and correction is None and self.factory == "Flat":
                tops = self.found_tops(passages) if tops is None else tops
                return np.concatenate([self.take(rows)._score_candidates(
                    passages, None, names, None if tops is None else tops[rows]) for rows in blocks], axis=1)
            return self._score_candidates(passages, correction, names, tops)
        if self.factory == "Flat":
            scores = self.vectors @ passages.T
        else:  # an approximate index ranks only what it finds
            searcher = FaissSearcher.build(passages, [str(i) for i in range(len(passages))], self.factory,
                                           self.search_params)
            found, idx = searcher.search_positions(self.vectors, len(passages))
            scores = np.full((len(self.vectors), len(passages)), -np.inf, dtype=np.float32)
            rows = np.repeat(np.arange(len(idx)), idx.shape[1]).reshape(idx.shape)
            scores[rows[idx >= 0], idx[idx >= 0]] = found[idx >= 0]
        return self.measures(scores if correction is None else correction.apply(scores), names)

    def _score_candidates(self, passages: np.ndarray, correction: Correction | None,
                          names: list[str] | None, tops: np.ndarray | None = None) -> np.ndarray:
        fixed = np.zeros((len(self.vectors), 0), np.int64) if correction is None else \
            pairs_matrix(correction.rows, correction.cols, len(self.vectors))
        if self.factory == "Flat":
            columns, (scores,) = candidate_scores(self.vectors, [passages], self.candidates, self.judgements, (fixed,),
                                                  search=self.search, tops=None if tops is None else [tops])
        else:  # the index's top K (over the whole corpus; the parallel setting's mask applies after)
            searcher = FaissSearcher.build(passages, [str(i) for i in range(len(passages))], self.factory,
                                           self.search_params)
            found, idx = searcher.search_positions(self.vectors, self.candidates)
            columns = self.candidate_columns(idx, fixed)
            scores = np.full(columns.shape, -np.inf, dtype=np.float32)
            rows = np.repeat(np.arange(len(idx)), idx.shape[1]).reshape(idx.shape)
            hit = idx >= 0
            scores[rows[hit], slots(columns, rows[hit], idx[hit])] = found[hit]
        view = self.restrict(columns)
        return view.measures(scores if correction is None else correction_at(correction, columns).apply(scores), names)
