"""A thin searcher over a faiss index built from an index-factory string (Tevatron-style)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

from .errors import ConfigError
from .formats import read_ids, write_ids
from .io import atomic_path


@dataclass
class IndexSettings:
    """The ``index`` params group: a faiss index-factory string and its ParameterSpace search parameters."""

    factory: str = "Flat"      # Flat, HNSW32, IVF64,Flat, IVF64,PQ16, ...
    search_params: str = ""    # e.g. nprobe=16 (IVF) or efSearch=128 (HNSW); '' = faiss's defaults

    def __post_init__(self):
        if not isinstance(self.factory, str) or not self.factory:
            raise ConfigError(f"index.factory: expected a faiss index-factory string, got {self.factory!r}")
        self.search_params = self.search_params or ""
        if not isinstance(self.search_params, str):
            raise ConfigError(f"index.search_params: expected a faiss ParameterSpace string, "
                              f"got {self.search_params!r}")


class FaissSearcher:
    """Vectors in a faiss index (inner product), with the document ids in insertion order."""

    def __init__(self, index, ids: list[str]):
        if index.ntotal != len(ids):
            raise ConfigError(f"index holds {index.ntotal} vectors but {len(ids)} ids were given")
        self.index, self.ids = index, ids

    @classmethod
    def build(cls, vectors: np.ndarray, ids: list[str], factory: str = "Flat", search_params: str = "") -> "FaissSearcher":
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or len(vectors) != len(ids):
            raise ConfigError(f"embeddings: expected a (n, dim) matrix for {len(ids)} ids, got shape {vectors.shape}")
        index = build_index(vectors, factory, "index.factory")
        index.add(vectors)
        searcher = cls(index, list(ids))
        searcher.set_search_params(search_params)
        return searcher

    def set_search_params(self, search_params: str) -> None:
        """faiss ParameterSpace syntax, e.g. ``nprobe=16`` (IVF) or ``efSearch=128`` (HNSW)."""
        set_search(self.index, search_params, "index.search_params")

    def search_positions(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Scores and insertion positions (-1 where the index found fewer than k)."""
        k = min(k, self.index.ntotal)
        return self.index.search(np.ascontiguousarray(queries, dtype=np.float32), k)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, list[list[str]]]:
        scores, idx = self.search_positions(queries, k)
        return scores, [[self.ids[j] for j in row if j >= 0] for row in idx]

    def save(self, path) -> None:
        path = Path(path)
        with atomic_path(path) as tmp:
            faiss.write_index(self.index, str(tmp))
        write_ids(path.with_suffix(".ids.txt"), self.ids)

    @classmethod
    def load(cls, path, search_params: str = "") -> "FaissSearcher":
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"{path}: index file not found")
        searcher = cls(faiss.read_index(str(path)), read_ids(path.with_suffix(".ids.txt")))
        searcher.set_search_params(search_params)
        return searcher


def build_index(vectors: np.ndarray, factory: str, key: str, per_cell: int = 0, iterations: int = 0):
    """An empty faiss index of the index-factory string ``factory`` (inner product) for ``vectors``' dimension,
    trained on ``vectors`` if it needs training; a one-line error naming the parameter ``key`` if faiss
    cannot build or train it. ``per_cell`` > 0: an inverted-file index's k-means trains on at most that many
    vectors per cell (faiss's ``max_points_per_centroid``, a seeded sample of ``vectors``); 0: faiss's default.
    ``iterations`` > 0: its k-means runs that many iterations (faiss's ``niter``); 0: faiss's default (10)."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    try:
        index = faiss.index_factory(vectors.shape[1], factory, faiss.METRIC_INNER_PRODUCT)
    except RuntimeError as exc:
        raise ConfigError(f"{key}: faiss rejects {factory!r} for dimension {vectors.shape[1]} ({_first_line(exc)})") from None
    ivf = faiss.try_extract_index_ivf(index) if per_cell or iterations else None
    if ivf is not None and per_cell:
        ivf.cp.max_points_per_centroid = per_cell
    if ivf is not None and iterations:
        ivf.cp.niter = iterations
    if not index.is_trained:
        try:
            index.train(vectors)
        except RuntimeError as exc:
            raise ConfigError(f"{key}: cannot train {factory!r} on {len(vectors)} vectors ({_first_line(exc)})") from None
    return index


def set_search(index, search_params: str, key: str) -> None:
    """Set faiss ParameterSpace values (``nprobe=16``) on ``index``; a one-line error naming ``key``."""
    if search_params:
        try:
            faiss.ParameterSpace().set_index_parameters(index, search_params)
        except RuntimeError as exc:
            raise ConfigError(f"{key}: faiss rejects {search_params!r} ({_first_line(exc)})") from None


def _first_line(exc: Exception) -> str:
    lines = [l.strip() for l in str(exc).splitlines() if l.strip()]
    useful = [l for l in lines if l.lower().startswith(("error", "could not", "invalid", "bad"))]
    return (useful or lines or [type(exc).__name__])[-1][:200]

