"""Bayesian MF (recux.rating_models.BayesianMF, recux._bpmf): the Gibbs conditionals against dense textbook
formulas, the Gaussian draw's covariance, the Gaussian-Wishart posterior against a loop, and the fitted
predictor against the average of the kept sweeps' predictions."""

from __future__ import annotations

import numpy as np
import pytest

from recux import _bpmf
from recux import rating_models as rm
from recux.errors import ConfigError
from tests._ratings import random_ratings


def _ratings(seed=0, n_users=25, n_items=15, n=200):
    return random_ratings(seed, n_users, n_items, n)


def test_conditional_is_the_dense_gaussian_posterior_of_each_row():
    u, i, r, nu, ni = _ratings()
    rng = np.random.default_rng(1)
    k, alpha = 3, 1.7
    Q, bi = rng.normal(size=(ni, k)), rng.normal(size=ni)
    mu, A = rng.normal(size=k + 1), rng.normal(size=(k + 1, k + 1))
    lam = A @ A.T + np.eye(k + 1)
    resid = r - r.mean()
    mean, prec = _bpmf.conditional(rm._rows(u, i, nu), Q, bi, resid, alpha, mu, lam)
    for user in range(nu):
        rows = np.flatnonzero(u == user)
        Z = np.hstack([Q[i[rows]], np.ones((len(rows), 1))])
        expect_prec = lam + alpha * sum((np.outer(z, z) for z in Z), np.zeros((k + 1, k + 1)))
        expect_mean = np.linalg.inv(expect_prec) @ (lam @ mu + alpha * Z.T @ (resid[rows] - bi[i[rows]]))
        np.testing.assert_allclose(prec[user], expect_prec, atol=1e-10)
        np.testing.assert_allclose(mean[user], expect_mean, atol=1e-10)


def test_gaussian_draw_has_the_inverse_precision_as_covariance():
    rng = np.random.default_rng(2)
    A = rng.normal(size=(3, 3))
    prec = A @ A.T + 0.5 * np.eye(3)
    n = 200_000
    x = _bpmf.draw_gaussian(np.zeros((n, 3)), np.broadcast_to(prec, (n, 3, 3)), rng.standard_normal((n, 3)))
    np.testing.assert_allclose(np.cov(x, rowvar=False), np.linalg.inv(prec), atol=0.02 * np.abs(
        np.linalg.inv(prec)).max())


def test_gaussian_wishart_posterior_matches_the_textbook_update():
    X = np.random.default_rng(3).normal(2.0, 1.5, size=(40, 3))
    mu_star, beta_star, nu_star, W = _bpmf.nw_posterior(X, beta0=2.0)
    n, xbar = len(X), X.mean(axis=0)
    S = sum((np.outer(x - xbar, x - xbar) for x in X), np.zeros((3, 3)))
    w_inv = np.eye(3) + S + 2.0 * n / (2.0 + n) * np.outer(xbar, xbar)
    np.testing.assert_allclose(mu_star, (2.0 * 0 + n * xbar) / (2.0 + n))
    assert (beta_star, nu_star) == (2.0 + n, 3 + n)
    np.testing.assert_allclose(W, np.linalg.inv(w_inv), atol=1e-12)


@pytest.mark.parametrize("alpha", [None, 1.5])
def test_prediction_is_the_average_of_the_kept_sweeps_predictions(alpha):
    u, i, r, nu, ni = _ratings(4)
    model = rm.BayesianMF(factors=3, samples=12, burn=5, alpha=alpha, seed=7).fit(u, i, r, nu, ni, keep_draws=True)
    assert len(model.draws) == 7
    users, items = np.repeat(np.arange(nu), ni), np.tile(np.arange(ni), nu)
    per_sweep = [r.mean() + bu[users] + bi[items] + np.einsum("nk,nk->n", P[users], Q[items])
                 for P, Q, bu, bi in model.draws]
    np.testing.assert_allclose(model.predict(users, items), np.mean(per_sweep, axis=0), atol=1e-10)
    assert not np.allclose(model.draws[0][0], model.draws[-1][0])  # the chain moves


def test_bayesian_mf_recovers_a_low_rank_matrix_better_than_the_mean():
    rng = np.random.default_rng(5)
    nu, ni, k = 60, 40, 2
    truth = 3 + rng.normal(size=(nu, k)) @ rng.normal(size=(k, ni))
    mask = rng.random((nu, ni)) < 0.5
    u, i = np.nonzero(mask)
    r = truth[u, i] + rng.normal(0, 0.1, len(u))
    tu, ti = np.nonzero(~mask)
    model = rm.BayesianMF(factors=2, samples=60, burn=20).fit(u, i, r, nu, ni)
    err = np.sqrt(np.mean((model.predict(tu, ti) - truth[tu, ti]) ** 2))
    assert err < 0.25 * np.std(truth[tu, ti])


def test_bad_settings_are_refused():
    u, i, r, nu, ni = _ratings()
    with pytest.raises(ConfigError, match="burn < samples"):
        rm.BayesianMF(samples=10, burn=10).fit(u, i, r, nu, ni)
    with pytest.raises(ConfigError, match="alpha > 0"):
        rm.BayesianMF(alpha=0.0).fit(u, i, r, nu, ni)
