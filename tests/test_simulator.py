"""The user simulator: deterministic by seed and independent of who else is simulated, its click model's
marginal CTR matches the calibration target, and positions, conversions and returns happen at the rates the
model's formulae give (Monte-Carlo checks at 4 standard errors)."""

from __future__ import annotations

import numpy as np
import pytest

from recux.errors import ConfigError
from recux.simulation.kernels import uniforms
from recux.simulation.oracle import Oracle, calibrate_shift
from recux.simulation.sessions import ClickModel, examination, random_slates, simulate


def _oracle(n_users=3000, n_items=200, target=0.05, eta=1.0, het=0.5, seed=0):
    scores = np.random.default_rng(seed).standard_normal((n_users, n_items))
    return Oracle.calibrated(scores, target, examination(10, eta).mean(), heterogeneity=het, seed=seed)


def _fields(out):
    return [out.impressions, out.clicks, out.conversions, out.satisfaction_sum, out.sessions, out.retained]


def test_same_seed_same_outcomes_other_seed_differs():
    oracle = _oracle(n_users=500)
    slates = random_slates(500, 200, 10, 5, seed=1)
    a = simulate(slates, np.arange(500), oracle.attract, ClickModel(), seed=3)
    b = simulate(slates, np.arange(500), oracle.attract, ClickModel(), seed=3)
    c = simulate(slates, np.arange(500), oracle.attract, ClickModel(), seed=4)
    assert all(np.array_equal(x, y) for x, y in zip(_fields(a), _fields(b), strict=True))
    assert not np.array_equal(a.clicks, c.clicks)
    assert np.array_equal(random_slates(50, 200, 10, 2, seed=1), random_slates(50, 200, 10, 2, seed=1))


def test_a_users_outcome_does_not_depend_on_the_other_users():
    oracle = _oracle(n_users=400)
    slates = random_slates(400, 200, 10, 5, seed=1)
    full = simulate(slates, np.arange(400), oracle.attract, ClickModel(), seed=3)
    pick = np.random.default_rng(0).permutation(400)[:150]
    part = simulate(slates[pick], pick, oracle.attract, ClickModel(), seed=3)
    for x, y in zip(_fields(full), _fields(part), strict=True):
        assert np.array_equal(x[pick], y)


def test_uniforms_are_uniform():
    u = uniforms(11, np.arange(100_000, dtype=np.int64), 2, 3, 0)
    assert abs(u.mean() - 0.5) < 4 * np.sqrt(1 / 12 / u.size)
    counts = np.histogram(u, bins=10, range=(0, 1))[0]
    from scipy import stats

    assert stats.chisquare(counts).pvalue > 1e-4


@pytest.mark.parametrize("target,eta,het", [(0.05, 1.0, 0.5), (0.2, 0.5, 0.0), (0.02, 1.0, 1.0)])
def test_random_slates_click_at_the_calibrated_ctr(target, eta, het):
    oracle = _oracle(target=target, eta=eta, het=het)
    model = ClickModel(examination_eta=eta, n_sessions=1)
    # the calibration itself: mean examination x mean attractiveness is the target
    assert examination(10, eta).mean() * oracle.attract.astype(np.float64).mean() == pytest.approx(target, rel=1e-5)
    slates = random_slates(3000, 200, 10, 1, seed=7)
    out = simulate(slates, np.arange(3000), oracle.attract, model, seed=9)
    n = out.impressions.sum()
    ctr = out.clicks.sum() / n
    assert abs(ctr - target) < 4 * np.sqrt(target * (1 - target) / n)


def test_positions_conversions_and_returns_follow_the_formulae():
    n, a = 40_000, 0.4
    attract = np.full((n, 10), a, dtype=np.float32)
    model = ClickModel(examination_eta=1.0, conversion_scale=0.5, n_sessions=3, return_base=0.6, return_gain=0.0)
    slates = np.tile(np.arange(10, dtype=np.int32), (n, 1))
    out = simulate(slates, np.arange(n), attract, model, seed=5)
    # returns: with no gain each session's return is Bernoulli(0.6): retained after 3 sessions w.p. 0.6^3
    p = 0.6**3
    assert abs(out.retained.mean() - p) < 4 * np.sqrt(p * (1 - p) / n)
    expected_sessions = 1 + 0.6 + 0.36
    assert abs(out.sessions.mean() - expected_sessions) < 4 * out.sessions.std() / np.sqrt(n)
    # clicks per impression: mean_k e_k * a (every position shown once per session)
    ctr = out.clicks.sum() / out.impressions.sum()
    target = examination(10, 1.0).mean() * a
    assert abs(ctr - target) < 4 * np.sqrt(target / out.impressions.sum())
    conv_rate = out.conversions.sum() / out.clicks.sum()
    assert abs(conv_rate - 0.5 * a) < 4 * np.sqrt(0.2 * 0.8 / out.clicks.sum())


def test_first_position_is_clicked_at_e1_times_a_per_position():
    n, a = 30_000, 0.3
    attract = np.full((n, 3), a, dtype=np.float32)
    model = ClickModel(slate_size=3, examination_eta=1.0, n_sessions=1)
    for pos in range(3):  # only position `pos` holds an item: its click rate is e_pos * a
        slates = np.full((n, 3), -1, dtype=np.int32)
        slates[:, pos] = pos
        out = simulate(slates, np.arange(n), attract, model, seed=2)
        p = a / (pos + 1)
        assert abs(out.clicks.mean() - p) < 4 * np.sqrt(p * (1 - p) / n)


def test_calibrate_shift_solves_the_mean_equation():
    x = np.random.default_rng(0).normal(0, 2, 10_000)
    shift = calibrate_shift(x, 0.123)
    assert np.mean(1 / (1 + np.exp(-(x - shift)))) == pytest.approx(0.123, abs=1e-8)


@pytest.mark.parametrize("kwargs,setting", [
    ({"slate_size": 0}, "task.slate_size"), ({"examination_eta": -1}, "task.examination_eta"),
    ({"conversion_scale": 1.5}, "task.conversion_scale"), ({"n_sessions": 0}, "task.n_sessions"),
    ({"return_base": 2}, "task.return_base"), ({"return_gain": -1}, "task.return_gain")])
def test_bad_click_model_settings_are_refused(kwargs, setting):
    with pytest.raises(ConfigError, match=setting):
        ClickModel(**kwargs)


def test_unreachable_target_ctr_is_refused():
    scores = np.random.default_rng(0).standard_normal((10, 20))
    with pytest.raises(ConfigError, match="task.target_ctr"):
        Oracle.calibrated(scores, 0.5, examination(10, 1.0).mean())  # mean e_k = 0.29 < 0.5
    with pytest.raises(ConfigError, match="constant"):
        Oracle.calibrated(np.ones((10, 20)), 0.05, 0.29)
