"""Significance of per-query differences: paired two-sided t-tests, Holm-corrected over a family."""
from __future__ import annotations

import numpy as np
from scipy import stats


def paired_ttest(treatment, baseline) -> tuple[float, float]:
    """(mean difference, two-sided p) of a paired t-test; p = 1 when the two are identical."""
    a, b = np.asarray(treatment, dtype=float), np.asarray(baseline, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"paired test needs equal shapes, got {a.shape} and {b.shape}")
    diff = a - b
    if len(diff) < 2:
        return float(diff.mean()) if len(diff) else 0.0, 1.0
    if np.all(diff == diff[0]):  # zero variance: t is 0/0 or infinite
        return float(diff[0]), 1.0 if diff[0] == 0 else 0.0
    return float(diff.mean()), float(stats.ttest_rel(a, b).pvalue)


def holm(pvalues) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values (step-down, monotone, capped at 1)."""
    p = np.asarray(pvalues, dtype=float)
    order = np.argsort(p)
    m = len(p)
    adjusted = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adjusted[i] = running
    return adjusted
