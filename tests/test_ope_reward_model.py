"""Reward models: the per-position logistic regression against scikit-learn's predict_proba on each fold, and
the CTR table against counts."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import KFold

from recux.bandit import BanditFeedback
from recux.ope.reward_model import CTRRewardModel, LogisticRewardModel


def _data(n=600, n_actions=4, len_list=2, seed=0) -> BanditFeedback:
    rng = np.random.default_rng(seed)
    context = rng.integers(0, 2, (n, 3)).astype(float)
    action = rng.integers(0, n_actions, n)
    position = rng.integers(0, len_list, n)
    logit = -1.0 + context @ np.array([0.8, -0.5, 0.3]) + 0.4 * action - 0.6 * position
    reward = rng.binomial(1, 1 / (1 + np.exp(-logit))).astype(float)
    return BanditFeedback(context, action, position, reward, np.full(n, 1 / n_actions),
                          action_context=rng.normal(size=(n_actions, 2)), n_actions=n_actions, len_list=len_list)


def test_logistic_model_equals_sklearn_predict_proba_per_fold():
    data = _data()
    model = LogisticRewardModel(C=10.0, n_folds=3, fold_seed=7)
    q_hat = model.fit_predict(data)
    want = np.zeros_like(q_hat)
    for train, test in KFold(3, shuffle=True, random_state=7).split(data.context):
        for k in range(data.len_list):
            rows = train[data.position[train] == k]
            ref = LogisticRegression(C=10.0, solver="newton-cholesky", tol=1e-10, max_iter=10_000)
            ref.fit(np.c_[data.context[rows], data.action_context[data.action[rows]]], data.reward[rows])
            for a in range(data.n_actions):
                x = np.c_[data.context[test], np.tile(data.action_context[a], (len(test), 1))]
                want[test, a, k] = ref.predict_proba(x)[:, 1]
    np.testing.assert_allclose(q_hat, want, rtol=1e-9, atol=1e-12)


def test_converged_solvers_agree():
    data = _data(seed=1)
    a = LogisticRewardModel(solver="newton-cholesky").fit_predict(data)
    b = LogisticRewardModel(solver="lbfgs", tol=1e-12).fit_predict(data)
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_ctr_table_matches_counts():
    data = _data(n=300)
    q_hat = CTRRewardModel(smoothing=2.0, n_folds=1).fit_predict(data)
    for a in range(data.n_actions):
        for k in range(data.len_list):
            at = (data.action == a) & (data.position == k)
            pos_rate = data.reward[data.position == k].mean()
            want = (data.reward[at].sum() + 2.0 * pos_rate) / (at.sum() + 2.0)
            assert q_hat[0, a, k] == pytest.approx(want)
            assert np.all(q_hat[:, a, k] == q_hat[0, a, k])  # context-free


def test_cross_fitting_never_predicts_a_round_from_itself():
    """With one fold per round group, a round's prediction must not see its own reward: flip one reward and
    only other folds' predictions may move."""
    data = _data(n=90, n_actions=2, len_list=1)
    base = CTRRewardModel(smoothing=0.0, n_folds=3, fold_seed=0).fit_predict(data)
    flipped_reward = data.reward.copy()
    flipped_reward[0] = 1 - flipped_reward[0]
    flipped = BanditFeedback(data.context, data.action, data.position, flipped_reward, data.pscore,
                             data.action_context, data.n_actions, data.len_list)
    moved = CTRRewardModel(smoothing=0.0, n_folds=3, fold_seed=0).fit_predict(flipped)
    np.testing.assert_array_equal(moved[0], base[0])
    assert not np.array_equal(moved, base)


@pytest.mark.parametrize(("n", "k", "seed"), [(10, 3, 0), (601, 3, 12345), (97, 5, None)])
def test_cross_fit_folds_equal_sklearn_kfold(n, k, seed):
    from recux.ope.reward_model import cross_fit_folds

    ours = cross_fit_folds(n, k, seed)
    if seed is None:  # unseeded: only the partition can be checked
        assert sorted(np.concatenate([t for _, t in ours]).tolist()) == list(range(n))
        return
    theirs = list(KFold(k, shuffle=True, random_state=seed).split(np.zeros((n, 1))))
    assert len(ours) == len(theirs)
    for (tr, te), (tr2, te2) in zip(ours, theirs, strict=True):
        np.testing.assert_array_equal(tr, tr2)
        np.testing.assert_array_equal(te, te2)


def test_logistic_fill_handles_logits_whose_factors_overflow():
    from recux.ope.reward_model import _fill_logistic

    s = np.array([[-800.0], [3.0], [0.0]])  # exp(800) overflows; exp(-800) underflows: inf * 0 is not finite
    t = np.array([[800.0], [-1.0]])
    q_hat = np.full((3, 2, 1), np.nan)
    _fill_logistic(q_hat, np.arange(3), s, t)
    want = 1.0 / (1.0 + np.exp(-(s[:, None, :] + t[None, :, :])))
    np.testing.assert_allclose(q_hat, want, rtol=1e-15)
    assert q_hat[0, 0, 0] == 0.5
