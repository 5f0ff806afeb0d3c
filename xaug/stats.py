"""Significance at the level of the augmented unit, the passage.

Augmentation changes passages, so the queries whose relevant passage is the same (a question, its
translations, and the other questions about that passage) are not independent: the unit of every test
is the *cluster* of a relevant passage. Per-query differences are first averaged within each cluster;
the two-sided paired randomization (sign-flip) test, the 95% bootstrap confidence interval and, for "no
difference" claims, the two one-sided tests of equivalence (TOST) within a margin then run over
clusters, with ``scipy.stats.permutation_test`` and ``scipy.stats.bootstrap``. Many tests over the same
clusters run as one vectorised call (one row each). Holm corrects over the family that a table reports;
``family_resamples`` gives a family enough resamples that its smallest adjusted p can fall below 0.05.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np


def cluster_means(values: np.ndarray, clusters: np.ndarray) -> np.ndarray:
    """Average the last axis of ``values`` (..., Q) within clusters: (..., C), clusters in sorted label
    order; NaN values are left out (a cluster with none defined is NaN). Memory O(values + rows x C)."""
    labels, index = np.unique(np.asarray(clusters), return_inverse=True)
    values = np.asarray(values, dtype=np.float64)
    rows = values.reshape(-1, values.shape[-1])
    defined = ~np.isnan(rows)
    size = len(rows) * len(labels)
    bins = (np.arange(len(rows))[:, None] * len(labels) + index).ravel()  # (row, cluster) as one bin
    sums = np.bincount(bins, weights=np.where(defined, rows, 0.0).ravel(), minlength=size)
    counts = np.bincount(bins, weights=defined.ravel().astype(np.float64), minlength=size)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (sums / counts).reshape(values.shape[:-1] + (len(labels),))


@dataclass
class ClusterTest:
    """Per row: the mean over clusters of the cluster-mean difference, its 95% CI and two-sided p."""

    delta: np.ndarray
    low: np.ndarray
    high: np.ndarray
    p: np.ndarray
    clusters: int


RESAMPLE_BATCH = 256  # resamples drawn at a time: the CIs depend on it (scipy draws a batch's indices at once)
ROWS_BYTES = 32 << 20  # rows tested in one call: batch x rows x clusters float64 within this (scipy holds a few)


def _row_chunks(rows: int, clusters: int) -> list[slice]:
    """Rows of a test in chunks that keep one resample batch within ``ROWS_BYTES``. Each chunk is tested with a
    fresh generator of the same seed, and every row of a vectorised call sees the same draws, so the results do
    not depend on the chunking."""
    step = max(1, ROWS_BYTES // (RESAMPLE_BATCH * max(clusters, 1) * 8))
    return [slice(i, i + step) for i in range(0, rows, step)]


def cluster_test(diffs: np.ndarray, resamples: int = 2000, seed: int = 0, confidence: float = 0.95) -> ClusterTest:
    """Sign-flip test and percentile bootstrap CI of the mean of each row of ``diffs`` (tests, clusters).

    Exact (every sign pattern) when 2**clusters <= resamples, else Monte Carlo; rows that are all
    zero get p = 1, rows of one repeated value the CI [value, value]. Memory O(rows x clusters) plus one
    resample batch of a row chunk (``_row_chunks``), whatever ``resamples`` is."""
    diffs = np.atleast_2d(np.asarray(diffs, dtype=np.float64))
    n = diffs.shape[1]
    delta = diffs.mean(axis=1)
    if n < 2:
        nan = np.full(len(diffs), np.nan)
        return ClusterTest(delta, nan, nan.copy(), nan.copy(), n)
    from scipy import stats  # 0.5 s to import: only the stages that test pay it

    low, high, p = (np.full(len(diffs), np.nan) for _ in range(3))
    with warnings.catch_warnings():  # rows of one repeated value: the CI is that value, p from the flips
        warnings.simplefilter("ignore", stats.DegenerateDataWarning)
        for rows in _row_chunks(*diffs.shape):
            low[rows], high[rows], p[rows] = _cluster_test(diffs[rows], delta[rows], resamples,
                                                           np.random.default_rng(seed), confidence)
    return ClusterTest(delta, low, high, p, n)


def _cluster_test(diffs, delta, resamples, rng, confidence):
    from scipy import stats  # lazy, as in cluster_test (already loaded there: a dictionary lookup)

    flips = stats.permutation_test((diffs,), np.mean, permutation_type="samples", vectorized=True,
                                   n_resamples=resamples, alternative="two-sided", axis=1, random_state=rng,
                                   batch=RESAMPLE_BATCH)
    boot = stats.bootstrap((diffs,), np.mean, n_resamples=resamples, confidence_level=confidence,
                           method="percentile", vectorized=True, axis=1, random_state=rng, batch=RESAMPLE_BATCH)
    low, high = np.asarray(boot.confidence_interval.low), np.asarray(boot.confidence_interval.high)
    constant = np.all(diffs == diffs[:, :1], axis=1)
    p = np.where(np.all(diffs == 0, axis=1), 1.0, np.asarray(flips.pvalue, dtype=float))
    return np.where(constant, delta, low), np.where(constant, delta, high), np.minimum(p, 1.0)


def family_resamples(resamples: int, family_size: int, alpha: float = 0.05) -> int:
    """At least ``resamples``, and enough that a two-sided randomization p (at least 2 / (R + 1)) times the
    Holm factor of a family of ``family_size`` tests can fall to ``alpha`` / 2."""
    return max(int(resamples), int(np.ceil(4 * family_size / alpha)) - 1)


def equivalence_test(diffs: np.ndarray, margin: float, resamples: int = 2000, seed: int = 0) -> np.ndarray:
    """TOST p per row of ``diffs`` (tests, clusters): the larger of the one-sided sign-flip p-values of
    H0: mean <= -margin and H0: mean >= +margin; a small p says the mean lies within (-margin, +margin)."""
    diffs = np.atleast_2d(np.asarray(diffs, dtype=np.float64))
    if diffs.shape[1] < 2:
        return np.full(len(diffs), np.nan)
    from scipy import stats  # lazy, as in cluster_test

    out = np.full(len(diffs), np.nan)
    for rows in _row_chunks(*diffs.shape):
        rng, p = np.random.default_rng(seed), []
        for shifted, alternative in ((diffs[rows] + margin, "greater"), (diffs[rows] - margin, "less")):
            p.append(np.asarray(stats.permutation_test((shifted,), np.mean, permutation_type="samples",
                                                       vectorized=True, n_resamples=resamples,
                                                       alternative=alternative, axis=1, random_state=rng,
                                                       batch=RESAMPLE_BATCH).pvalue, dtype=float))
        out[rows] = np.minimum(np.maximum(p[0], p[1]), 1.0)
    return out


def holm(pvalues) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values (step-down, monotone, capped at 1); NaN stays NaN, outside the family."""
    p = np.asarray(pvalues, dtype=float)
    adjusted = np.full(len(p), np.nan)
    valid = np.flatnonzero(~np.isnan(p))
    order = valid[np.argsort(p[valid], kind="stable")]
    m, running = len(order), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adjusted[i] = running
    return adjusted
