"""Paired tests and Holm correction: equal to scipy and to hand-written textbook implementations."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats

from recux.significance import holm, paired_compare, paired_ttest, wilcoxon_signed_rank


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
