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

How each list's top K is found (``CandidateSearch``, ``scaling.candidate_index``): ``Flat`` scores every
passage (exact, O(queries x passages) work); a faiss index-factory string (``IVF1024,Flat``, ``HNSW32``)
searches an index of that list's vectors instead, sublinear per query and approximate (a passage the
index misses is not a candidate; the candidates' scores stay exact). Every list ranks by an inner
product with one vector per passage, so each is an index of its own: the passages, ``p + item``, the
mean item, the renormalised fusions ``((1 - a) p + a item) |p| / |..|``. A trainable index is trained
on each list's own vectors (the passages' once, kept while they are the same array), so that its cells
split that list evenly; the parallel setting's masks get a copy per mask row. A stage finds the tops of
every list for all its queries at once (``list_tops``), each index built once, keeps each query block's union
of them (``xaug.sweep.block_candidates``) and scores the blocks one by one.
"""
from __future__ import annotations

import mmap
from collections.abc import Sequence
from dataclasses import dataclass

import faiss
import numpy as np

from .errors import ConfigError
from .leave_out import Correction
from .params import check_candidate_iterations, check_candidate_train, check_faiss_index
from .ranking import integer_columns
from .search import build_index, set_search

SCORE_FLOATS = 1 << 25   # query x passage scores held per chunk of queries (128 MB)
# queries per faiss search of a candidate list (``search_parts``): its outputs (int64 ids, float32 scores) and their
# int64 copies for all of a stage's queries at once (80,606 x K = 200 at P = 100k: 0.6 GB) were the largest arrays of a
# set of items' search, freed between lists that each keep a (Q, K) int32 top: a heap of holes too small for the next
# list's. A multiple of faiss's query block of exhaustive distances (distance_compute_blas_query_bs, 4096)
SEARCH_ROWS = 8192
# alphas of the renormalised-fusion lists: with these two, the scale benchmark's P = 9,780 run of the scaling
# stage at K = 200 stays within 0.0006 of the dense path for xqg and translate (docs/design.md)
RENORMALISED = (0.2, 0.5)


@dataclass(frozen=True)
class CandidateSearch:
    """How each candidate list's top K is found: ``index`` ``Flat`` (every passage scored, exact) or a faiss
    index-factory string (``scaling.candidate_index``), searched with the faiss ParameterSpace string
    ``params`` (``scaling.candidate_search``, e.g. ``nprobe=32``); an inverted-file index's cells are trained on
    at most ``train`` vectors per cell of each list (``scaling.candidate_train``; 0: faiss's default, 256), in
    ``iterations`` k-means iterations (``scaling.candidate_iterations``; 0: faiss's default, 10)."""

    index: str = "Flat"
    params: str = ""
    train: int = 0
    iterations: int = 0

    def __post_init__(self):
        check_faiss_index(self.index, self.params)
        check_candidate_train(self.train)
        check_candidate_iterations(self.iterations)

    @property
    def exact(self) -> bool:
        return self.index == "Flat"

    def prefixes(self, dim: int) -> bool:
        """Whether a search of this index (of ``dim``-dimensional vectors) to a smaller depth finds the start
        of its search to a larger one: an inverted file of whole vectors (``IVF...,Flat``, any coarse quantizer)
        scans the same cells at any depth and ranks them by their exact scores, where a graph (HNSW: its search
        widens with the depth), compressed codes (approximate scores) or a refinement (a multiple of the depth)
        do not."""
        return type(faiss.index_factory(dim, self.index, faiss.METRIC_INNER_PRODUCT)) is faiss.IndexIVFFlat


def candidate_scores(queries: np.ndarray, matrices: list[np.ndarray], k: int, judgements,
                     extra: tuple[np.ndarray, ...] = (), covered: list[np.ndarray] | None = None,
                     search: CandidateSearch = CandidateSearch(), tops: list[np.ndarray] | None = None
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
    ones lifts them). Queries go in chunks of ``SCORE_FLOATS`` scores: memory O(chunk x passages + queries x W).
    ``search``: each list's top K from every passage (Flat) or from an index of the list (``indexed_scores``;
    ``tops``: these queries' ``list_tops``, found beforehand for a larger set of queries)."""
    queries = np.asarray(queries, dtype=np.float32)
    matrices = [np.asarray(m, dtype=np.float32) for m in matrices]
    if not search.exact:
        return indexed_scores(queries, matrices, k, judgements, extra, covered, search, tops)
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
        lists = [list_scores(spec, scores, inverse) for spec in candidate_lists(len(matrices), covered)]
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


def candidate_lists(n_matrices: int, covered: list[np.ndarray] | None):
    """``candidate_scores``' lists, each as (matrix j, fusion, passages it ranks (N,) bool or None: all): without
    ``covered``, each matrix's own inner products (fusion ``own``); with it, the passages' (matrix 0, ``own``),
    then per covered matrix j ``sum`` (p + item), ``item`` and, for each a of ``RENORMALISED``, that a (the
    renormalised fusion) over the passages it covers, and ``own`` of matrix 0 over those it does not cover.
    ``list_scores`` (from the matrices' scores) and ``list_vectors`` (as vectors an index holds) follow it."""
    yield 0, "own", None
    if covered is None:
        for j in range(1, n_matrices):
            yield j, "own", None
        return
    for j, has in enumerate(covered, 1):
        yield j, "sum", has
        yield j, "item", has
        for a in RENORMALISED:
            yield j, a, has
        if not has.all():
            yield 0, "own", ~has


def list_scores(spec, scores: list[np.ndarray], inverse: list[list[np.ndarray]]) -> np.ndarray:
    """A list of ``candidate_lists`` as (Q, N) scores from each matrix's (``scores``; -inf where it does not rank)
    and the renormalised fusions' scales (``inverse``: per covered matrix, ``renormalised_scales``)."""
    j, fusion, has = spec
    if fusion == "own":
        ranked = scores[j]
    elif fusion == "sum":
        ranked = scores[0] + scores[j]
    elif fusion == "item":
        ranked = scores[j]
    else:
        ranked = ((1 - fusion) * scores[0] + fusion * scores[j]) * inverse[j - 1][RENORMALISED.index(fusion)]
    return ranked if has is None else np.where(has, ranked, -np.inf)


def list_vectors(matrices: list[np.ndarray], covered: list[np.ndarray] | None):
    """``candidate_lists`` as (vectors (N, d) float32, passages it ranks (N,) bool or None: all), one at a time:
    each list scores ``q . vectors[n]``. A fused list is computed in float64 as its formula reads and rounded to
    float32 (what faiss holds), ``VECTOR_ROWS`` passages at a time, so that no (N, d) float64 array of it is held."""
    p = matrices[0]
    pp = None if covered is None else np.einsum("nd,nd->n", p, p, dtype=np.float64)
    scales = {}
    for j, fusion, has in candidate_lists(len(matrices), covered):
        m = matrices[j]
        if fusion == "own" or fusion == "item":
            yield (m if m.dtype == np.float32 else _float32_rows(lambda r: m[r], len(m), m.shape[1])), has
        elif fusion == "sum":
            yield _float32_rows(lambda r: p[r] + m[r], len(p), p.shape[1]), has
        else:
            if j not in scales:
                scales = {j: renormalised_scales(p, m, pp)}  # one covered matrix at a time
            scale = scales[j][RENORMALISED.index(fusion)]
            yield _float32_rows(lambda r: ((1 - fusion) * p[r] + fusion * m[r]) * scale[r, None], len(p),
                                p.shape[1]), has


VECTOR_ROWS = 8192  # passages per chunk of a fused list's float64 arithmetic (``list_vectors``)


def _float32_rows(rows_of, n: int, d: int) -> np.ndarray:
    """(n, d) float32: ``rows_of(slice)`` of each chunk of ``VECTOR_ROWS`` rows, rounded to float32."""
    out = np.empty((n, d), np.float32)
    for start in range(0, n, VECTOR_ROWS):
        at = slice(start, min(start + VECTOR_ROWS, n))
        out[at] = rows_of(at)
    return out


def mapped(shape: tuple[int, ...], dtype) -> np.ndarray:
    """An empty array in a private anonymous memory map of its own, out of the heap: given back to the system whole
    when the array goes, whatever the heap does around it (``ListTops``)."""
    return _mapped(shape, dtype)[1]


def _mapped(shape: tuple[int, ...], dtype) -> tuple[mmap.mmap, np.ndarray]:
    dtype = np.dtype(dtype)
    count = int(np.prod(shape))
    buffer = mmap.mmap(-1, max(count * dtype.itemsize, 1), flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    return buffer, np.frombuffer(buffer, dtype, count).reshape(shape)


class ListTops(Sequence):
    """Every query's top k of each of ``n_lists`` candidate lists, ``array`` (Q, L, k) int32 (-1 padding), in an
    anonymous memory map rather than the heap. A set of items' lists (about 1 GB at the scale benchmark's P = 100k)
    held in the heap beside the transient arrays of each list's search left holes that the next list's top did not
    fit, and the heap grew by as much again, which a process kept (``xaug.cli.MALLOC_ENV``) while it scored the
    set's query blocks. A map goes back to the system whole when dropped, and row by row as a stage builds each
    query block's candidates from it (``release_rows``); the rows of a query are side by side, so that a block of
    queries is one stretch of it."""

    def __init__(self, n_queries: int, n_lists: int, k: int):
        self._map, self.array = _mapped((n_queries, n_lists, k), np.int32)  # private: pages given back read as zeros
        self.array.fill(-1)
        self._released = 0  # bytes at the start already given back

    def __len__(self) -> int:
        return self.array.shape[1]

    def __getitem__(self, i: int) -> np.ndarray:
        """List ``i``'s (Q, k) top, a view."""
        if isinstance(i, slice) or not -len(self) <= i < len(self):
            raise IndexError(i)
        return self.array[:, i]

    def lists(self) -> list[np.ndarray]:
        return list(self)

    @property
    def released(self) -> int:
        """Bytes at the start of ``array`` given back (``release_rows``)."""
        return self._released

    def release_rows(self, stop: int) -> None:
        """Give the whole pages of the rows before ``stop`` back to the system; those rows must not be read again
        (they read as zeros)."""
        end = stop * self.array[0].nbytes // mmap.PAGESIZE * mmap.PAGESIZE
        if end > self._released:
            self._map.madvise(mmap.MADV_DONTNEED, self._released, end - self._released)
            self._released = end


def list_tops(queries: np.ndarray, matrices: list[np.ndarray], k: int, judgements,
              covered: list[np.ndarray] | None, search: CandidateSearch,
              templates: dict[int, tuple[int, object]] | None = None, remember: bool = True) -> list[np.ndarray]:
    """Per list of ``candidate_lists``, (Q, k) int32: each query's top ``k`` passages of that list (``found_lists``)."""
    return found_lists(queries, matrices, k, judgements, covered, search, templates, remember).lists()


def found_lists(queries: np.ndarray, matrices: list[np.ndarray], k: int, judgements,
                covered: list[np.ndarray] | None, search: CandidateSearch,
                templates: dict[int, tuple[int, object]] | None = None, remember: bool = True,
                out: ListTops | None = None, at: int = 0) -> ListTops:
    """Per list of ``candidate_lists``, each query's top ``k`` passages of that list among those its mask row of
    ``judgements`` allows (-1 padding), from a faiss index of ``search.index`` over the list's vectors: a
    ``ListTops`` of every list, or ``out`` with the lists from its list ``at`` on.
    Each list's index is built once and searched by every query (per mask row of the parallel setting, a copy
    holding the passages that row allows, each passage's inverted-file cell assigned once per list): a stage finds the tops of all its query blocks in one pass, so that
    no index is built once per block. A trainable index is trained on the list's own vectors (``_template``). A
    list whose passages all hold one vector (the centroid control's mean items) ranks them by position: its first
    ``k`` allowed passages, without an index (whose one cell every query would scan). ``templates``
    (``list_templates`` of another set of items with the same lists): the trained indexes to use instead of
    training one per list, where a list holds as many vectors as its template was trained for. ``remember``
    False: ``matrices[0]`` is not the stage's passages (a fused list, ``xaug.sweep.fused_tops``), so neither its
    index nor its tops are kept for the next call in place of the passages' own."""
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    n_queries, n = len(queries), len(matrices[0])
    masks = np.ones((1, n), bool) if judgements.masks is None else np.asarray(judgements.masks, bool)
    mask_of = np.zeros(n_queries, np.int64) if judgements.masks is None else np.asarray(judgements.mask_of)
    groups = [(r, np.flatnonzero(mask_of == r)) for r in range(len(masks))]
    groups = [(r, rows) for r, rows in groups if len(rows)]
    if out is None:
        out = ListTops(n_queries, sum(1 for _ in candidate_lists(len(matrices), covered)), k)
    for position, (vectors, has) in enumerate(list_vectors(matrices, covered)):
        top = out.array[:, at + position]
        own_list = remember and vectors is matrices[0] and has is None  # the passages': the same for every set
        key = (queries, vectors, judgements.masks, judgements.mask_of, k, search)
        if own_list and _PASSAGE_TOPS and all(a is b for a, b in zip(_PASSAGE_TOPS[0][:4], key[:4])) \
                and _PASSAGE_TOPS[0][4:] == key[4:]:
            top[:] = _PASSAGE_TOPS[1].array[:, 0]
            continue
        template, cells = None, None
        tied = _one_vector(vectors, has)  # every passage scores the same (a centroid control's mean items)
        for r, rows in groups:
            members = masks[r] if has is None else masks[r] & has
            ids = np.flatnonzero(members)
            if len(ids) <= k or tied:  # every passage the list ranks, or its first k: equal scores rank the
                top[rows, :min(k, len(ids))] = ids[:k]  # lower position first (an index would scan them all)
                continue
            if template is None:
                size = len(vectors) if has is None else int(np.count_nonzero(has))
                shared = (templates or {}).get(position)
                template = shared[1] if shared is not None and shared[0] == size else \
                    _template(vectors, has, matrices[0] if remember else None, search)
            index = faiss.clone_index(template)
            set_search(index, search.params, "scaling.candidate_search")
            if len(groups) > 1 and isinstance(index, faiss.IndexIVF):  # the parallel setting's mask rows
                cells = assigned_cells(index, vectors, has) if cells is None else cells
                add_to_cells(index, vectors if len(ids) == len(vectors) else vectors[ids], cells[ids])
            else:
                index.add(vectors if len(ids) == len(vectors) else vectors[ids])  # every passage: no copy
            for part in search_parts(rows):  # faiss's (rows, k) outputs and their int64 copies stay small
                _, found = index.search(queries[part], k)
                top[part] = np.where(found >= 0, ids[np.maximum(found, 0)], -1)
        if own_list:  # kept in a map of its own, out of the heap
            kept = ListTops(n_queries, 1, k)
            kept.array[:, 0] = top
            _PASSAGE_TOPS[:] = [key, kept]
    return out


def assigned_cells(index, vectors: np.ndarray, has: np.ndarray | None) -> np.ndarray:
    """(N,) int64: the inverted-file cell of each passage of a list (those of ``has``; -1 elsewhere), from the
    coarse quantizer of ``index`` (an ``IndexIVF``): what adding a vector computes, once for a list whose copies
    (one per mask row of the parallel setting) hold overlapping passages, not once per copy (``add_to_cells``)."""
    out = np.full(len(vectors), -1, np.int64)
    at = slice(None) if has is None else has
    out[at] = index.quantizer.assign(np.ascontiguousarray(vectors[at], dtype=np.float32), 1).ravel()
    return out


def add_to_cells(index, vectors: np.ndarray, cells: np.ndarray) -> None:
    """``index.add(vectors)`` for an ``IndexIVF`` with each vector's cell given (``assigned_cells``): the same lists,
    in the same order, ids from ``index.ntotal`` on."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    cells = np.ascontiguousarray(cells, dtype=np.int64)
    if len(vectors) != len(cells) or (cells < 0).any():
        raise ValueError("add_to_cells: one cell per vector expected")
    index.add_core(len(vectors), faiss.swig_ptr(vectors), None, faiss.swig_ptr(cells))


def search_parts(rows: np.ndarray) -> list[np.ndarray]:
    """``rows`` in consecutive parts of ``SEARCH_ROWS`` (the last one up to twice that), searched one at a time.
    Each query's result is that of one search over all the rows: faiss searches each query on its own, but for
    its first distances (a coarse quantizer's, a Flat index's) it takes blocks of 4096 queries from the start of the
    call through BLAS, and a call of fewer than 20 queries through another kernel; parts that start at multiples
    of 4096, the last one longer than 20, keep both as they were (with one OpenMP thread: more split each call)."""
    starts = list(range(0, len(rows), SEARCH_ROWS))
    if len(starts) > 1 and len(rows) - starts[-1] < SEARCH_ROWS:
        starts.pop()  # the remainder joins the part before it
    return [rows[a:b] for a, b in zip(starts, starts[1:] + [len(rows)])]


def list_templates(matrices: list[np.ndarray], covered: list[np.ndarray] | None,
                   search: CandidateSearch) -> dict[int, tuple[int, object]]:
    """The trained, empty indexes that ``list_tops`` builds for one set of items' lists: position in
    ``candidate_lists`` -> (vectors the list holds, index), for every list that has an index of its own (not the
    passages' own list, whose index is kept anyway, nor a list of one vector). A stage trains them once from a
    method's items and hands them to ``list_tops`` for each of its sets of items: the method's own (the same
    indexes it would train) and its controls (the same items rearranged, or their centroids), whose lists the
    method's cells split about as evenly (``benchmarks/candidate_index.py``), instead of training every list of
    every set of items again."""
    out = {}
    for position, (vectors, has) in enumerate(list_vectors(matrices, covered)):
        if (vectors is matrices[0] and has is None) or _one_vector(vectors, has):
            continue
        out[position] = (len(vectors) if has is None else int(np.count_nonzero(has)),
                         _template(vectors, has, matrices[0], search))
    return out


def pack_templates(templates: dict[int, tuple[int, object]]) -> dict[int, tuple[int, np.ndarray]]:
    """``list_templates`` as bytes (faiss's serialisation) that a worker process can return to its parent."""
    return {position: (size, faiss.serialize_index(index)) for position, (size, index) in templates.items()}


def unpack_templates(packed: dict[int, tuple[int, np.ndarray]]) -> dict[int, tuple[int, object]]:
    return {position: (size, faiss.deserialize_index(data)) for position, (size, data) in packed.items()}


def _one_vector(vectors: np.ndarray, has: np.ndarray | None, tolerance: float = 1e-5) -> bool:
    """Whether the passages ``has`` (None: all) of a list all hold one vector up to float rounding (a mean of
    ``count`` copies of it), so that the list ranks them by position alone."""
    at = np.arange(len(vectors)) if has is None else np.flatnonzero(has)
    if len(at) < 2:
        return False
    first = vectors[at[0]]
    scale = tolerance * max(float(np.abs(first).max()), 1e-30)
    if np.abs(vectors[at[-1]] - first).max() > scale:  # a cheap first look, before any copy: most lists differ
        return False
    own = vectors if has is None else vectors[has]
    return bool(np.abs(own - first).max() <= scale)


def indexed_scores(queries: np.ndarray, matrices: list[np.ndarray], k: int, judgements,
                   extra: tuple[np.ndarray, ...], covered: list[np.ndarray] | None, search: CandidateSearch,
                   tops: list[np.ndarray] | None = None) -> tuple[np.ndarray, list[np.ndarray]]:
    """``candidate_scores`` with each list's top K from a faiss index of ``search.index`` over the list's
    vectors (``list_tops``, or ``tops``: those of these queries, found beforehand); the scores at the
    candidates are exact inner products."""
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    if tops is None:
        tops = list_tops(queries, matrices, k, judgements, covered, search)
    n_queries = len(queries)
    parts = []  # (rows, their union): in chunks of rows, so that the stacked lists stay O(chunk x lists x K)
    step = max(1, SCORE_FLOATS // max(sum(t.shape[1] for t in tops), 1))
    for start in range(0, n_queries, step):
        at = slice(start, start + step)
        parts.append((at, union(judgements.relevant[at, None], *[t[at] for t in tops],
                                *[np.asarray(e)[at] for e in extra])))
    width = max((c.shape[1] for _, c in parts), default=0)
    columns = np.full((n_queries, width), -1, np.int64)
    for rows, c in parts:
        columns[rows, :c.shape[1]] = c
    return columns, [values_at(queries, m, columns) for m in matrices]


_TRAINED: list = []  # (passages, search, empty trained index): the last one, reused while the passages are the same
# ((queries, passages, masks, mask_of, k, search), tops): the passages' own list's tops, the last ones, reused while
# the same arrays are searched again (every set of items of a stage ranks the same passages for the same queries)
_PASSAGE_TOPS: list = []


def _template(vectors: np.ndarray, has: np.ndarray | None, passages: np.ndarray | None, search: CandidateSearch):
    """An empty index of ``search.index`` for a list's ``vectors`` (those of the passages ``has``), trained on
    them: an index trained on the passages (``_trained``) would put vectors of another distribution (a mean
    item, ``p + item``, whose shared component moves them all towards a few cells) into a few large cells, and
    every query probing them would scan most of the list (the scale benchmark's P = 100k: 93% of the xqg mean
    items in 10 of 1,024 cells, ``benchmarks/candidate_index.py``). The passages' own lists reuse the
    passages' index. A list too small to train the index on (fewer vectors than the passages) is searched
    exactly."""
    if vectors is passages:
        return _trained(passages, search)
    own = vectors if has is None else vectors[has]
    try:
        return build_index(own, search.index, "scaling.candidate_index", search.train, search.iterations)
    except ConfigError:
        if passages is None or len(own) >= len(passages):
            raise
        return faiss.IndexFlatIP(vectors.shape[1])


def _trained(passages: np.ndarray, search: CandidateSearch):
    """An empty index of ``search.index`` trained on ``passages`` (faiss's training is seeded: the same index
    each time), kept for the next call with the same passages array (every set of items and query block of a
    stage scores the same passages)."""
    if _TRAINED and _TRAINED[0] is passages and _TRAINED[1] == search:
        return _TRAINED[2]
    index = build_index(passages, search.index, "scaling.candidate_index", search.train, search.iterations)
    _TRAINED[:] = [passages, search, index]
    return index


def values_at(queries: np.ndarray, matrix: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """(Q, W) float32 inner products of each query with ``matrix``'s rows at ``columns`` (0 at padding), by
    faiss's gather kernel (``fvec_inner_products_by_idx``: no (Q, W, d) copy of the gathered rows; 4 to 25
    times numpy's gather and matmul, docs/design.md)."""
    out = np.zeros(columns.shape, np.float32)
    if not columns.size:
        return out
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    matrix = np.ascontiguousarray(matrix, dtype=np.float32)
    ids = np.ascontiguousarray(columns, dtype=np.int64)
    faiss.fvec_inner_products_by_idx(faiss.swig_ptr(out), faiss.swig_ptr(queries), faiss.swig_ptr(matrix),
                                     faiss.swig_ptr(ids), matrix.shape[1], len(columns), columns.shape[1])
    out[ids < 0] = 0  # faiss writes -inf at padding
    return out


def renormalised_scales(passages: np.ndarray, items: np.ndarray, pp: np.ndarray) -> list[np.ndarray]:
    """Per a of ``RENORMALISED``, (N,) float32 ``|p| / |(1 - a) p + a item|`` (``pp``: the passages' squared
    norms): the factor by which renormalising scales ``q.((1 - a) p + a item)``, back to each passage's own
    norm as ``xaug.fusion`` restores it (for unit passages, to 1, which |p| equals up to rounding)."""
    pm = np.einsum("nd,nd->n", passages, items, dtype=np.float64)
    mm = np.einsum("nd,nd->n", items, items, dtype=np.float64)
    return [np.sqrt(pp / np.maximum((1 - a) ** 2 * pp + 2 * a * (1 - a) * pm + a ** 2 * mm, 1e-24)).astype(np.float32)
            for a in RENORMALISED]


def column_type(columns: np.ndarray) -> type:
    """int32 where every candidate position fits (a block's candidates: half the bytes of int64), else int64."""
    return np.int32 if columns.size == 0 or columns.max() < np.iinfo(np.int32).max else np.int64


def narrowed(columns: np.ndarray) -> np.ndarray:
    """Candidate columns in ``column_type``, without a copy where they already are."""
    columns = integer_columns(columns)
    return columns.astype(column_type(columns), copy=False)


def union(*parts: np.ndarray) -> np.ndarray:
    """(Q, W) int64: per row the distinct non-negative columns of ``parts`` (each (Q, m)), ascending, -1
    padding at the end; W is the widest row. Sorted in int32 where the columns fit (several times faster than
    int64 with numpy's vectorised sorts)."""
    parts = [np.asarray(p).reshape(len(parts[0]), -1) for p in parts]
    largest = max((int(p.max()) for p in parts if p.size), default=0)
    kind = np.int32 if largest < np.iinfo(np.int32).max else np.int64
    big = np.iinfo(kind).max
    stacked = np.concatenate(parts, axis=1, dtype=kind, casting="unsafe")
    stacked[stacked < 0] = big
    stacked.sort(axis=1)
    stacked[:, 1:][stacked[:, 1:] == stacked[:, :-1]] = big
    stacked.sort(axis=1)
    width = int((stacked != big).sum(1).max()) if stacked.size else 0
    out = stacked[:, :width].astype(np.int64)
    out[out == big] = -1
    return out


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
