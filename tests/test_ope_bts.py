"""Bernoulli-TS action distribution: shape and normalisation, OBP's loop, and an independent simulation."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from recux.errors import ConfigError
from recux.ope.bts import bts_action_dist

ALPHA = np.array([3.0, 1.5, 8.0, 2.0])
BETA = np.array([7.0, 2.0, 10.0, 30.0])


def test_shape_and_normalisation():
    dist = bts_action_dist(ALPHA, BETA, len_list=2, n_sim=5000, random_state=0)
    assert dist.shape == (4, 2)
    np.testing.assert_allclose(dist.sum(axis=0), 1.0)  # one item per position per simulation
    assert np.all(dist.sum(axis=1) <= 1.0 + 1e-12)  # an item takes at most one position per simulation


def test_equals_obps_loop_on_the_same_seed():
    """obp.policy.BernoulliTS.compute_batch_action_dist: one beta draw per simulation, argsort()[::-1][:len_list]."""
    n_sim, len_list = 3000, 3
    rng = np.random.RandomState(12345)
    counts = np.zeros((4, len_list))
    for _ in range(n_sim):
        chosen = rng.beta(ALPHA, BETA).argsort()[::-1][:len_list]
        for k in range(len_list):
            counts[chosen[k], k] += 1
    np.testing.assert_array_equal(bts_action_dist(ALPHA, BETA, len_list, n_sim=n_sim, random_state=12345),
                                  counts / n_sim)


def test_agrees_with_an_independent_simulation_within_monte_carlo_error():
    n_sim = 200_000
    draws = stats.beta(ALPHA, BETA).rvs(size=(n_sim, 4), random_state=np.random.default_rng(99))
    ranks = np.argsort(-draws, axis=1)
    ref = np.stack([np.bincount(ranks[:, k], minlength=4) for k in range(2)], axis=1) / n_sim
    got = bts_action_dist(ALPHA, BETA, len_list=2, n_sim=n_sim, random_state=3)
    se = np.sqrt(ref * (1 - ref) / n_sim * 2)  # two independent estimates
    assert np.all(np.abs(got - ref) <= 5 * se + 1e-12)
    assert got[2, 0] > got[3, 0]  # the item with the highest prior mean leads more often than the lowest


def test_bad_settings_are_refused():
    with pytest.raises(ConfigError, match="len_list"):
        bts_action_dist(ALPHA, BETA, len_list=5, n_sim=10)
    with pytest.raises(ConfigError, match="alpha and beta"):
        bts_action_dist(ALPHA, BETA[:3], len_list=2, n_sim=10)
