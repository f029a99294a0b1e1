"""Unpaired statistics for groups of *different* users (user-group fairness, segment diagnosis): the t confidence
interval of a group mean, Welch's t-test of two groups' means, and the Kruskal–Wallis H test over several groups.

The paired tests (same users, two systems) are in recux.significance."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

LEVEL = 0.95


def _clean(x) -> np.ndarray:
    """The finite values of a 1-D sample (NaN marks a value undefined for a user and is left out)."""
    x = np.asarray(x, dtype=np.float64).ravel()
    return x[np.isfinite(x)]


def mean_ci(values, level: float = LEVEL) -> tuple[int, float, float, float]:
    """(n, mean, low, high): Student's t interval of the mean, mean ± t_{(1+level)/2, n-1} · s/√n with s the
    sample standard deviation (ddof=1). NaN bounds for n < 2, NaN mean for n = 0."""
    from scipy import stats

    x = _clean(values)
    n = int(x.size)
    if n == 0:
        return 0, math.nan, math.nan, math.nan
    m = float(x.mean())
    if n < 2:
        return n, m, math.nan, math.nan
    half = float(stats.t.ppf((1 + level) / 2, n - 1)) * float(x.std(ddof=1)) / math.sqrt(n)
    return n, m, m - half, m + half


@dataclass(frozen=True)
class WelchTest:
    """mean(a) - mean(b), its Welch confidence interval, the statistic, its degrees of freedom and the
    two-sided p-value."""

    diff: float
    ci_low: float
    ci_high: float
    t: float
    df: float
    p: float


NAN_WELCH = WelchTest(math.nan, math.nan, math.nan, math.nan, math.nan, math.nan)


def welch(a, b, level: float = LEVEL) -> WelchTest:
    """Welch's unequal-variance t-test of mean(a) = mean(b) (Welch 1947):
    t = (ā - b̄) / √(s_a²/n_a + s_b²/n_b), df = (s_a²/n_a + s_b²/n_b)² / ((s_a²/n_a)²/(n_a-1) + (s_b²/n_b)²/(n_b-1))
    (Welch–Satterthwaite), p = 2·P(T_df > |t|); the interval is (ā - b̄) ± t_{(1+level)/2, df} · se. Same p as
    scipy.stats.ttest_ind(a, b, equal_var=False). All NaN when a group has fewer than two values; when both groups
    are constant (se = 0) p is 1 for equal means, else 0."""
    from scipy import stats

    a, b = _clean(a), _clean(b)
    na, nb = a.size, b.size
    if na < 2 or nb < 2:
        return NAN_WELCH
    diff = float(a.mean() - b.mean())
    va, vb = float(a.var(ddof=1)) / na, float(b.var(ddof=1)) / nb
    se = math.sqrt(va + vb)
    if se == 0:
        return WelchTest(diff, diff, diff, math.nan, math.nan, 1.0 if diff == 0 else 0.0)
    df = (va + vb) ** 2 / (va**2 / (na - 1) + vb**2 / (nb - 1))
    t = diff / se
    half = float(stats.t.ppf((1 + level) / 2, df)) * se
    return WelchTest(diff, diff - half, diff + half, t, df, float(2 * stats.t.sf(abs(t), df)))


def kruskal(groups: Sequence) -> float:
    """Two-sided p-value of the Kruskal–Wallis H test that all groups come from one distribution (Kruskal and
    Wallis 1952): with R_i the sum of the pooled average ranks of group i (size n_i, N in all),
    H = [12 / (N(N+1)) · Σ R_i²/n_i − 3(N+1)] / C, C = 1 − Σ_ties (t³ − t) / (N³ − N) (tie correction), and
    p = P(χ²_{g−1} > H) over the g non-empty groups. Same p as scipy.stats.kruskal. NaN with fewer than two
    non-empty groups; 1.0 when every value is the same (C = 0: nothing to rank)."""
    from scipy import stats

    parts = [x for x in (_clean(g) for g in groups) if x.size]
    if len(parts) < 2:
        return math.nan
    pooled = np.concatenate(parts)
    n = pooled.size
    ranks = stats.rankdata(pooled)
    _, ties = np.unique(pooled, return_counts=True)
    c = 1.0 - float(np.sum(ties.astype(np.float64) ** 3 - ties)) / (n**3 - n)
    if c <= 0:
        return 1.0
    bounds = np.cumsum([0, *(x.size for x in parts)])
    h = sum(float(ranks[lo:hi].sum()) ** 2 / (hi - lo) for lo, hi in zip(bounds[:-1], bounds[1:], strict=True))
    h = (12.0 / (n * (n + 1)) * h - 3.0 * (n + 1)) / c
    return float(stats.chi2.sf(h, len(parts) - 1))
