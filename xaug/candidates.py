"""Candidate passages per query: what the experiment engine scores when queries x passages matrices do not
fit (``scaling.candidates``: K > 0; 0 scores every passage).

A query's candidates are the union of the top K passages of several lists (a system's own passage
matrix; for the projection of a method's fusions, the baseline passages, then per language the passages
it covers scored by query . passage + query . mean item, by query . mean item and by two renormalised
fusions of the two, and the passages it leaves uncovered scored by query . passage), its relevant
passage, and every passage whose score a leave-out correction overwrites. Rows are ascending passage
positions with -1 padding at the end, so that equal scores rank the lower position first, as the
dense path does. Memory and per-system work are O(queries x K), not O(queries x passages).

Exact for a system scored from its own matrix when K >= evaluate.depth (nothing outside its top K can
enter its top ``depth``, and the relevant passage is always scored, so a rank beyond K reads as beyond the
depth). For a fusion scored through the projection, approximate: a passage outside every list's top K that
the fusion lifts into the top ``depth`` is missed (measured against the dense path in docs/design.md).
"""
from __future__ import annotations

import numpy as np

from .leave_out import Correction

SCORE_FLOATS = 1 << 25   # query x passage scores held per chunk of queries (128 MB)
# alphas of the renormalised-fusion lists: with these two, the scale benchmark's P = 9,780 run of the scaling
# stage at K = 200 stays within 0.0006 of the dense path for xqg and translate (docs/design.md)
RENORMALISED = (0.2, 0.5)


def candidate_scores(queries: np.ndarray, matrices: list[np.ndarray], k: int, judgements,
                     extra: tuple[np.ndarray, ...] = (), covered: list[np.ndarray] | None = None
                     ) -> tuple[np.ndarray, list[np.ndarray]]:
    """Each query's candidates and every matrix's scores there: ``columns`` (Q, W), the union of the top ``k``
    passages of each list among those the query may rank (``judgements``' masks), its relevant passage
    (``judgements.relevant``) and ``extra`` ((Q, m) passage positions, -1: none), in ``union``'s layout;
    and per matrix, (Q, W) float32 inner products at those columns (0 at padding).

    The lists: each matrix's inner products; with ``covered`` (per matrix after the first, the (N,) passages
    it augments: a method's languages), per language the passages it covers ranked by ``q.p + q.item`` (a
    fusion lifts them together), by ``q.item`` and, for each a of ``RENORMALISED``, by the renormalised fusion
    ``q.p'`` with ``p' = ((1 - a) p + a item) |p| / |(1 - a) p + a item|`` (renormalising reorders passages by
    their fused norm), and the passages it does not cover ranked by ``q.p`` (a fusion that lowers the covered
    ones lifts them). Queries go in chunks of ``SCORE_FLOATS`` scores: memory O(chunk x passages + queries x W)."""
    queries = np.asarray(queries, dtype=np.float32)
    matrices = [np.asarray(m, dtype=np.float32) for m in matrices]
    n_queries, n = len(queries), len(matrices[0])
    # per covered matrix and a of RENORMALISED: 1 / the renormalised fusion's norm relative to |p| (N,)
    pp = None if covered is None else np.einsum("nd,nd->n", matrices[0], matrices[0], dtype=np.float64)
    inverse = [] if covered is None else [renormalised_scales(matrices[0], m, pp) for m in matrices[1:]]
    kk = min(k, n)
    step = max(1, SCORE_FLOATS // max(n * len(matrices), 1))
    parts: list[tuple[np.ndarray, list[np.ndarray]]] = []
    for start in range(0, n_queries, step):
        rows = np.arange(start, min(start + step, n_queries))
        scores = [queries[rows] @ m.T for m in matrices]
        allowed = None if judgements.masks is None else judgements.masks[judgements.mask_of[rows]]
        lists = list(scores) if covered is None else [scores[0]]
        for s, has, scales in zip(scores[1:], covered or [], inverse):
            lists += [np.where(has, scores[0] + s, -np.inf), np.where(has, s, -np.inf)]
            lists += [np.where(has, ((1 - a) * scores[0] + a * s) * scale, -np.inf)
                      for a, scale in zip(RENORMALISED, scales)]
            if not has.all():
                lists.append(np.where(has, -np.inf, scores[0]))
        tops = []
        for s in lists:
            ranked = s if allowed is None else np.where(allowed, s, -np.inf)
            top = np.argpartition(-ranked, kk - 1, axis=1)[:, :kk] if kk < n else \
                np.broadcast_to(np.arange(n), (len(rows), n))
            tops.append(np.where(np.isneginf(np.take_along_axis(ranked, top, 1)), -1, top))
        columns = union(judgements.relevant[rows, None], *tops, *[np.asarray(e)[rows] for e in extra])
        safe = np.maximum(columns, 0)
        parts.append((columns, [np.where(columns >= 0, np.take_along_axis(s, safe, 1), 0).astype(np.float32)
                                for s in scores]))
    width = max(c.shape[1] for c, _ in parts) if parts else 0
    pad = (lambda a, value: np.pad(a, ((0, 0), (0, width - a.shape[1])), constant_values=value))
    columns = np.concatenate([pad(c, -1) for c, _ in parts]) if parts else np.zeros((0, 0), np.int64)
    values = [np.concatenate([pad(v[i], 0) for _, v in parts]) if parts else np.zeros((0, 0), np.float32)
              for i in range(len(matrices))]
    return columns, values


def renormalised_scales(passages: np.ndarray, items: np.ndarray, pp: np.ndarray) -> list[np.ndarray]:
    """Per a of ``RENORMALISED``, (N,) float32 ``|p| / |(1 - a) p + a item|`` (``pp``: the passages' squared
    norms): the factor by which renormalising scales ``q.((1 - a) p + a item)``, back to each passage's own
    norm as ``xaug.fusion`` restores it (for unit passages, to 1, which |p| equals up to rounding)."""
    pm = np.einsum("nd,nd->n", passages, items, dtype=np.float64)
    mm = np.einsum("nd,nd->n", items, items, dtype=np.float64)
    return [np.sqrt(pp / np.maximum((1 - a) ** 2 * pp + 2 * a * (1 - a) * pm + a ** 2 * mm, 1e-24)).astype(np.float32)
            for a in RENORMALISED]


def union(*parts: np.ndarray) -> np.ndarray:
    """(Q, W) int64: per row the distinct non-negative columns of ``parts`` (each (Q, m)), ascending, -1
    padding at the end; W is the widest row."""
    stacked = np.concatenate([np.asarray(p, dtype=np.int64).reshape(len(parts[0]), -1) for p in parts], axis=1)
    big = np.iinfo(np.int64).max
    stacked = np.sort(np.where(stacked >= 0, stacked, big), axis=1)
    repeated = np.zeros(stacked.shape, dtype=bool)
    repeated[:, 1:] = stacked[:, 1:] == stacked[:, :-1]
    stacked = np.sort(np.where(repeated, big, stacked), axis=1)
    width = int((stacked != big).sum(1).max()) if stacked.size else 0
    stacked = stacked[:, :width]
    return np.where(stacked == big, -1, stacked)


def slots(columns: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """The slot of passage ``cols[i]`` in row ``rows[i]`` of ``columns`` (``union``'s layout; each pair must be
    there)."""
    columns = np.asarray(columns, dtype=np.int64)
    rows, cols = np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)
    if not len(rows):
        return np.zeros(0, dtype=np.int64)
    width = columns.shape[1]
    n = int(max(columns.max(), cols.max())) + 2
    flat = (np.where(columns >= 0, columns, n - 1) + np.arange(len(columns))[:, None] * n).reshape(-1)
    at = np.searchsorted(flat, rows * n + cols)
    if (at >= flat.size).any() or (flat[np.minimum(at, flat.size - 1)] != rows * n + cols).any():
        raise ValueError("a (query, passage) pair is not among the query's candidates")
    return at - rows * width


def correction_at(correction: Correction, columns: np.ndarray) -> Correction:
    """A leave-out ``correction`` (``xaug.leave_out``) in a candidate view's (Q, W) matrices whose row q holds
    passages ``columns[q]`` (every corrected passage must be among its query's candidates)."""
    return Correction(correction.rows, slots(columns, correction.rows, correction.cols), correction.scores)


def pairs_matrix(rows: np.ndarray, cols: np.ndarray, n_queries: int) -> np.ndarray:
    """(Q, m) int64: row q lists the ``cols`` paired with q (-1 padding)."""
    rows, cols = np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)
    counts = np.bincount(rows, minlength=n_queries) if len(rows) else np.zeros(n_queries, np.int64)
    out = np.full((n_queries, int(counts.max()) if len(rows) else 0), -1, dtype=np.int64)
    if len(rows):
        order = np.argsort(rows, kind="stable")
        start = np.concatenate([[0], np.cumsum(counts)])[:-1]
        out[rows[order], np.arange(len(rows)) - start[rows[order]]] = cols[order]
    return out
