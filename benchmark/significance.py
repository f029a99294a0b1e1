"""Paired significance tests for leaderboards: paired t-test and Wilcoxon signed-rank on per-user values,
and Holm–Bonferroni correction across the comparisons of one leaderboard."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PairedTest:
    """Outcome of comparing two systems on the same users: ``n`` pairs, mean of ``a - b``, two-sided p-values."""

    n: int
    mean_diff: float
    p_ttest: float
    p_wilcoxon: float


def _differences(a, b) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(
            f"paired samples must be 1-D and of equal length, got shapes {a.shape} and {b.shape}"
        )
    return a - b


def paired_ttest(a, b) -> float:
    """Two-sided paired t-test p-value (scipy.stats.ttest_rel); 1.0 when all differences are zero,
    NaN with fewer than two pairs (the test is undefined)."""
    from scipy import stats

    d = _differences(a, b)
    if d.size < 2:
        return float("nan")
    if not np.any(d):
        return 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # constant non-zero differences: t = ±inf, p = 0
        return float(stats.ttest_rel(a, b).pvalue)


def wilcoxon_signed_rank(a, b) -> float:
    """Two-sided Wilcoxon signed-rank p-value (scipy.stats.wilcoxon, zero_method="wilcox": zero differences
    are dropped); 1.0 when all differences are zero, NaN when there are no pairs."""
    from scipy import stats

    d = _differences(a, b)
    if d.size == 0:
        return float("nan")
    if not np.any(d):
        return 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(stats.wilcoxon(d, zero_method="wilcox", alternative="two-sided").pvalue)


def paired_compare(a, b) -> PairedTest:
    """Both tests on the pairs ``(a[i], b[i])``; pairs where either value is NaN are dropped first."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    _differences(a, b)  # shape check
    keep = ~(np.isnan(a) | np.isnan(b))
    a, b = a[keep], b[keep]
    mean_diff = float(np.mean(a - b)) if a.size else float("nan")
    return PairedTest(int(a.size), mean_diff, paired_ttest(a, b), wilcoxon_signed_rank(a, b))


def holm(pvalues) -> np.ndarray:
    """Holm–Bonferroni adjusted p-values (step-down, monotone, capped at 1). NaNs are not counted as tests
    and stay NaN; reject hypothesis i at level alpha iff ``adjusted[i] <= alpha``."""
    p = np.asarray(pvalues, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    valid = np.flatnonzero(~np.isnan(p))
    m = valid.size
    if m == 0:
        return out
    order = valid[np.argsort(p[valid], kind="stable")]
    scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
    out[order] = np.maximum.accumulate(scaled)
    return out
