"""Bayesian factorization machine (recux.rating_models.BayesianFM, recux._bfm): one pass of the coordinate Gibbs
draws against a plain-Python computation from the FM formula, the hyper-parameter draws' moments, the fitted
predictor against the kept sweeps' predictions, determinism by seed, recovery of a planted bias + low-rank
problem, the implicit-feedback and side-feature designs against direct constructions, and refusals."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp

from recux import _bfm
from recux import rating_models as rm
from recux.errors import ConfigError
from tests._ratings import random_ratings


def _ratings(seed=0, n_users=12, n_items=9, n=50):
    return random_ratings(seed, n_users, n_items, n)


def _fm_prediction(w0, xu, xi, VU, VI, k):
    """The FM formula on x = (x_U, x_I) with cross-side pairs: w0 + sum_j w_j x_j + sum_{j in U, l in I}
    <v_j, v_l> x_j x_l (column k of V holds w)."""
    out = w0 + xu @ VU[:, k] + xi @ VI[:, k]
    for j in np.flatnonzero(xu):
        for m in np.flatnonzero(xi):
            out += VU[j, :k] @ VI[m, :k] * xu[j] * xi[m]
    return out


def test_one_side_pass_equals_the_conditional_posterior_of_each_parameter_in_turn():
    u, i, r, nu, ni = _ratings()
    rng = np.random.default_rng(1)
    k, alpha, w0 = 2, 1.3, 0.2
    y = r - r.mean()
    XU, gU = rm.side_design(u, i, nu, ni, True, "sqrt")
    XI, _ = rm.side_design(i, u, ni, nu, True, "sqrt")
    VU, VI = rng.normal(0, 0.3, (XU.shape[1], k + 1)), rng.normal(0, 0.3, (XI.shape[1], k + 1))
    mu_h, lam_h = rng.normal(size=(2, k + 1)), rng.uniform(0.5, 2, (2, k + 1))
    z = rng.standard_normal(VU.shape)
    dU, dI = XU.toarray(), XI.toarray()

    def residuals(V):
        return np.array([y[t] - _fm_prediction(w0, dU[u[t]], dI[i[t]], V, VI, k) for t in range(len(y))])

    expect = VU.copy()
    for f in range(k + 1):  # libFM's order: column by column, feature by feature, each given the latest values
        for j in range(len(expect)):
            bumped = expect.copy()
            bumped[j, f] += 1.0
            h = residuals(expect) - residuals(bumped)  # y_hat is linear in the parameter: h = d y_hat / d theta
            e, theta, lam, mu = residuals(expect), expect[j, f], lam_h[gU[j], f], mu_h[gU[j], f]
            prec = lam + alpha * h @ h
            expect[j, f] = (alpha * h @ (e + theta * h) + lam * mu) / prec + z[j, f] / np.sqrt(prec)
    P, Q, V = XU @ VU, XI @ VI, VU.copy()
    e = y - _bfm.predict_all(w0, P, Q, u, i)
    X = XU.tocsc()
    rows = rm._rows(u, i, nu)
    _bfm.update_side(P, V, X.indptr, X.indices, X.data, gU, mu_h, lam_h, Q, rows[0], rows[1], rows[2], e, alpha, z)
    np.testing.assert_allclose(V, expect, atol=1e-9)
    np.testing.assert_allclose(P, XU @ expect, atol=1e-9)  # the side's aggregate follows
    np.testing.assert_allclose(e, residuals(expect), atol=1e-9)  # and so do the residuals


def test_hyper_parameter_draws_have_the_conditional_moments():
    rng = np.random.default_rng(2)
    V = rng.normal(0.5, 0.7, (30, 3))
    group = np.repeat([0, 1], 15)
    mu = np.array([[0.1, -0.2, 0.3], [0.0, 0.4, -0.1]])
    draws = [_bfm.draw_hyper(V, group, 2, mu, rng) for _ in range(4000)]
    lam = np.mean([d[1] for d in draws], axis=0)
    new_mu = np.mean([d[0] for d in draws], axis=0)
    for g in range(2):
        Vg = V[group == g]
        n = len(Vg)
        rate = (_bfm.BETA0 + _bfm.GAMMA0 * mu[g] ** 2 + ((Vg - mu[g]) ** 2).sum(axis=0)) / 2
        np.testing.assert_allclose(lam[g], (_bfm.ALPHA0 + n + 1) / 2 / rate, rtol=0.03)
        np.testing.assert_allclose(new_mu[g], Vg.sum(axis=0) / (n + _bfm.GAMMA0), atol=0.02)


def test_prediction_is_the_average_of_the_kept_sweeps_predictions_and_deterministic_by_seed():
    u, i, r, nu, ni = _ratings(4, 20, 15, 120)
    model = rm.BayesianFM(factors=3, samples=12, burn=5, seed=7).fit(u, i, r, nu, ni, keep_draws=True)
    assert len(model.draws) == 7
    users, items = np.repeat(np.arange(nu), ni), np.tile(np.arange(ni), nu)
    per_sweep = [r.mean() + _bfm.predict_all(w0, P, Q, users, items) for w0, P, Q in model.draws]
    pred = model.predict(users, items)
    np.testing.assert_allclose(pred, np.mean(per_sweep, axis=0), atol=1e-9)
    assert not np.allclose(per_sweep[0], per_sweep[-1])  # the chain moves
    again = rm.BayesianFM(factors=3, samples=12, burn=5, seed=7).fit(u, i, r, nu, ni).predict(users, items)
    other = rm.BayesianFM(factors=3, samples=12, burn=5, seed=8).fit(u, i, r, nu, ni).predict(users, items)
    np.testing.assert_array_equal(again, pred)
    assert not np.allclose(other, pred)


def test_bayesian_fm_recovers_a_planted_bias_and_low_rank_problem_better_than_the_prior():
    rng = np.random.default_rng(5)
    nu, ni, k = 60, 40, 2
    truth = (3 + rng.normal(0, 0.5, (nu, 1)) + rng.normal(0, 0.5, (1, ni))
             + rng.normal(size=(nu, k)) @ rng.normal(size=(k, ni)))
    mask = rng.random((nu, ni)) < 0.5
    u, i = np.nonzero(mask)
    r = truth[u, i] + rng.normal(0, 0.1, len(u))
    tu, ti = np.nonzero(~mask)
    target = truth[tu, ti]
    for implicit in (False, True):
        model = rm.BayesianFM(factors=2, samples=80, burn=30, implicit=implicit).fit(u, i, r, nu, ni)
        err = np.sqrt(np.mean((model.predict(tu, ti) - target) ** 2))
        prior = np.sqrt(np.mean((r.mean() - target) ** 2))  # the prior mean of every parameter is 0: mu alone
        assert err < 0.25 * prior


def test_implicit_design_holds_only_the_ratings_given_to_fit():
    u, i, r, nu, ni = _ratings(6)
    for norm, power in (("sqrt", 0.5), ("sum", 1.0)):
        X, groups = rm.side_design(u, i, nu, ni, True, norm)
        dense = X.toarray()
        np.testing.assert_array_equal(dense[:, :nu], np.eye(nu))
        for user in range(nu):
            rated = set(i[u == user].tolist())
            expect = np.array([1.0 / len(rated) ** power if j in rated else 0.0 for j in range(ni)])
            np.testing.assert_allclose(dense[user, nu:], expect)
        np.testing.assert_array_equal(groups, [0] * nu + [1] * ni)
    extra = sp.csr_matrix(np.arange(nu * 2, dtype=float).reshape(nu, 2))
    X, groups = rm.side_design(u, i, nu, ni, False, "sqrt", extra)
    np.testing.assert_array_equal(X.toarray(), np.hstack([np.eye(nu), extra.toarray()]))
    np.testing.assert_array_equal(groups, [0] * nu + [1, 1])


def test_side_features_one_hot_multi_hot_and_binned():
    frame = pl.DataFrame({"user_id": [10, 11, 12, 13], "gender": ["M", "F", "M", None],
                          "tags": [["a", "b"], ["b"], [], None], "age": [20, 30, 40, 50],
                          "zip": ["1", "2", "3", "4"]})
    X = rm.side_features(frame, "user_id", bins=2, max_levels=3).toarray()
    gender = [[0, 0, 1], [0, 1, 0], [0, 0, 1], [1, 0, 0]]  # levels "", F, M (a missing value is a level)
    tags = [[2 ** -0.5, 2 ** -0.5], [0, 1], [0, 0], [0, 0]]
    age = [[1, 0], [1, 0], [0, 1], [0, 1]]  # median 35: two bins
    np.testing.assert_allclose(X, np.hstack([gender, tags, age]))  # zip: 4 levels > max_levels, left out


def test_bad_settings_are_refused():
    u, i, r, nu, ni = _ratings()
    with pytest.raises(ConfigError, match="burn < samples"):
        rm.BayesianFM(samples=10, burn=10).fit(u, i, r, nu, ni)
    with pytest.raises(ConfigError, match="norm="):
        rm.BayesianFM(norm="l2").fit(u, i, r, nu, ni)
    with pytest.raises(ConfigError, match="side features have 3 rows"):
        rm.BayesianFM(user_side=np.ones((3, 2))).fit(u, i, r, nu, ni)


def test_validation_mode_scores_the_inner_split_of_the_training_ratings_only():
    from scipy import stats

    from recux import judge_validation as jv
    from recux.data import Dataset
    from recux.rating_eval import random_rating_split

    rng = np.random.default_rng(3)
    u = np.repeat(np.arange(60), 12)
    i = np.concatenate([rng.choice(40, 12, replace=False) for _ in range(60)])
    frame = pl.DataFrame({"user_id": u, "item_id": i, "rating": rng.integers(1, 6, len(u)).astype(float)})
    data = Dataset.from_frame("t", frame)
    result, _ = jv.run(data, jv.Settings(seed=4, bootstrap=10, judge=False, validation=True))
    outer_train, outer_test = random_rating_split(data.interactions, 0.2, 4)
    fit, val = random_rating_split(outer_train, 0.1, 5)
    assert (result["n_train"], result["n_test"]) == (len(fit), len(val))
    held_out = set(zip(outer_test.user.tolist(), outer_test.item.tolist(), strict=True))
    assert not held_out & set(zip(val.user.tolist(), val.item.tolist(), strict=True))
    mean = np.bincount(fit.item, fit.rating, 40) / np.maximum(np.bincount(fit.item, minlength=40), 1)
    mean[np.bincount(fit.item, minlength=40) == 0] = fit.rating.mean()
    rows = {r["model"]: r for r in result["rows"]}
    assert rows["item_mean"]["spearman"] == pytest.approx(stats.spearmanr(mean[val.item], val.rating).statistic)
    assert "bayesian_fm" in rows and result["selected"]["bayesian_fm"]["side"] is False  # no features: no side
