"""Hyper-parameter tuning (SLOPE, MSE) and the bootstrap interval, each against a direct transcription."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from recux.errors import ConfigError
from recux.ope.estimators import DRos, OPEInputs, SwitchDR
from recux.ope.interval import bootstrap_ci
from recux.ope.tuning import Tuned, mse, slope

LAMBDAS = [10, 50, 100, 500, 1000, 5000, 10000, np.inf]


def _case(seed: int, n: int = 400) -> OPEInputs:
    rng = np.random.default_rng(seed)
    n_actions, len_list = 6, 2
    pi = rng.dirichlet(np.full(n_actions, 0.3), size=(n, len_list)).transpose(0, 2, 1)
    return OPEInputs(
        reward=rng.binomial(1, 0.2, n).astype(float),
        action=rng.integers(0, n_actions, n),
        position=rng.integers(0, len_list, n),
        pscore=rng.uniform(0.002, 0.2, n),  # small propensities: large weights, so lambda matters
        action_dist=pi,
        q_hat=rng.uniform(0, 0.4, (n, n_actions, len_list)),
    )


def _slope_reference(est_cls, lambdas, inp, delta):
    """Su et al. (2020) as OBP implements it: visit candidates by decreasing confidence width; stop at the first
    whose interval [theta - cnf, ...] is inconsistent with one visited before; return the one visited before it."""
    lams = sorted(lambdas, reverse=True)
    n = len(inp.reward)
    t = stats.t(n - 1).ppf(1 - delta)
    cands = []
    for lam in lams:
        rr = est_cls(lambda_=lam).round_rewards(inp)
        cands.append((lam, rr.mean(), t * np.sqrt(rr.var() / (n - 1))))
    order = list(np.argsort([c[2] for c in cands])[::-1])
    chosen = cands[order[0]][0]
    for pos in range(1, len(order)):
        lam_i, th_i, c_i = cands[order[pos]]
        ok = all(abs(cands[j][1] - th_i) <= c_i + (np.sqrt(6) - 1) * cands[j][2] for j in order[:pos])
        if not ok:
            return chosen
        chosen = lam_i
    return chosen


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("est_cls", [SwitchDR, DRos])
def test_slope_matches_a_direct_transcription(seed, est_cls):
    inp = _case(seed)
    got = slope(lambda lam: est_cls(lambda_=lam), LAMBDAS, inp, delta=0.1)
    assert got == _slope_reference(est_cls, LAMBDAS, inp, 0.1)


def test_slope_picks_different_lambdas_across_cases():
    """Guard against a degenerate tuner: over a few data sets, more than one lambda is chosen."""
    chosen = {slope(lambda lam: DRos(lambda_=lam), LAMBDAS, _case(s), 0.1) for s in range(12)}
    assert len(chosen) > 1


@pytest.mark.parametrize("use_bound", [True, False])
def test_mse_tuning_matches_a_direct_formula(use_bound):
    inp = _case(3)
    n = len(inp.reward)
    delta = 0.1
    w = inp.action_dist[np.arange(n), inp.action, inp.position] / inp.pscore
    q_f = inp.q_hat[np.arange(n), inp.action, inp.position]
    scores = {}
    for lam in sorted(LAMBDAS, reverse=True):
        w_hat = w * (w <= lam)  # Switch-DR
        bias = abs(np.mean((w - w_hat) * (inp.reward - q_f)))
        if use_bound:
            bias += np.sqrt(2 * np.mean(w**2) * np.log(2 / delta) / n) + 2 * w.max() * np.log(2 / delta) / (3 * n)
        scores[lam] = np.var(SwitchDR(lambda_=lam).round_rewards(inp)) / n + bias**2
    want = min(scores.items(), key=lambda kv: kv[1])[0]
    assert mse(lambda lam: SwitchDR(lambda_=lam), LAMBDAS, inp, delta, use_bound) == want


def test_tuned_estimator_uses_its_tuned_lambda():
    inp = _case(1)
    tuned = Tuned(DRos, LAMBDAS)
    value = tuned.estimate(inp)
    assert value == pytest.approx(DRos(lambda_=tuned.last_lambda).estimate(inp))
    with pytest.raises(ConfigError, match="tuning method"):
        Tuned(DRos, LAMBDAS, method="cv")
    with pytest.raises(ConfigError, match="lambdas"):
        Tuned(DRos, [])


def test_bootstrap_ci_equals_obps_resampling_loop():
    x = np.random.default_rng(0).exponential(size=300)
    rng = np.random.RandomState(11)
    means = [np.mean(rng.choice(x, size=x.shape[0])) for _ in range(500)]  # obp.utils' loop
    got = bootstrap_ci(x, alpha=0.1, n_bootstrap_samples=500, random_state=11)
    assert got["mean"] == pytest.approx(np.mean(means), rel=1e-12)
    assert got["lower"] == pytest.approx(np.percentile(means, 5), rel=1e-12)
    assert got["upper"] == pytest.approx(np.percentile(means, 95), rel=1e-12)
    with pytest.raises(ConfigError, match="alpha"):
        bootstrap_ci(x, alpha=1.5)
