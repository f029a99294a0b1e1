"""Paired significance tests for leaderboards: paired t-test, Wilcoxon signed-rank and a Fisher randomization
(sign-flip permutation) test on per-user values, a percentile bootstrap CI of the mean (difference), and
Holm–Bonferroni correction across the comparisons of one leaderboard.

Resampling is seeded (``numpy.random.default_rng(seed)``) so tables are repeatable, and vectorised in batches of
``BATCH`` resamples (bounded memory: BATCH x n values)."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

BATCH = 1000  # resamples drawn and evaluated at once
N_RESAMPLES = 10_000  # default bootstrap resamples and random sign flips


@dataclass(frozen=True)
class PairedTest:
    """Outcome of comparing two systems on the same users: ``n`` pairs, mean of ``a - b``, two-sided p-values
    and a bootstrap confidence interval of the mean difference."""

    n: int
    mean_diff: float
    p_ttest: float
    p_wilcoxon: float
    p_permutation: float = math.nan
    ci_low: float = math.nan  # percentile bootstrap CI of mean_diff (unadjusted for multiple comparisons)
    ci_high: float = math.nan


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


def permutation_test(a, b, n_resamples: int = N_RESAMPLES, seed: int = 0) -> float:
    """Two-sided Fisher randomization test of mean(a - b) = 0 (paired sign-flip permutation test).

    Under H0 each difference d_i = a_i - b_i is as likely to have the opposite sign, so the null distribution of
    T = mean(d) is that of T* = mean(s_i * d_i) over independent signs s_i = ±1 (Fisher 1935; Smucker, Allan and
    Carterette, CIKM 2007, for IR). p = P(|T*| >= |T|), counted with a relative tolerance of 100 eps for ties.
    Exact (all 2^n sign vectors) when 2^n <= n_resamples; otherwise ``n_resamples`` random sign vectors from
    ``default_rng(seed)`` and p = (1 + #{|T*| >= |T|}) / (1 + n_resamples) (the observed statistic counts as
    one draw, so p > 0; Phipson and Smyth 2010). NaN when there are no pairs; 1.0 when every d_i is 0.
    Same two-sided p as scipy.stats.permutation_test(permutation_type="samples") in the exact case (the null
    distribution is symmetric); a Monte Carlo estimate of it otherwise.
    """
    if int(n_resamples) < 1:
        raise ValueError(f"n_resamples must be a positive integer, got {n_resamples}")
    d = _differences(a, b)
    n = d.size
    if n == 0:
        return float("nan")
    t_obs = abs(d.mean())
    threshold = t_obs - np.abs(100 * np.finfo(np.float64).eps * t_obs)
    if n < 63 and 2**n <= n_resamples:
        codes = np.arange(2**n, dtype=np.int64)[:, None]
        signs = ((codes >> np.arange(n)) & 1) * 2.0 - 1.0
        return float(np.mean(np.abs(signs @ d) / n >= threshold))
    rng = np.random.default_rng(seed)
    hits = 0
    for start in range(0, n_resamples, BATCH):
        signs = rng.integers(0, 2, (min(BATCH, n_resamples - start), n)) * 2.0 - 1.0
        hits += int(np.count_nonzero(np.abs(signs @ d) / n >= threshold))
    return (hits + 1) / (n_resamples + 1)


def bootstrap_ci(
    values, level: float = 0.95, n_resamples: int = N_RESAMPLES, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of the mean of ``values`` (Efron and Tibshirani 1993, ch. 13):
    the (1-level)/2 and (1+level)/2 quantiles (linear interpolation) of the means of ``n_resamples`` resamples
    of size n drawn with replacement. Resamples are drawn ``BATCH`` at a time as ``rng.integers(0, n, (BATCH,
    n))`` from ``default_rng(seed)``, the same stream as scipy.stats.bootstrap(method="percentile",
    batch=BATCH). For a paired comparison pass the differences a - b (a paired bootstrap: users are resampled,
    keeping each user's pair together). (NaN, NaN) for an empty sample."""
    if not 0 < level < 1:
        raise ValueError(f"confidence level must be between 0 and 1, got {level}")
    if int(n_resamples) < 1:
        raise ValueError(f"n_resamples must be a positive integer, got {n_resamples}")
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"bootstrap_ci needs a 1-D sample, got shape {x.shape}")
    if x.size == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = np.concatenate(
        [
            x[rng.integers(0, x.size, (min(BATCH, n_resamples - start), x.size))].mean(axis=1)
            for start in range(0, n_resamples, BATCH)
        ]
    )
    lo, hi = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def paired_compare(a, b, n_resamples: int = N_RESAMPLES, level: float = 0.95, seed: int = 0) -> PairedTest:
    """All tests, and the bootstrap CI of mean(a - b), on the pairs ``(a[i], b[i])``; pairs where either value
    is NaN are dropped first. Resampling uses ``seed`` (the same seed gives the same p-value and CI)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    _differences(a, b)  # shape check
    keep = ~(np.isnan(a) | np.isnan(b))
    a, b = a[keep], b[keep]
    mean_diff = float(np.mean(a - b)) if a.size else float("nan")
    lo, hi = bootstrap_ci(a - b, level, n_resamples, seed)
    return PairedTest(
        int(a.size), mean_diff, paired_ttest(a, b), wilcoxon_signed_rank(a, b),
        permutation_test(a, b, n_resamples, seed), lo, hi,
    )  # fmt: skip


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
