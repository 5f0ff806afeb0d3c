"""Per-query measures from the rank of the single relevant passage, vectorised over queries.

Equal to ``metrics.evaluate_run`` (ir-measures rank measures, R@kt answer recall) for runs whose
queries each have one relevant passage, but scores a whole (queries x passages) score matrix at once.
"""
from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass, field
from functools import cached_property
from itertools import chain

import numpy as np

from .metrics import RANK_MEASURES, TOKEN_BUDGETS

NO_ANSWER = np.iinfo(np.int32).max // 4  # answer end where no answer occurs


def answer_end_pairs(doc_tokens: list[list[str]], answers: list[list[list[str]]]) -> "AnswerEnds":
    """For every query q and passage p that holds a whole answer of q, the fewest leading tokens of p that hold
    one (start + length of its first occurrence): the sparse form of ``answer_ends`` (memory in the pairs,
    not in queries x passages)."""
    # each distinct token's id in order of first occurrence (``dict.fromkeys`` and ``map`` run in C)
    index = {t: i for i, t in enumerate(dict.fromkeys(chain.from_iterable(doc_tokens)))}
    counts = np.array([len(tokens) for tokens in doc_tokens], dtype=np.int64)
    ids = np.fromiter(map(index.__getitem__, chain.from_iterable(doc_tokens)), dtype=np.int64, count=int(counts.sum()))
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

    single: dict[tuple[str, ...], tuple[np.ndarray, np.ndarray]] = {}
    row_of_set: dict[tuple, int] = {}  # an answer set's row: its passages (ascending) and ends, held once
    passages, ends = [np.zeros(0, np.int32)], [np.zeros(0, np.int32)]
    row_of = np.zeros(len(answers), dtype=np.int64)
    for q, query_answers in enumerate(answers):
        answer_set = tuple(tuple(a) for a in query_answers if a)
        if answer_set not in row_of_set:
            for answer in answer_set:
                if answer not in single:
                    single[answer] = ends_of(answer)
            passage = np.concatenate([single[a][0] for a in answer_set] or [np.zeros(0, np.int64)])
            end = np.concatenate([single[a][1] for a in answer_set] or [np.zeros(0, np.int64)])
            order = np.lexsort((end, passage))  # per passage its smallest end first
            passage, end = passage[order], end[order]
            first = np.r_[True, passage[1:] != passage[:-1]] if len(passage) else np.zeros(0, bool)
            row_of_set[answer_set] = len(passages) - 1
            passages.append(passage[first].astype(np.int32))
            ends.append(end[first].astype(np.int32))
        row_of[q] = row_of_set[answer_set]
    # 8 bytes a pair of an answer set and a passage that holds one of its answers: queries asking for the same
    # answers share their row (the scale benchmark's archives ask each question in each of a paragraph's
    # replicas, and each of them holds its answers)
    counts = np.array([len(p) for p in passages[1:]], dtype=np.int64)
    return AnswerEnds(np.concatenate([[0], np.cumsum(counts)]), np.concatenate(passages), np.concatenate(ends),
                      row_of, (len(answers), len(doc_tokens)))


@dataclass(eq=False)
class AnswerEnds:
    """(query, passage) -> answer end for the pairs where the passage holds an answer of the query, ``NO_ANSWER``
    elsewhere. Held by answer set in compressed rows: query q's pairs are those of row ``row_of[q]``,
    ``passages[starts[r]:starts[r + 1]]`` (ascending) and their ``ends``, one row for every query that asks for
    the same answers. In query order the pairs ascend by ``keys``, ``query * passages + passage``."""

    starts: np.ndarray    # (R + 1,) int64
    passages: np.ndarray  # (E,) int32
    ends: np.ndarray      # (E,) int32
    row_of: np.ndarray    # (Q,) int64
    shape: tuple[int, int]

    @classmethod
    def from_pairs(cls, rows, cols, ends, n_queries: int, n_passages: int) -> "AnswerEnds":
        """From (query, passage, end) triples (distinct pairs): a row per query."""
        rows, cols = np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)
        order = np.argsort(rows * n_passages + cols, kind="stable")
        starts = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=n_queries))]).astype(np.int64)
        return cls(starts, cols[order].astype(np.int32), np.asarray(ends, dtype=np.int32)[order],
                   np.arange(n_queries, dtype=np.int64), (n_queries, n_passages))

    def _pairs_of(self, first: int, last: int) -> tuple[np.ndarray, np.ndarray]:
        """Where the pairs of queries ``first`` to ``last`` (excluded) lie in ``passages`` and ``ends``, in query
        order, and how many each query has."""
        rows = self.row_of[first:last]
        start = self.starts[rows]
        sizes = self.starts[rows + 1] - start
        return np.repeat(start - (np.cumsum(sizes) - sizes), sizes) + np.arange(sizes.sum()), sizes

    def _chunks(self, queries: int):
        """(first query, where its chunk's pairs lie, each query's count), ``queries`` queries at a time."""
        for first in range(0, self.shape[0], queries):
            yield first, *self._pairs_of(first, min(first + queries, self.shape[0]))

    def key_chunks(self, queries: int = 4096):
        """``keys`` (int64), those of ``queries`` queries at a time, in order."""
        for first, at, sizes in self._chunks(queries):
            yield np.repeat(np.arange(first, first + len(sizes), dtype=np.int64), sizes) * self.shape[1] + \
                self.passages[at]

    def end_chunks(self, queries: int = 4096):
        """The ends of the pairs (int32) in the order of ``keys``, those of ``queries`` queries at a time."""
        for _, at, _ in self._chunks(queries):
            yield self.ends[at]

    @cached_property
    def keys(self) -> np.ndarray:
        """(E_Q,) int64 ``query * passages + passage`` of every query's pairs, ascending (computed when first read:
        a whole stage's pairs, 8 bytes each, which the experiment's scorers never build)."""
        return np.concatenate([np.zeros(0, np.int64), *self.key_chunks()])

    def dense(self) -> np.ndarray:
        out = np.full(self.shape, NO_ANSWER, dtype=np.int32)
        for keys, ends in zip(self.key_chunks(), self.end_chunks()):
            out.reshape(-1)[keys] = ends
        return out

    def gather(self, columns: np.ndarray, rows_at_once: int = 64) -> np.ndarray:
        """(Q, W) int32: the ends at each query's ``columns`` (passage positions, ascending per row, -1 padding at
        the end: ``xaug.candidates.union``'s layout)."""
        columns = integer_columns(columns)
        out = np.full(columns.shape, NO_ANSWER, dtype=np.int32)
        if not len(self.passages) or not columns.size:
            return out
        # each pair looked up among the (query, column) keys of its rows, ascending row by row (padding as the last
        # passage: a repeat after the row's own columns, never the first match of a real pair), ``rows_at_once``
        # rows at a time: the searched keys of a few rows stay in cache, and each search takes fewer steps
        n = self.shape[1]
        for first in range(0, len(columns), rows_at_once):
            last = min(first + rows_at_once, len(columns))
            some = columns[first:last]
            kind = np.int32 if (last - first) * n < 1 << 31 else np.int64
            flat = some.astype(kind)
            flat[some < 0] = n - 1
            flat += np.arange(last - first, dtype=kind)[:, None] * kind(n)
            flat = flat.reshape(-1)
            if (flat[1:] < flat[:-1]).any():
                raise ValueError("answer ends: each row's columns must be ascending, padding (-1) at the end")
            pairs, sizes = self._pairs_of(first, last)
            keys = np.repeat(np.arange(last - first, dtype=kind), sizes) * kind(n)
            keys += self.passages[pairs]
            at = np.minimum(np.searchsorted(flat, keys), flat.size - 1)
            hit = flat[at] == keys
            part = out[first:last].reshape(-1)  # a view: the rows are contiguous
            part[at[hit]] = self.ends[pairs[hit]]
        out[columns < 0] = NO_ANSWER
        return out

    def take(self, rows: np.ndarray) -> "AnswerEnds":
        """The ends of queries ``rows`` (distinct), as rows 0..len(rows)-1: the same pairs' arrays, not a copy (a
        stage takes its query blocks from a few million pairs at P = 100k)."""
        return AnswerEnds(self.starts, self.passages, self.ends, self.row_of[np.asarray(rows, dtype=np.int64)],
                          (len(rows), self.shape[1]))

    def equals(self, other: "AnswerEnds") -> bool:
        """The same pairs and ends for every query, however each holds them."""
        return self.shape == other.shape and all(
            np.array_equal(a, b) for a, b in zip(chain(self.key_chunks(), self.end_chunks()),
                                                 chain(other.key_chunks(), other.end_chunks())))


def answer_ends(doc_tokens: list[list[str]], answers: list[list[list[str]]]) -> np.ndarray:
    """(Q, N) int32: for query q and passage p the fewest leading tokens of p that hold a whole answer of q
    (start + length of its first occurrence), ``NO_ANSWER`` where none occurs."""
    return answer_end_pairs(doc_tokens, answers).dense()


@dataclass(eq=False)
class Judgements:
    """What scores a query set against any passage: each query's relevant passage (-1: none), the answer ends
    (sparse), the passages each query may rank (``masks[mask_of[q]]``; None: all) and tokens per passage.
    ``dense()`` scores (Q, N) score matrices; ``restricted(columns)`` scores (Q, W) matrices over each query's
    own candidate passages (``xaug.candidates``)."""

    relevant: np.ndarray          # (Q,) int64
    lengths: np.ndarray           # (N,) int64
    ends: AnswerEnds
    depth: int
    masks: np.ndarray | None = None    # (R, N) bool
    mask_of: np.ndarray | None = None  # (Q,) int64 row of masks
    budgets: dict = field(default_factory=lambda: dict(TOKEN_BUDGETS))

    @classmethod
    def from_evaluator(cls, evaluator, passage_ids: list[str], depth: int | None = None) -> "Judgements":
        """For ``evaluator``'s queries (rows, in ``evaluator.query_ids`` order) against ``passage_ids``
        (columns, the order of the passage matrix); the ``parallel`` setting's masks come along."""
        position = {p: i for i, p in enumerate(passage_ids)}
        relevant = []
        for q in evaluator.query_ids:
            docs = [d for d, rel in evaluator.qrels.get(q, {}).items() if rel > 0]
            if len(docs) > 1:
                raise ValueError(f"query {q}: {len(docs)} relevant passages (RankScorer needs at most one)")
            relevant.append(position.get(docs[0], -1) if docs else -1)
        tokens = [evaluator.doc_tokens[p] for p in passage_ids]
        ends = answer_end_pairs(tokens, [evaluator.answers.get(q, []) for q in evaluator.query_ids])
        masks, mask_of = setting_masks(evaluator.allowed, passage_ids,
                                       [evaluator.query_lang[q] for q in evaluator.query_ids])
        return cls(np.array(relevant, dtype=np.int64), np.array([len(t) for t in tokens], dtype=np.int64), ends,
                   evaluator.depth if depth is None else depth, masks, mask_of)

    def in_setting(self, masks: np.ndarray | None, mask_of: np.ndarray | None) -> "Judgements":
        """These judgements where each query may rank the passages of another corpus setting (``setting_masks``),
        sharing the relevant passages, lengths and answer ends (not a copy: a stage scores its settings one by one
        from one load)."""
        ends = dataclasses.replace(self.ends)  # the same arrays, none of the keys computed from them (``keys``)
        return dataclasses.replace(self, ends=ends, masks=masks, mask_of=mask_of)

    def take(self, rows: np.ndarray) -> "Judgements":
        """The judgements of queries ``rows`` (distinct), in that order."""
        rows = np.asarray(rows, dtype=np.int64)
        return dataclasses.replace(self, relevant=self.relevant[rows], ends=self.ends.take(rows),
                                   mask_of=None if self.mask_of is None else self.mask_of[rows])

    @property
    def n_passages(self) -> int:
        return len(self.lengths)

    def allowed(self) -> np.ndarray | None:
        """(Q, N) bool, or None where every query may rank every passage."""
        return None if self.masks is None else self.masks[self.mask_of]

    def _mask_rows(self) -> tuple[np.ndarray, np.ndarray]:
        """(R, N) mask rows and (Q,) each query's row; no mask is one all-true row."""
        if self.masks is None:
            return np.ones((1, self.n_passages), bool), np.zeros(len(self.relevant), np.int64)
        return np.asarray(self.masks, bool), np.asarray(self.mask_of, np.int64)

    def equals(self, other: "Judgements") -> bool:
        """The same relevant passages, answers, lengths, depth, budgets and passages each query may rank (no
        mask and an all-true mask are the same)."""
        return self.digest() == other.digest()

    def digest(self) -> str:
        """A hash of what ``equals`` compares: each query's own mask row (an all-true row is no mask) rather than
        the rows' storage, so that a stage keeps a few bytes, not the judgements, to know that a later query
        set ranks as an earlier one."""
        h = hashlib.blake2b(digest_size=20)
        h.update(repr((self.depth, sorted(self.budgets.items()), self.ends.shape, len(self.relevant))).encode())
        for a in (self.relevant, self.lengths):
            h.update(np.ascontiguousarray(a, dtype=np.int64).data)
        for chunk in chain(self.ends.key_chunks(), self.ends.end_chunks()):  # the pairs' int64 keys, then their
            h.update(chunk.data)  # int32 ends, in query order, as one array each would read
        rows, mask_of = self._mask_rows()
        each = np.array([b"all" if row.all() else hashlib.blake2b(np.packbits(row).data, digest_size=20).digest()
                         for row in rows], dtype=object)
        h.update(b"".join(each[mask_of]) if len(mask_of) else b"")
        return h.hexdigest()

    def dense(self) -> "RankScorer":
        return RankScorer(self.relevant, self.lengths, self.ends.dense(), self.depth, self.allowed(), self.budgets)

    def restricted(self, columns: np.ndarray) -> "RankScorer":
        """A scorer of (Q, W) matrices whose row q scores passages ``columns[q]`` (ascending, -1 padding at the
        end: never ranked). Equal scores rank the lower passage position first, as in ``dense()``."""
        columns = integer_columns(columns)  # int32 for a block's candidates: no int64 copy
        if columns.size and columns.max() >= self.n_passages:
            raise IndexError(f"candidate column {columns.max()} past the {self.n_passages} passages")
        valid = columns >= 0
        hit = valid & (columns == self.relevant[:, None])
        relevant = np.where(hit.any(1), hit.argmax(1), -1)
        del hit
        # gathers with ``clip`` read passage 0 at padding (-1), then cleared: no (Q, W) int64 clipped columns
        allowed = valid
        if self.masks is not None:
            allowed = valid.copy()
            for row in np.unique(self.mask_of):
                rows = np.flatnonzero(self.mask_of == row)
                allowed[rows] &= np.take(self.masks[row], columns[rows], mode="clip")
        lengths = np.take(self.lengths.astype(np.int32) if self.lengths.max(initial=0) < 1 << 31 else self.lengths,
                          columns, mode="clip")  # token counts in int32 (half the bytes) where they fit
        lengths[~valid] = 0
        return RankScorer(relevant, lengths, self.ends.gather(columns), self.depth, allowed, self.budgets)


def setting_masks(allowed: dict[str, set[str]], passage_ids: list[str], query_langs: list[str]
                  ) -> tuple[np.ndarray | None, np.ndarray | None]:
    """``Judgements``' masks and each query's row: a query in L ranks the passages of ``allowed[L]`` (the
    parallel setting: those with an L parallel), a query in another language every passage; (None, None) where
    ``allowed`` is empty (every query ranks every passage)."""
    if not allowed:
        return None, None
    langs = sorted(allowed)
    masks = np.array([[p in allowed[lang] for p in passage_ids] for lang in langs] + [[True] * len(passage_ids)],
                     dtype=bool).reshape(len(langs) + 1, len(passage_ids))
    row = {lang: i for i, lang in enumerate(langs)}
    return masks, np.array([row.get(lang, len(langs)) for lang in query_langs], dtype=np.int64)


def integer_columns(columns) -> np.ndarray:
    """Candidate columns (``xaug.candidates.union``'s layout) as the int32 or int64 array given, without a copy;
    int64 from any other type (e.g. a list)."""
    columns = np.asarray(columns)
    return columns if columns.dtype in (np.int32, np.int64) else columns.astype(np.int64)


def best_first(positions: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """(Q, k) int64: each row's ``positions`` (ascending, below 2^32) in descending order of their ``scores``
    (float32, not NaN), equal scores in ascending position (-0.0 equals 0.0): what a stable argsort of the
    negated scores gives, by one sort of unique 64-bit keys (the score's order-preserving bits, then the
    position), several times cheaper."""
    bits = (np.asarray(scores, dtype=np.float32) + np.float32(0)).view(np.uint32)  # + 0: -0.0 becomes 0.0
    bits = np.where(bits & np.uint32(1 << 31), ~bits, bits | np.uint32(1 << 31))  # ascending with the score
    keys = (np.uint64(0xFFFFFFFF) - bits.astype(np.uint64)) << np.uint64(32)  # descending score first
    keys |= np.asarray(positions).astype(np.uint64)
    keys.sort(axis=1)
    return (keys & np.uint64(0xFFFFFFFF)).astype(np.int64)


class RankScorer:
    """Scores (Q, N) score matrices: every measure of ``metrics.ALL_MEASURES`` per query.

    ``relevant``: position of each query's relevant passage (-1: none); ``lengths``: tokens per passage (N,),
    or per query and column (Q, N) when each row scores its own passages (``Judgements.restricted``);
    ``ends``: ``answer_ends``; ``allowed``: optional (Q, N) mask of the passages each query may rank;
    ``budgets``: the answer-recall measures, name -> tokens.
    """

    def __init__(self, relevant: np.ndarray, lengths: np.ndarray, ends: np.ndarray, depth: int,
                 allowed: np.ndarray | None = None, budgets: dict[str, int] = TOKEN_BUDGETS):
        self.relevant = np.asarray(relevant, dtype=np.int64)
        lengths = np.asarray(lengths)  # int32 kept (``Judgements.restricted``): the measures sum them in int64
        self.lengths = lengths if lengths.dtype == np.int32 else np.asarray(lengths, dtype=np.int64)
        self.ends = np.asarray(ends, dtype=np.int32)
        self.depth = depth
        self.allowed = None if allowed is None else np.asarray(allowed, dtype=bool)
        self.budgets = dict(budgets)
        if self.ends.shape != (len(self.relevant), self.lengths.shape[-1]) or \
                self.lengths.ndim == 2 and self.lengths.shape != self.ends.shape:
            raise ValueError(f"answer ends {self.ends.shape} != (queries, passages) "
                             f"{(len(self.relevant), self.lengths.shape[-1])}")
        if self.allowed is not None and self.allowed.shape != self.ends.shape:
            raise ValueError(f"allowed mask {self.allowed.shape} != {self.ends.shape}")

    @classmethod
    def from_evaluator(cls, evaluator, passage_ids: list[str], depth: int | None = None) -> RankScorer:
        """For ``evaluator``'s queries (rows, in ``evaluator.query_ids`` order) against ``passage_ids``
        (columns, the order of the passage matrix); the ``parallel`` setting's mask comes along."""
        return Judgements.from_evaluator(evaluator, passage_ids, depth).dense()

    def top(self, scores: np.ndarray) -> np.ndarray:
        """(Q, depth) positions of each query's best passages, best first (equal scores: the lower position
        first); -1 pads past the allowed ones."""
        scores = np.asarray(scores)
        if self.allowed is not None:
            scores = np.where(self.allowed, scores, -np.inf)
        n = scores.shape[1]
        k = min(self.depth, n)
        order = self._best(scores, k) if k < n else np.broadcast_to(np.arange(k), (len(scores), k))
        order = best_first(order, np.take_along_axis(scores, order, 1))
        if self.allowed is not None:
            order = np.where(np.take_along_axis(self.allowed, order, 1), order, -1)
        return np.pad(order, ((0, 0), (0, self.depth - k)), constant_values=-1)

    @staticmethod
    def _best(scores: np.ndarray, k: int) -> np.ndarray:
        """(Q, k) the positions of each row's k highest scores, ascending; of the scores equal to a row's k-th
        highest, the lower positions, the order ``top`` and ``rank`` give equal scores. A row's choice is thus its
        own, whatever the other rows and the padding of a block (``argpartition`` chose among such ties by its
        layout, and a query's measures moved with ``scaling.query_block``). A value partition and comparisons,
        several times cheaper than ``argpartition``."""
        n = scores.shape[1]
        cut = np.partition(scores, n - k, axis=1)[:, n - k, None]
        reach = scores >= cut
        tied = np.flatnonzero(reach.sum(1) != k)  # more than k reach the cut: ties at it, or -inf padding
        if len(tied):
            some, at = scores[tied], cut[tied]
            equal = some == at
            room = k - (some > at).sum(1)  # those above the cut, then the first ``room`` equal to it
            reach[tied] = (some > at) | (equal & (np.cumsum(equal, axis=1) <= room[:, None]))
        # each row's k positions, ascending: one pass over the flat mask (``nonzero``'s column indices cost three)
        return np.flatnonzero(reach).reshape(len(scores), k) - (np.arange(len(scores)) * n)[:, None]

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
        lengths = np.where(ranked, self.lengths[safe] if self.lengths.ndim == 1 else
                           np.take_along_axis(self.lengths, safe, 1), 0)
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
