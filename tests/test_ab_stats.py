"""A/B statistics: the lift test against scipy on the same per-user values, power and MDE against their
definitions and a Monte-Carlo check, CUPED's theta against least squares and its estimate unbiased on a planted
effect, the mSPRT ratio against numerical integration of its definition, and bad settings refused."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, stats

from recux.errors import ConfigError
from recux.simulation import abstats, sequential


def test_lift_matches_scipy_welch():
    rng = np.random.default_rng(0)
    c, t = rng.exponential(1.0, 300), rng.exponential(1.2, 250)
    res = abstats.lift(c, t, alpha=0.1)
    ref = stats.ttest_ind(t, c, equal_var=False)
    assert res.p == pytest.approx(ref.pvalue, rel=1e-10)
    ci = ref.confidence_interval(confidence_level=0.9)
    assert (res.ci_low, res.ci_high) == pytest.approx((ci.low, ci.high), rel=1e-10)
    assert res.diff == pytest.approx(t.mean() - c.mean())
    assert res.relative == pytest.approx(t.mean() / c.mean() - 1)
    # delta method, written out: var(mt/mc) ~ vt/mc^2 + mt^2 vc/mc^4
    se = math.sqrt(t.var(ddof=1) / t.size / c.mean() ** 2 + t.mean() ** 2 * c.var(ddof=1) / c.size / c.mean() ** 4)
    assert res.relative_ci_high - res.relative == pytest.approx(stats.norm.ppf(0.95) * se)


def test_power_of_the_mde_is_the_target_power_and_matches_monte_carlo():
    se = abstats.standard_error(1.0, 1.5, 400, 300)
    assert se == pytest.approx(math.sqrt(1 / 400 + 2.25 / 300))
    d = abstats.mde(se, alpha=0.05, target_power=0.8)
    assert abstats.power(d, se, 0.05) == pytest.approx(0.8, abs=1e-6)  # the other tail adds < 1e-6
    assert abstats.power(0.0, se, 0.05) == pytest.approx(0.05)
    rng = np.random.default_rng(1)  # Monte Carlo: Welch tests of normal samples with the planted effect d
    hits = [stats.ttest_ind(rng.normal(d, 1.5, 300), rng.normal(0, 1, 400), equal_var=False).pvalue < 0.05
            for _ in range(2000)]
    assert abs(np.mean(hits) - 0.8) < 4 * math.sqrt(0.8 * 0.2 / 2000)


def test_cuped_theta_is_the_pooled_least_squares_slope():
    rng = np.random.default_rng(2)
    x = rng.normal(size=500)
    y = 0.7 * x + rng.normal(size=500)
    ac, at, theta = abstats.cuped(y[:200], y[200:], x[:200], x[200:])
    assert theta == pytest.approx(np.polyfit(x, y, 1)[0])
    assert np.concatenate([ac, at]).mean() == pytest.approx(y.mean())  # centred adjustment keeps the mean


def test_cuped_is_unbiased_and_narrower_on_a_planted_effect():
    rng = np.random.default_rng(3)
    plain, adjusted = [], []
    for _ in range(400):
        x = rng.normal(size=400)  # pre-period covariate
        y = x + rng.normal(scale=0.5, size=400)
        arm = rng.random(400) < 0.5
        y = y + 0.1 * arm  # planted effect 0.1
        plain.append(abstats.lift(y[~arm], y[arm]))
        ac, at, _ = abstats.cuped(y[~arm], y[arm], x[~arm], x[arm])
        adjusted.append(abstats.lift(ac, at))
    est_p, est_a = np.array([r.diff for r in plain]), np.array([r.diff for r in adjusted])
    assert abs(est_a.mean() - 0.1) < 4 * est_a.std() / 20  # unbiased for the planted effect
    assert abs(est_p.mean() - 0.1) < 4 * est_p.std() / 20
    width_p = np.mean([r.ci_high - r.ci_low for r in plain])
    width_a = np.mean([r.ci_high - r.ci_low for r in adjusted])
    assert width_a < 0.6 * width_p  # corr^2 = 0.8: width ratio sqrt(0.2) = 0.45


def test_msprt_ratio_is_the_normal_mixture_likelihood_ratio():
    diff, var, tau = 0.3, 0.04, 0.2

    def integrand(theta):
        return stats.norm.pdf(diff, theta, math.sqrt(var)) * stats.norm.pdf(theta, 0, tau)

    mixture = integrate.quad(integrand, -5, 5, points=[0, diff])[0]
    assert sequential.msprt_lambda(diff, var, tau) == pytest.approx(
        mixture / stats.norm.pdf(diff, 0, math.sqrt(var)), rel=1e-7)


def test_looks_are_cumulative_and_the_last_look_is_the_full_test():
    rng = np.random.default_rng(4)
    c, t = rng.normal(size=300), rng.normal(size=300)
    order = rng.permutation(600)
    traj = sequential.looks(c, t, order[:300], order[300:], n_looks=5, tau=0.1)
    assert traj["users"] == [120, 240, 360, 480, 600]
    assert traj["naive_p"][-1] == pytest.approx(stats.ttest_ind(t, c, equal_var=False).pvalue)
    assert all(a >= b for a, b in zip(traj["msprt_p"], traj["msprt_p"][1:], strict=False))  # never rises


@pytest.mark.parametrize("call,setting", [
    (lambda: abstats.check_alpha(1.5), "task.alpha"), (lambda: abstats.check_alpha(0.05, 1.0), "task.power"),
    (lambda: sequential.look_sizes(100, 0), "task.n_looks"),
    (lambda: sequential.looks([1, 2], [1, 2], np.arange(2), np.arange(2, 4), 2, 0.0), "task.msprt_tau")])
def test_bad_settings_are_refused(call, setting):
    with pytest.raises(ConfigError, match=setting):
        call()
