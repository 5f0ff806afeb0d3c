"""The normalisation baseline: a hubness correction of the baseline passages that augments nothing.

Re-normalising ``(1 - alpha) p + alpha c`` to unit length, with one vector c added to every passage (what
a content-free centroid control does when a method covers every passage), re-ranks passages only
through ``|p'|``: passages close to c lose score. That is a hubness correction, not augmentation. Its
standard form is centring (Suzuki, Hara, Shimbo, Saerens and Fukumizu, "Centering similarity measures to
reduce hubs", EMNLP 2013): subtract the corpus mean ``mu`` of the passages before the cosine. The
baseline here is the family between both, one strength ``beta`` chosen on the tune split:

    p' = (p - beta * mu) / |p - beta * mu|

``beta = 1``: Suzuki et al.'s centring; ``beta = -alpha / (1 - alpha)``: re-normalising after adding the
corpus mean with weight alpha (the same direction as the centroid control's shift). ``beta = 0`` is the
baseline itself. Passages that are not unit vectors (``xdr.normalize: false``) are scaled back to their own
norm rather than to unit length, as renormalised fusions are (``xaug.fusion.restored_norms``).
"""
from __future__ import annotations

import numpy as np

from .fusion import restored_norms


def centring_grid(alphas: list[float]) -> list[float]:
    """The strengths tried on the tune split: ``-alpha / (1 - alpha)`` (adding the mean) and ``alpha`` (centring),
    for every alpha of ``tune.alphas`` (below 1), and full centring (1); ascending."""
    grid = {1.0} | {round(float(a), 6) for a in alphas if a < 1} | {round(-a / (1 - a), 6) for a in alphas if a < 1}
    return sorted(grid)


def centred(passages: np.ndarray, beta: float) -> np.ndarray:
    """``(p - beta * mu) / |p - beta * mu|`` for every passage, mu the mean passage (float32), times ``|p|``
    when the passages are not unit vectors."""
    p = np.asarray(passages, dtype=np.float32)
    out = p - np.float32(beta) * p.mean(axis=0, dtype=np.float64).astype(np.float32)
    out = out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
    norms = restored_norms(p)
    return (out if norms is None else out * norms).astype(np.float32)
