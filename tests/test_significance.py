"""Paired tests, the permutation test, the bootstrap CI and Holm correction: equal to scipy and to hand-written
textbook implementations (exact enumeration on tiny inputs)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats

from recux.significance import (
    BATCH,
    bootstrap_ci,
    holm,
    paired_compare,
    paired_ttest,
    permutation_test,
    wilcoxon_signed_rank,
)


def _hand_ttest(a, b):
    d = np.asarray(a, float) - np.asarray(b, float)
    n = d.size
    mean = d.sum() / n
    sd = math.sqrt(((d - mean) ** 2).sum() / (n - 1))
    t = mean / (sd / math.sqrt(n))
    return 2 * stats.t.sf(abs(t), n - 1)


def _hand_signed_ranks(d):
    """Average ranks of |d| (1-based), computed with an explicit loop over tie blocks."""
    order = np.argsort(np.abs(d), kind="stable")
    ranks = np.empty(d.size)
    i = 0
    while i < d.size:
        j = i
        while j + 1 < d.size and abs(d[order[j + 1]]) == abs(d[order[i]]):
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def _hand_wilcoxon_exact(d):
    """Exact two-sided p-value by enumerating all 2^n sign assignments (no zeros, no ties)."""
    n = d.size
    ranks = _hand_signed_ranks(d)
    t_obs = ranks[d > 0].sum()
    sums = [sum(r for r, s in zip(range(1, n + 1), signs, strict=True) if s) for signs in
            itertools.product((0, 1), repeat=n)]  # fmt: skip
    sums = np.array(sums)
    p_low, p_high = np.mean(sums <= t_obs), np.mean(sums >= t_obs)
    return min(1.0, 2 * min(p_low, p_high))


def _hand_wilcoxon_normal(d):
    """Normal approximation with tie correction, zeros dropped (Wilcoxon's convention)."""
    d = d[d != 0]
    n = d.size
    ranks = _hand_signed_ranks(d)
    t_plus = ranks[d > 0].sum()
    mean = n * (n + 1) / 4
    _, counts = np.unique(np.abs(d), return_counts=True)
    var = n * (n + 1) * (2 * n + 1) / 24 - (counts**3 - counts).sum() / 48
    z = (t_plus - mean) / math.sqrt(var)
    return 2 * stats.norm.sf(abs(z))


def test_paired_ttest_matches_scipy_and_formula():
    rng = np.random.default_rng(1)
    for n in (2, 5, 40, 500):
        a = rng.normal(0.3, 0.1, n)
        b = a + rng.normal(0.01, 0.05, n)
        p = paired_ttest(a, b)
        assert p == pytest.approx(stats.ttest_rel(a, b).pvalue, rel=1e-12)
        assert p == pytest.approx(_hand_ttest(a, b), rel=1e-9)


def test_wilcoxon_matches_scipy_and_exact_enumeration():
    rng = np.random.default_rng(2)
    a = rng.normal(size=12)
    b = a + rng.normal(0.4, 1.0, size=12)
    p = wilcoxon_signed_rank(a, b)
    assert p == pytest.approx(stats.wilcoxon(a, b, zero_method="wilcox").pvalue, rel=1e-12)
    assert p == pytest.approx(_hand_wilcoxon_exact(a - b), rel=1e-12)


def test_wilcoxon_large_sample_with_ties_and_zeros_matches_normal_approximation():
    rng = np.random.default_rng(3)
    a = np.round(rng.uniform(0, 1, 400), 1)  # coarse values: many tied |d| and many zero differences
    b = np.round(a + rng.normal(0.03, 0.2, 400), 1)
    assert np.sum(a == b) > 10
    p = wilcoxon_signed_rank(a, b)
    assert p == pytest.approx(stats.wilcoxon(a, b, zero_method="wilcox").pvalue, rel=1e-12)
    assert p == pytest.approx(_hand_wilcoxon_normal(a - b), rel=1e-9)


def test_identical_systems_give_p_one_and_degenerate_inputs_nan():
    a = np.array([0.1, 0.5, 0.0, 1.0])
    assert paired_ttest(a, a) == 1.0
    assert wilcoxon_signed_rank(a, a) == 1.0
    assert math.isnan(paired_ttest([0.2], [0.1]))
    assert math.isnan(wilcoxon_signed_rank([], []))
    with pytest.raises(ValueError, match="equal length"):
        paired_ttest([1.0, 2.0], [1.0])


def _mean_stat(x, axis=-1):
    return np.mean(x, axis=axis)


def _scipy_sign_flip(d, n_resamples, seed=0):
    return stats.permutation_test((d,), _mean_stat, permutation_type="samples", vectorized=True,
                                  n_resamples=n_resamples, alternative="two-sided",
                                  rng=np.random.default_rng(seed)).pvalue  # fmt: skip


def _hand_sign_flip_exact(d):
    """Fisher's randomization test by listing all 2^n sign vectors in a Python loop: P(|mean(s*d)| >= |mean(d)|)."""
    t_obs = abs(sum(d) / len(d))
    hits = total = 0
    for signs in itertools.product((1.0, -1.0), repeat=len(d)):
        t = abs(sum(s * x for s, x in zip(signs, d, strict=True)) / len(d))
        hits += t >= t_obs - 1e-12
        total += 1
    return hits / total


def test_permutation_test_exact_matches_enumeration_and_scipy():
    rng = np.random.default_rng(11)
    cases = [rng.normal(0.2, 1.0, n) for n in (1, 2, 5, 9, 12)]
    cases.append(np.array([0.3, -0.3, 0.3, 0.0, 0.1, -0.1, 0.2, 0.0]))  # tied |d| and zeros
    cases.append(np.round(rng.normal(0.1, 0.3, 10), 1))
    for d in cases:
        p = permutation_test(d, np.zeros_like(d))  # 2^n <= 10000 resamples: exact
        assert p == pytest.approx(_hand_sign_flip_exact(list(d)), rel=1e-12)
        if d.size > 1:  # scipy needs two observations
            assert p == pytest.approx(_scipy_sign_flip(d, 10_000), rel=1e-12)
        b = rng.normal(size=d.size)
        assert permutation_test(d + b, b) == pytest.approx(p, rel=1e-9)  # a test of the differences only


def test_permutation_test_monte_carlo_agrees_with_exact_and_scipy():
    rng = np.random.default_rng(12)
    d = rng.normal(0.35, 1.0, 14)  # 16384 sign vectors: 3000 draws is Monte Carlo
    exact = _hand_sign_flip_exact(list(d))
    assert 0.02 < exact < 0.5
    p = permutation_test(d, np.zeros_like(d), n_resamples=3000, seed=5)
    assert p == permutation_test(d, np.zeros_like(d), n_resamples=3000, seed=5)  # seeded: repeatable
    assert abs(p - exact) < 5 * math.sqrt(exact * (1 - exact) / 3000)
    big = rng.normal(0.04, 1.0, 300)
    ref = _scipy_sign_flip(big, 5000, seed=1)
    assert 0.01 < ref < 0.5
    mine = permutation_test(big, np.zeros_like(big), n_resamples=5000, seed=2)
    assert abs(mine - ref) < 5 * math.sqrt(2 * ref * (1 - ref) / 5000)  # two independent estimates
    # A clear difference: p is never 0 with random draws (the observed statistic counts as one draw)
    assert permutation_test(big + 1.0, np.zeros_like(big), n_resamples=999) == pytest.approx(1 / 1000)


def test_permutation_test_degenerate_inputs():
    assert permutation_test(np.ones(30), np.ones(30)) == 1.0  # every difference 0
    assert math.isnan(permutation_test([], []))
    with pytest.raises(ValueError, match="n_resamples"):
        permutation_test([1.0], [0.0], n_resamples=0)


def _exact_bootstrap_quantile(x, q):
    """Quantile q (inverse CDF) of the exact bootstrap distribution of the mean, from all n^n equally likely
    resamples; also the smallest distance of the CDF at an atom from q (how robust a Monte Carlo estimate is)."""
    means = np.array([np.mean(c) for c in itertools.product(x, repeat=len(x))])
    atoms, counts = np.unique(np.round(means, 12), return_counts=True)
    cdf = np.cumsum(counts) / counts.sum()
    return float(atoms[np.searchsorted(cdf, q)]), float(np.min(np.abs(cdf - q)))


def test_bootstrap_ci_matches_exact_bootstrap_distribution_on_tiny_input():
    x = np.array([0.0, 0.1, 0.5, 2.0])
    level = 0.8
    for q, got in zip((0.1, 0.9), bootstrap_ci(x, level=level, n_resamples=200_000, seed=3), strict=True):
        want, margin = _exact_bootstrap_quantile(x, q)
        assert margin > 0.005  # the Monte Carlo quantile cannot land on a neighbouring atom
        assert got == pytest.approx(want, abs=1e-12)


def test_bootstrap_ci_equals_scipy_percentile_bootstrap():
    rng = np.random.default_rng(13)
    for n, n_resamples, level in ((943, 2500, 0.95), (7, 999, 0.9), (50, BATCH, 0.99)):
        x = rng.exponential(0.2, n)
        ref = stats.bootstrap((x,), _mean_stat, method="percentile", n_resamples=n_resamples, batch=BATCH,
                              confidence_level=level, rng=np.random.default_rng(21))  # fmt: skip
        lo, hi = bootstrap_ci(x, level=level, n_resamples=n_resamples, seed=21)
        assert (lo, hi) == pytest.approx(tuple(ref.confidence_interval), rel=1e-12)
        assert lo <= x.mean() <= hi


def test_bootstrap_ci_edge_cases_and_bad_settings():
    assert bootstrap_ci(np.full(5, 0.25)) == pytest.approx((0.25, 0.25))
    assert all(math.isnan(v) for v in bootstrap_ci([]))
    with pytest.raises(ValueError, match="confidence level"):
        bootstrap_ci([1.0, 2.0], level=95)
    with pytest.raises(ValueError, match="n_resamples"):
        bootstrap_ci([1.0, 2.0], n_resamples=0)


def test_paired_compare_reports_ci_and_permutation_of_the_differences():
    rng = np.random.default_rng(14)
    a = rng.uniform(0, 1, 200)
    b = np.clip(a + rng.normal(0.03, 0.2, 200), 0, 1)
    res = paired_compare(a, b, n_resamples=4000, level=0.9, seed=7)
    assert (res.ci_low, res.ci_high) == pytest.approx(bootstrap_ci(a - b, 0.9, 4000, 7), rel=1e-12)
    assert res.p_permutation == permutation_test(a, b, 4000, 7)
    assert res.ci_low < res.mean_diff < res.ci_high
    assert paired_compare(a, b, n_resamples=4000, level=0.9, seed=7) == res  # seeded: repeatable


def test_paired_compare_drops_nan_pairs():
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=50), rng.normal(size=50)
    a[3], b[10] = np.nan, np.nan
    keep = np.ones(50, bool)
    keep[[3, 10]] = False
    res = paired_compare(a, b)
    assert res.n == 48
    assert res.mean_diff == pytest.approx(np.mean(a[keep] - b[keep]))
    assert res.p_ttest == pytest.approx(stats.ttest_rel(a[keep], b[keep]).pvalue, rel=1e-12)
    assert res.p_wilcoxon == pytest.approx(stats.wilcoxon(a[keep], b[keep]).pvalue, rel=1e-12)
    assert res.p_permutation == permutation_test(a[keep], b[keep])
    assert (res.ci_low, res.ci_high) == bootstrap_ci(a[keep] - b[keep])


def _holm_loop(p):
    """Textbook Holm: walk the sorted p-values, adjusted = running max of (m - i) * p_(i), capped at 1."""
    idx = [i for i in range(len(p)) if not math.isnan(p[i])]
    idx.sort(key=lambda i: p[i])
    m = len(idx)
    out = [math.nan] * len(p)
    running = 0.0
    for rank, i in enumerate(idx):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out


def _holm_rejections(p, alpha):
    """Holm's step-down decision rule: reject while p_(i) <= alpha / (m - i), then stop."""
    idx = sorted((i for i in range(len(p)) if not math.isnan(p[i])), key=lambda i: p[i])
    m = len(idx)
    rejected = set()
    for rank, i in enumerate(idx):
        if p[i] <= alpha / (m - rank):
            rejected.add(i)
        else:
            break
    return rejected


def test_holm_matches_loop_and_step_down_rule():
    rng = np.random.default_rng(5)
    for trial in range(200):
        m = int(rng.integers(1, 15))
        p = rng.uniform(0, 0.1, m) ** rng.uniform(0.5, 3)
        if trial % 3 == 0:
            p[rng.integers(0, m)] = p[0]  # ties
        if trial % 4 == 0 and m > 1:
            p[rng.integers(0, m)] = np.nan
        adj = holm(p)
        np.testing.assert_allclose(adj, _holm_loop(list(p)), rtol=1e-12, equal_nan=True)
        for alpha in (0.01, 0.05, 0.1):
            assert {i for i in range(m) if adj[i] <= alpha} == _holm_rejections(list(p), alpha)


def test_holm_edge_cases():
    assert np.isnan(holm([np.nan, np.nan])).all()
    assert holm([]).shape == (0,)
    np.testing.assert_allclose(holm([0.04]), [0.04])
    np.testing.assert_allclose(holm([0.6, 0.7]), [1.0, 1.0])
