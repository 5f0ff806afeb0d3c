"""Significance at the level of the augmented unit, the passage.

Augmentation changes passages, so the queries whose relevant passage is the same (a question, its
translations, and the other questions about that passage) are not independent: the unit of every test
is the *cluster* of a relevant passage. Per-query differences are first averaged within each cluster;
the two-sided paired randomization (sign-flip) test, the 95% bootstrap confidence interval and, for "no
difference" claims, the two one-sided tests of equivalence (TOST) within a margin then run over
clusters. The tests are ``scipy.stats.permutation_test``'s and ``scipy.stats.bootstrap``'s, the same draws
from the same generator and the same p-values (test), with each resample batch's means over every row as one
matrix product (scipy gathers the resampled data element by element). Many tests over the same clusters run
as one call (one row each). Holm corrects over the family that a table reports;
``family_resamples`` gives a family enough resamples that its smallest adjusted p can fall below 0.05.
Several draws of a trained model (seeds) and the clusters are crossed, not nested: ``crossed_test``
resamples both together (Owen 2007), so its interval holds the spread between draws too.
"""
from __future__ import annotations

import copy
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


RESAMPLE_BATCH = 256  # resamples drawn at a time, as scipy's ``batch``: the draws (and so the CIs) depend on it
ROWS_BYTES = 32 << 20  # bootstrap distributions (resamples x rows float64) kept at once, at most


def _row_chunks(rows: int, resamples: int) -> list[slice]:
    """Rows whose bootstrap distributions (``resamples`` each) fit in ``ROWS_BYTES`` together. Every chunk
    sees the same draws (a copy of one generator state), so the results do not depend on the chunking."""
    step = max(1, ROWS_BYTES // (max(resamples, 1) * 8))
    return [slice(i, i + step) for i in range(0, rows, step)]


def _sign_flips(rng: np.random.Generator, clusters: int, resamples: int):
    """Batches of sign patterns (batch, clusters) of +-1, drawn as ``scipy.stats.permutation_test`` draws its
    one-sample "samples" resamples: each cluster's pair (x, -x) permuted (``rng.permuted(pairs, axis=-1)``), the
    first of the pair kept; the full batch (at most ``resamples``) is drawn even when fewer remain. So a generator
    gives scipy's patterns and is left where scipy leaves it (the bootstrap, or a second test, draws next).
    A pair's shuffle is one draw of ``random_interval(1)``: the low bit of the generator's next 32-bit word, which
    keeps the pair's order when 1; so the patterns are the low bits of as many 32-bit words, drawn at once
    (the same words and the same generator state as the shuffle loop, in about half the time; test)."""
    batch = min(RESAMPLE_BATCH, resamples)
    for start in range(0, resamples, RESAMPLE_BATCH):
        kept = rng.integers(0, 1 << 32, (batch, clusters), dtype=np.uint32)
        np.bitwise_and(kept, 1, out=kept)  # 1: x stays first (+1), 0: -x comes first (-1)
        signs = kept.astype(np.float64)
        del kept  # a batch's memory: its signs alone while the caller uses them
        signs *= 2.0
        signs -= 1.0
        yield signs[: min(RESAMPLE_BATCH, resamples - start)]


def _flip_pvalues(diffs: np.ndarray, resamples: int, rng: np.random.Generator, alternative: str) -> np.ndarray:
    """Sign-flip p per row of ``diffs`` (rows, clusters) for the mean: scipy's ``permutation_test`` definition
    (its draws, its relative tolerance for ties, (count + 1) / (resamples + 1); exact by scipy itself when
    2**clusters <= resamples), with each batch's null means as one matrix product over every row. scipy builds
    the resampled data element by element (a Python loop per cluster and batch: 771 of the 1,788 s of the
    scaling stage at 9,780 passages, docs/testing.md); the null means agree with scipy's to rounding."""
    n = diffs.shape[1]
    if n < 63 and 2 ** n <= resamples:  # scipy: exact when its resamples reach factorial(2) ** n
        from scipy import stats  # lazy, as in cluster_test

        return np.asarray(stats.permutation_test((diffs,), np.mean, permutation_type="samples", vectorized=True,
                                                 n_resamples=resamples, alternative=alternative, axis=1,
                                                 random_state=rng, batch=RESAMPLE_BATCH).pvalue, dtype=float)
    observed = diffs.mean(axis=1)
    gamma = np.abs(np.finfo(np.float64).eps * 100 * observed)  # scipy's tolerance for ties
    below, above = np.zeros(len(diffs)), np.zeros(len(diffs))
    for signs in _sign_flips(rng, n, resamples):
        null = signs @ diffs.T / n  # (batch, rows)
        below += np.count_nonzero(null <= observed + gamma, axis=0)
        above += np.count_nonzero(null >= observed - gamma, axis=0)
    less, greater = (below + 1) / (resamples + 1), (above + 1) / (resamples + 1)
    return {"less": less, "greater": greater, "two-sided": 2 * np.minimum(less, greater)}[alternative]


def _bootstrap_interval(diffs: np.ndarray, resamples: int, rng: np.random.Generator, confidence: float):
    """Percentile bootstrap CI of the mean of each row: ``scipy.stats.bootstrap``'s draws (a batch of
    resampled cluster indices at a time) and its quantiles (``scipy.stats.quantile``), each resample's means as
    one matrix product of the clusters' counts over every row instead of a (rows, batch, clusters) gather."""
    from scipy import stats

    n = diffs.shape[1]
    means = []
    for start in range(0, resamples, RESAMPLE_BATCH):
        size = min(RESAMPLE_BATCH, resamples - start)
        picks = rng.integers(0, n, (size, n))
        picks += np.arange(size)[:, None] * n  # (resample, cluster) as one bin, in place
        counts = np.bincount(picks.ravel(), minlength=size * n).reshape(size, n).astype(np.float64)
        del picks
        means.append(counts @ diffs.T / n)
    tail = (1 - confidence) / 2
    bounds = stats.quantile(np.concatenate(means).T, np.array([tail, 1 - tail]), axis=-1)
    return bounds[..., 0], bounds[..., 1]


def cluster_test(diffs: np.ndarray, resamples: int = 2000, seed: int = 0, confidence: float = 0.95) -> ClusterTest:
    """Sign-flip test and percentile bootstrap CI of the mean of each row of ``diffs`` (tests, clusters).

    Exact (every sign pattern) when 2**clusters <= resamples, else Monte Carlo; rows that are all
    zero get p = 1, rows of one repeated value the CI [value, value], rows with a NaN NaN. The p-values and
    CIs are those of ``scipy.stats.permutation_test`` and ``bootstrap`` with the same generator (their draws,
    in batches of ``RESAMPLE_BATCH``), to rounding (test). Memory O(rows x (clusters + resamples)), the
    bootstrap distributions in chunks of ``ROWS_BYTES``."""
    diffs = np.atleast_2d(np.asarray(diffs, dtype=np.float64))
    n = diffs.shape[1]
    delta = diffs.mean(axis=1)
    if n < 2:
        nan = np.full(len(diffs), np.nan)
        return ClusterTest(delta, nan, nan.copy(), nan.copy(), n)
    rng = np.random.default_rng(seed)
    p = _flip_pvalues(diffs, resamples, rng, "two-sided")
    low, high = np.full(len(diffs), np.nan), np.full(len(diffs), np.nan)
    for rows in _row_chunks(len(diffs), resamples):  # the bootstrap's draws follow the flips' (as scipy's did)
        low[rows], high[rows] = _bootstrap_interval(diffs[rows], resamples, copy.deepcopy(rng), confidence)
    constant = np.all(diffs == diffs[:, :1], axis=1)
    p = np.where(np.all(diffs == 0, axis=1), 1.0, np.minimum(p, 1.0))
    undefined = np.isnan(diffs).any(axis=1)
    low, high, p = (np.where(undefined, np.nan, x) for x in (np.where(constant, delta, low),
                                                              np.where(constant, delta, high), p))
    return ClusterTest(delta, low, high, p, n)


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
    rng = np.random.default_rng(seed)
    lower = _flip_pvalues(diffs + margin, resamples, rng, "greater")
    upper = _flip_pvalues(diffs - margin, resamples, rng, "less")
    return np.where(np.isnan(diffs).any(axis=1), np.nan, np.minimum(np.maximum(lower, upper), 1.0))


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


@dataclass
class CrossedTest:
    """Per row, pooled over draws: the mean over draws and clusters, its 95% CI and two-sided p, the TOST p
    within a margin (NaN without one), and the standard deviation of the draws' own means."""

    delta: np.ndarray
    low: np.ndarray
    high: np.ndarray
    p: np.ndarray
    p_tost: np.ndarray
    between: np.ndarray
    draws: int
    clusters: int


def crossed_test(diffs: np.ndarray, resamples: int = 2000, seed: int = 0, confidence: float = 0.95,
                 margin: float | None = None) -> CrossedTest:
    """Rows of differences measured under several draws of a trained model, ``diffs`` (draws, rows, clusters):
    every draw scores the same clusters. The estimate is the mean over draws and clusters; each resample
    draws the draws and the clusters with replacement, independently (the pigeonhole bootstrap of a crossed
    design, Owen 2007, Ann. Appl. Stat. 1(1)), and weighs every (draw, cluster) cell by the product of their
    counts, so the percentile CI carries the spread between draws as well as between clusters (with one draw
    it is the clusters' bootstrap). ``p``: two-sided, the smallest level whose percentile interval excludes 0
    ((count + 1) / (resamples + 1) per side); ``p_tost``: the larger one-sided p of lying beyond -margin and
    +margin, likewise. Rows with a NaN give NaN; rows all zero p = 1."""
    diffs = np.asarray(diffs, dtype=np.float64)
    if diffs.ndim != 3:
        raise ValueError(f"diffs: expected (draws, rows, clusters), got shape {diffs.shape}")
    draws, rows, n = diffs.shape
    per_draw = diffs.mean(axis=2)  # (draws, rows)
    delta = per_draw.mean(axis=0)
    between = per_draw.std(axis=0, ddof=1) if draws > 1 else np.zeros(rows)
    rng = np.random.default_rng(seed)
    estimates = np.empty((resamples, rows))
    for start in range(0, resamples, RESAMPLE_BATCH):
        size = min(RESAMPLE_BATCH, resamples - start)
        w_draws = np.stack([np.bincount(r, minlength=draws) for r in rng.integers(0, draws, (size, draws))])
        w_clusters = np.stack([np.bincount(r, minlength=n) for r in rng.integers(0, n, (size, n))])
        by_draw = np.einsum("src,bc->bsr", diffs, w_clusters.astype(np.float64)) / n  # (batch, draws, rows)
        estimates[start:start + size] = np.einsum("bs,bsr->br", w_draws.astype(np.float64), by_draw) / draws
    tail = (1 - confidence) / 2
    low, high = np.quantile(estimates, [tail, 1 - tail], axis=0)

    def side(mask):
        return (np.count_nonzero(mask, axis=0) + 1) / (resamples + 1)

    p = np.minimum(2 * np.minimum(side(estimates <= 0), side(estimates >= 0)), 1.0)
    p = np.where(np.all(diffs == 0, axis=(0, 2)), 1.0, p)
    p_tost = np.full(rows, np.nan) if margin is None else \
        np.minimum(np.maximum(side(estimates <= -margin), side(estimates >= margin)), 1.0)
    undefined = np.isnan(diffs).any(axis=(0, 2))
    low, high, p, p_tost = (np.where(undefined, np.nan, x) for x in (low, high, p, p_tost))
    return CrossedTest(delta, low, high, p, p_tost, between, draws, n)
