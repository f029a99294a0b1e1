"""Rating baselines and the judge validation statistics against straightforward implementations and scipy."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from recux import rating_models as rm
from recux.data import Interactions
from recux.errors import ConfigError
from recux.rating_eval import midranks, paired_bootstrap_spearman, random_rating_split, rmse, spearman
from tests._ratings import random_ratings


def _ratings(seed=0, n_users=30, n_items=20, n=300):
    return random_ratings(seed, n_users, n_items, n)


def test_popularity_item_mean_user_item_means_match_loops():
    u, i, r, nu, ni = _ratings()
    mu = r.mean()
    pop = rm.Popularity().fit(u, i, r, nu, ni)
    im = rm.ItemMean().fit(u, i, r, nu, ni)
    uim = rm.UserItemMeans().fit(u, i, r, nu, ni)
    for user in range(nu):
        for item in range(ni):
            ri, ru = r[i == item], r[u == user]
            assert pop.predict([user], [item])[0] == len(ri)
            expect_i = ri.mean() if len(ri) else mu
            assert im.predict([user], [item])[0] == pytest.approx(expect_i)
            expect = mu + (ru.mean() - mu if len(ru) else 0) + (ri.mean() - mu if len(ri) else 0)
            assert uim.predict([user], [item])[0] == pytest.approx(expect)


def test_biases_converge_to_the_ridge_least_squares_solution():
    u, i, r, nu, ni = _ratings(1)
    lam_u, lam_i = 3.0, 7.0
    model = rm.Biases(lam_u=lam_u, lam_i=lam_i, iters=500).fit(u, i, r, nu, ni)
    X = np.zeros((len(r), nu + ni))
    X[np.arange(len(r)), u] = 1
    X[np.arange(len(r)), nu + i] = 1
    reg = np.diag([lam_u] * nu + [lam_i] * ni)
    b = np.linalg.solve(X.T @ X + reg, X.T @ (r - r.mean()))
    np.testing.assert_allclose(model.bu, b[:nu], atol=1e-8)
    np.testing.assert_allclose(model.bi, b[nu:], atol=1e-8)
    np.testing.assert_allclose(model.predict(u, i), r.mean() + X @ b, atol=1e-8)


def test_als_side_step_is_each_rows_ridge_solution():
    u, i, r, nu, ni = _ratings(2)
    rng = np.random.default_rng(3)
    Q, bi = rng.normal(size=(ni, 4)), rng.normal(size=ni)
    resid = r - r.mean()
    P, bu = rm._solve_side(rm._rows(u, i, nu), Q, bi, resid, reg=0.3)
    for user in range(nu):
        rows = np.flatnonzero(u == user)
        if len(rows) == 0:
            assert not P[user].any() and bu[user] == 0
            continue
        X = np.hstack([Q[i[rows]], np.ones((len(rows), 1))])
        y = resid[rows] - bi[i[rows]]
        lam = 0.3 * len(rows)
        # ridge as least squares on rows augmented with sqrt(lam) I
        Xa = np.vstack([X, np.sqrt(lam) * np.eye(5)])
        ya = np.concatenate([y, np.zeros(5)])
        sol = np.linalg.lstsq(Xa, ya, rcond=None)[0]
        np.testing.assert_allclose(P[user], sol[:4], atol=1e-8)
        assert bu[user] == pytest.approx(sol[4], abs=1e-8)


def test_biased_mf_predicts_its_formula_and_fits_low_rank_data():
    rng = np.random.default_rng(4)
    nu, ni, k = 60, 40, 3
    truth = 3 + rng.normal(0, .5, (nu, 1)) + rng.normal(0, .5, (1, ni)) + rng.normal(size=(nu, k)) @ \
        rng.normal(size=(k, ni)) * .5
    cells = rng.permutation(nu * ni)
    tr, te = cells[:1800], cells[1800:]
    model = rm.BiasedMF(factors=3, reg=0.01, iters=50).fit(tr // ni, tr % ni, truth.ravel()[tr], nu, ni)
    u, i = te // ni, te % ni
    manual = model.mu + model.bu[u] + model.bi[i] + (model.P[u] * model.Q[i]).sum(1)
    np.testing.assert_allclose(model.predict(u, i), manual)
    base = rm.Biases().fit(tr // ni, tr % ni, truth.ravel()[tr], nu, ni)
    assert rmse(model.predict(u, i), truth.ravel()[te]) < 0.5 * rmse(base.predict(u, i), truth.ravel()[te])


def test_bad_settings_are_refused():
    with pytest.raises(ConfigError, match="unknown rating model"):
        rm.build("svd")
    u, i, r, nu, ni = _ratings()
    with pytest.raises(ConfigError, match="reg > 0"):
        rm.BiasedMF(reg=0).fit(u, i, r, nu, ni)
    with pytest.raises(ConfigError, match="out of range"):
        rm.ItemMean().fit(u, i, r, nu, 3)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_spearman_and_midranks_match_scipy(seed):
    rng = np.random.default_rng(seed)
    truth = rng.integers(1, 6, 500).astype(float)  # heavy ties
    pred = np.round(truth + rng.normal(0, 2, 500), 1)
    np.testing.assert_allclose(midranks(pred), stats.rankdata(pred))
    assert spearman(pred, truth) == pytest.approx(stats.spearmanr(pred, truth).statistic, abs=1e-12)
    assert np.isnan(spearman(np.ones(5), np.arange(5.0)))


def test_paired_bootstrap_matches_a_plain_loop():
    rng = np.random.default_rng(5)
    users = rng.integers(0, 25, 400)
    truth = rng.integers(1, 6, 400).astype(float)
    a, b = truth + rng.normal(0, 1, 400), truth + rng.normal(0, 2, 400)
    got = paired_bootstrap_spearman(a, b, truth, users, n_resamples=200, seed=9)
    uniq = np.unique(users)
    draw = np.random.default_rng(9)
    diffs = []
    for _ in range(200):
        idx = np.concatenate([np.flatnonzero(users == uniq[p]) for p in draw.integers(0, len(uniq), len(uniq))])
        diffs.append(stats.spearmanr(a[idx], truth[idx]).statistic - stats.spearmanr(b[idx], truth[idx]).statistic)
    lo, hi = np.quantile(diffs, [0.025, 0.975])
    assert got.ci_low == pytest.approx(lo, abs=1e-10) and got.ci_high == pytest.approx(hi, abs=1e-10)
    assert got.p_not_better == pytest.approx(np.mean(np.array(diffs) <= 0))
    assert got.diff == pytest.approx(stats.spearmanr(a, truth).statistic - stats.spearmanr(b, truth).statistic)
    assert got.ci_low > 0  # a is much closer to the truth than b


def test_random_rating_split_partitions_by_seed():
    u, i, r, nu, ni = _ratings()
    inter = Interactions(u, i, nu, ni, rating=r)
    tr, te = random_rating_split(inter, 0.2, seed=3)
    assert len(te) == 60 and len(tr) == 240
    key = lambda x: set(zip(x.user.tolist(), x.item.tolist(), strict=True))  # noqa: E731
    assert not key(tr) & key(te) and key(tr) | key(te) == key(inter)
    tr2, te2 = random_rating_split(inter, 0.2, seed=3)
    assert key(te2) == key(te)
    assert key(random_rating_split(inter, 0.2, seed=4)[1]) != key(te)
    with pytest.raises(ConfigError, match="explicit ratings"):
        random_rating_split(Interactions(u, i, nu, ni), 0.2)


def test_text_profile_matches_a_loop():
    u, i, r, nu, ni = _ratings(6)
    feats = np.random.default_rng(7).normal(size=(ni, 5))
    model = rm.TextProfile(feats).fit(u, i, r, nu, ni)
    for user in range(nu):
        rows = np.flatnonzero(u == user)
        prof = sum((r[j] - r[rows].mean()) * feats[i[j]] for j in rows) if len(rows) else np.zeros(5)
        for item in range(ni):
            den = np.linalg.norm(prof) * np.linalg.norm(feats[item])
            expect = prof @ feats[item] / den if den > 1e-9 else 0.0
            assert model.predict([user], [item])[0] == pytest.approx(expect, abs=1e-9)
