"""Logged impressions of the epsilon-greedy control: logged items are candidates, propensities equal the
observed frequencies, and inverse-propensity weighting of the logs recovers a treatment's true CTR."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recux.errors import ConfigError
from recux.simulation.logged import candidates, log_control
from recux.simulation.sessions import ClickModel

N, N_ITEMS = 400, 40


@pytest.fixture(scope="module")
def world():
    rng = np.random.default_rng(0)
    attract = (0.6 * rng.random((N, N_ITEMS))).astype(np.float32)
    exclude = sp.random(N, N_ITEMS, density=0.25, random_state=1, format="csr")
    cand = candidates(exclude, np.arange(N), N_ITEMS)
    control = np.stack([cand[1][cand[0][r]:cand[0][r] + 10] for r in range(N)])
    treatment = np.stack([rng.permutation(cand[1][cand[0][r]:cand[0][r + 1]])[:10] for r in range(N)])
    return attract, exclude, cand, control, treatment


def test_candidates_are_the_items_not_excluded(world):
    _, exclude, (indptr, items), _, _ = world
    dense = exclude.toarray() != 0
    for r in (0, 7, N - 1):
        assert items[indptr[r]:indptr[r + 1]].tolist() == np.flatnonzero(~dense[r]).tolist()


def test_propensities_match_observed_frequencies(world):
    attract, exclude, cand, control, _ = world
    log = log_control(control, cand, np.arange(N), attract, ClickModel(), 0.4, 300, seed=1)
    n_cand = np.diff(cand[0])
    assert not np.any((exclude.toarray() != 0)[np.arange(N)[:, None, None], log.items])  # only candidates
    shown_control = log.items == control[:, None, :]
    expected = 0.6 + 0.4 / n_cand  # the control's item: exploitation, or drawn when exploring
    assert np.allclose(log.propensity[shown_control], np.broadcast_to(expected[:, None, None],
                                                                      log.items.shape)[shown_control])
    freq = shown_control.mean(axis=(1, 2))
    assert abs(freq.mean() - expected.mean()) < 4 * np.sqrt(0.24 / shown_control.size)
    assert np.allclose(log.propensity[~shown_control],
                       np.broadcast_to((0.4 / n_cand)[:, None, None], log.items.shape)[~shown_control])


def test_ipw_on_the_logs_recovers_the_treatments_true_ctr(world):
    attract, _, cand, control, treatment = world
    model = ClickModel()
    log = log_control(control, cand, np.arange(N), attract, model, 0.5, 400, seed=2)
    weights = (log.items == treatment[:, None, :]) / log.propensity  # IPW, position by position (written here)
    per_user = (log.clicks * weights).mean(axis=(1, 2))
    truth = (np.take_along_axis(attract, treatment, axis=1) * model.exam[None, :]).mean(axis=1).mean()
    assert abs(per_user.mean() - truth) < 4 * per_user.std(ddof=1) / np.sqrt(N)
    same = log_control(control, cand, np.arange(N), attract, model, 0.5, 400, seed=2)
    assert np.array_equal(same.items, log.items) and np.array_equal(same.clicks, log.clicks)


def test_no_exploration_is_refused(world):
    attract, _, cand, control, _ = world
    with pytest.raises(ConfigError, match="epsilon=0"):
        log_control(control, cand, np.arange(N), attract, ClickModel(), 0, 10, seed=0)
