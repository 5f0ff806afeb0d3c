"""Per-query measures from the rank of the single relevant passage, vectorised over queries.

Equal to ``metrics.evaluate_run`` (ir-measures rank measures, R@kt answer recall) for runs whose
queries each have one relevant passage, but scores a whole (queries x passages) score matrix at once.
"""
from __future__ import annotations

from itertools import chain

import numpy as np

from .metrics import RANK_MEASURES, TOKEN_BUDGETS

NO_ANSWER = np.iinfo(np.int32).max // 4  # answer end where no answer occurs


def answer_ends(doc_tokens: list[list[str]], answers: list[list[list[str]]]) -> np.ndarray:
    """(Q, N) int32: for query q and passage p the fewest leading tokens of p that hold a whole answer of q
    (start + length of its first occurrence), ``NO_ANSWER`` where none occurs."""
    index: dict[str, int] = {}
    ids = np.array([index.setdefault(t, len(index)) for t in chain.from_iterable(doc_tokens)], dtype=np.int64)
    counts = np.array([len(tokens) for tokens in doc_tokens], dtype=np.int64)
    first_token = np.concatenate([[0], np.cumsum(counts)])
    passage_of = np.repeat(np.arange(len(doc_tokens)), counts)
    by_token = np.argsort(ids, kind="stable")  # the positions of token 0, then of token 1, ..., each ascending
    token_start = np.concatenate([[0], np.cumsum(np.bincount(ids, minlength=len(index)))])

    def ends_of(answer: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
        """Passages holding ``answer`` and its end in each (one per occurrence)."""
        if any(t not in index for t in answer):
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        head = index[answer[0]]
        at = by_token[token_start[head]: token_start[head + 1]]  # candidate starts
        passage = passage_of[at]
        ok = at + len(answer) <= first_token[passage + 1]
        for j, t in enumerate(answer[1:], 1):
            ok &= ids[np.minimum(at + j, len(ids) - 1)] == index[t]
        return passage[ok], at[ok] - first_token[passage[ok]] + len(answer)

    out = np.full((len(answers), len(doc_tokens)), NO_ANSWER, dtype=np.int32)
    single: dict[tuple[str, ...], tuple[np.ndarray, np.ndarray]] = {}
    rows: dict[tuple, list[int]] = {}
    for q, query_answers in enumerate(answers):
        rows.setdefault(tuple(tuple(a) for a in query_answers if a), []).append(q)
    for answer_set, queries in rows.items():
        row = np.full(len(doc_tokens), NO_ANSWER, dtype=np.int32)
        for answer in answer_set:
            if answer not in single:
                single[answer] = ends_of(answer)
            np.minimum.at(row, *single[answer])
        out[queries] = row
    return out


class RankScorer:
    """Scores (Q, N) score matrices: every measure of ``metrics.ALL_MEASURES`` per query.

    ``relevant``: position of each query's relevant passage (-1: none); ``lengths``: tokens per passage;
    ``ends``: ``answer_ends``; ``allowed``: optional (Q, N) mask of the passages each query may rank;
    ``budgets``: the answer-recall measures, name -> tokens.
    """

    def __init__(self, relevant: np.ndarray, lengths: np.ndarray, ends: np.ndarray, depth: int,
                 allowed: np.ndarray | None = None, budgets: dict[str, int] = TOKEN_BUDGETS):
        self.relevant = np.asarray(relevant, dtype=np.int64)
        self.lengths = np.asarray(lengths, dtype=np.int64)
        self.ends = np.asarray(ends, dtype=np.int32)
        self.depth = depth
        self.allowed = None if allowed is None else np.asarray(allowed, dtype=bool)
        self.budgets = dict(budgets)
        if self.ends.shape != (len(self.relevant), len(self.lengths)):
            raise ValueError(f"answer ends {self.ends.shape} != (queries, passages) "
                             f"{(len(self.relevant), len(self.lengths))}")
        if self.allowed is not None and self.allowed.shape != self.ends.shape:
            raise ValueError(f"allowed mask {self.allowed.shape} != {self.ends.shape}")

    @classmethod
    def from_evaluator(cls, evaluator, passage_ids: list[str], depth: int | None = None) -> RankScorer:
        """For ``evaluator``'s queries (rows, in ``evaluator.query_ids`` order) against ``passage_ids``
        (columns, the order of the passage matrix); the ``parallel`` setting's mask comes along."""
        position = {p: i for i, p in enumerate(passage_ids)}
        relevant = []
        for q in evaluator.query_ids:
            docs = [d for d, rel in evaluator.qrels.get(q, {}).items() if rel > 0]
            if len(docs) > 1:
                raise ValueError(f"query {q}: {len(docs)} relevant passages (RankScorer needs at most one)")
            relevant.append(position.get(docs[0], -1) if docs else -1)
        tokens = [evaluator.doc_tokens[p] for p in passage_ids]
        ends = answer_ends(tokens, [evaluator.answers.get(q, []) for q in evaluator.query_ids])
        allowed = None
        if evaluator.allowed:  # a query in L ranks the passages with an L parallel; other languages rank all
            langs = sorted(evaluator.allowed)
            masks = np.array([[p in evaluator.allowed[lang] for p in passage_ids] for lang in langs]
                             + [[True] * len(passage_ids)], dtype=bool).reshape(len(langs) + 1, len(passage_ids))
            row = {lang: i for i, lang in enumerate(langs)}
            allowed = masks[[row.get(evaluator.query_lang[q], len(langs)) for q in evaluator.query_ids]]
        return cls(np.array(relevant), np.array([len(t) for t in tokens]), ends,
                   evaluator.depth if depth is None else depth, allowed)

    def top(self, scores: np.ndarray) -> np.ndarray:
        """(Q, depth) positions of each query's best passages, best first (equal scores: the lower position
        first); -1 pads past the allowed ones."""
        scores = np.asarray(scores)
        if self.allowed is not None:
            scores = np.where(self.allowed, scores, -np.inf)
        n = scores.shape[1]
        k = min(self.depth, n)
        order = np.sort(np.argpartition(scores, n - k, axis=1)[:, n - k:], axis=1) if k < n else \
            np.broadcast_to(np.arange(k), (len(scores), k))
        order = np.take_along_axis(order, np.argsort(-np.take_along_axis(scores, order, 1), axis=1, kind="stable"), 1)
        if self.allowed is not None:
            order = np.where(np.take_along_axis(self.allowed, order, 1), order, -1)
        return np.pad(order, ((0, 0), (0, self.depth - k)), constant_values=-1)

    @staticmethod
    def _rank_measures(rank: np.ndarray) -> dict[str, np.ndarray]:
        """RANK_MEASURES from the rank of the one relevant passage (inf: not ranked); ideal DCG is 1."""
        gain = {"nDCG": 1 / np.log2(1 + rank), "RR": 1 / rank, "R": np.ones_like(rank)}
        out = {}
        for name in RANK_MEASURES:
            kind, cutoff = name.split("@")
            out[name] = np.where(rank <= int(cutoff), gain[kind], 0.0)
        return out

    def measures(self, ranking: np.ndarray) -> dict[str, np.ndarray]:
        """Per query (float64, (Q,)): the rank measures, then the answer recalls (by default every measure of
        ``metrics.ALL_MEASURES``), for ``ranking`` (positions, best first, -1: none)."""
        ranking = np.asarray(ranking, dtype=np.int64)
        ranked = ranking >= 0
        hit = ranked & (ranking == self.relevant[:, None])
        out = self._rank_measures(np.where(hit.any(1), hit.argmax(1) + 1, np.inf))
        # A passage starting at token offset o shows an answer ending e tokens into it iff o + e <= budget.
        safe = np.where(ranked, ranking, 0)
        lengths = np.where(ranked, self.lengths[safe], 0)
        end = np.where(ranked, np.take_along_axis(self.ends, safe, 1), NO_ANSWER) + np.cumsum(lengths, 1) - lengths
        for name, budget in self.budgets.items():
            out[name] = (end <= budget).any(1).astype(np.float64)
        return out

    def score(self, scores: np.ndarray, names: list[str] | None = None) -> dict[str, np.ndarray]:
        """``measures(top(scores))``, or only the measures ``names``. Rank measures alone (e.g. a tuning grid's
        nDCG@10) need no ranking: only how many allowed passages outscore the relevant one (equal scores rank
        the lower position first; -inf, a passage an approximate index did not find, ranks nowhere)."""
        if names is not None and all(name in RANK_MEASURES for name in names):
            rank = self._rank_measures(self.rank(scores))
            return {name: rank[name] for name in names}
        out = self.measures(self.top(scores))
        return out if names is None else {name: out[name] for name in names}

    def rank(self, scores: np.ndarray) -> np.ndarray:
        """(Q,) float64: the rank of each query's relevant passage, inf where it is not ranked (none, not
        allowed, scored -inf or below the depth)."""
        scores = np.asarray(scores)
        rows = np.arange(len(scores))
        relevant = np.maximum(self.relevant, 0)
        own = scores[rows, relevant][:, None]
        above = (scores > own) | ((scores == own) & (np.arange(scores.shape[1]) < relevant[:, None]))
        if self.allowed is not None:
            above &= self.allowed
        rank = above.sum(1).astype(np.float64) + 1
        ranked = (self.relevant >= 0) & np.isfinite(own[:, 0]) & (rank <= self.depth)
        if self.allowed is not None:
            ranked &= self.allowed[rows, relevant]
        return np.where(ranked, rank, np.inf)
