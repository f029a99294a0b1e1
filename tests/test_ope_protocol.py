"""OBP's bootstrap protocol: each run is the plain resample -> reward model -> estimators, in run order, and the
result does not depend on how many threads run the runs."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from recux.bandit import BanditFeedback
from recux.errors import ConfigError
from recux.ope.evaluate import evaluate, make_estimators, ope_inputs
from recux.ope.protocol import bootstrap_runs
from recux.ope.reward_model import LogisticRewardModel


def _data(n=900, n_actions=5, len_list=2, seed=3) -> BanditFeedback:
    rng = np.random.default_rng(seed)
    context = rng.integers(0, 2, (n, 4)).astype(float)
    action = rng.integers(0, n_actions, n)
    position = rng.integers(0, len_list, n)
    logit = -1.5 + context @ np.array([0.6, -0.4, 0.2, 0.1]) + 0.3 * action - 0.5 * position
    reward = rng.binomial(1, 1 / (1 + np.exp(-logit))).astype(float)
    return BanditFeedback(context, action, position, reward, np.full(n, 1 / n_actions),
                          action_context=rng.normal(size=(n_actions, 2)), n_actions=n_actions, len_list=len_list)


def _estimators():
    return make_estimators(["dm", "ipw", "dr", "switch-dr"], [10.0, 100.0, np.inf])


def test_runs_equal_a_plain_loop_and_do_not_depend_on_workers():
    data, truth = _data(), 0.3
    dist = np.random.default_rng(0).dirichlet(np.ones(5), size=2).T  # (n_actions, len_list), columns sum to 1
    model = LogisticRewardModel(C=10.0)
    one = bootstrap_runs(data, dist, truth, 6, model, _estimators, workers=1)
    two = bootstrap_runs(data, dist, truth, 6, model, _estimators, workers=3)
    assert one.errors == two.errors and one.estimates == two.estimates and one.lambdas == two.lambdas
    for b in range(6):  # run b: OBP's resample with RandomState(b), a fresh fit, the estimators
        boot = data.take(np.random.RandomState(b).choice(np.arange(data.n_rounds), size=data.n_rounds))
        rows = evaluate(_estimators(), ope_inputs(boot, dist, model.fit_predict(boot)), truth)
        for name, row in rows.items():
            assert one.estimates[name][b] == row["estimate"]
            assert one.errors[name][b] == abs(row["estimate"] - truth) / truth


def test_runs_fitted_while_the_action_distribution_is_computed_equal_the_plain_runs():
    """A pending Future: a background thread fits runs ahead (kept as fold factors) until it is done."""
    data, truth = _data(), 0.3
    dist = np.random.default_rng(1).dirichlet(np.ones(5), size=2).T
    model = LogisticRewardModel(C=10.0)
    want = bootstrap_runs(data, dist, truth, 8, model, _estimators)

    def slow_dist() -> np.ndarray:
        time.sleep(0.3)
        return dist

    with ThreadPoolExecutor(1) as pool:
        got = bootstrap_runs(data, pool.submit(slow_dist), truth, 8, model, _estimators, workers=2)
    assert got.errors == want.errors and got.estimates == want.estimates


def test_a_failing_fit_is_raised():
    class Failing(LogisticRewardModel):
        def predict_folds(self, data):
            raise RuntimeError("planted failure")

    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(time.sleep, 0.2)
        with pytest.raises(RuntimeError, match="planted"):
            bootstrap_runs(_data(n=200), future, 0.3, 3, Failing(), _estimators, workers=2)


def test_bad_settings_are_refused():
    data = _data(n=50)
    with pytest.raises(ConfigError, match="workers"):
        bootstrap_runs(data, np.full((5, 2), 0.2), 0.3, 2, None, _estimators, workers=0)
    with pytest.raises(ConfigError, match="n_runs"):
        bootstrap_runs(data, np.full((5, 2), 0.2), 0.3, 0, None, _estimators)
