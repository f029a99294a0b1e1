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


def test_numpy_fallback_for_shapes_at_most_one_equals_obps_loop():
    alpha, beta = np.array([0.5, 1.0, 3.0]), np.array([0.8, 2.0, 4.0])  # not all > 1: numpy draws the rows
    rng = np.random.RandomState(7)
    counts = np.zeros((3, 2))
    for _ in range(2000):
        chosen = rng.beta(alpha, beta).argsort()[::-1][:2]
        for k in range(2):
            counts[chosen[k], k] += 1
    np.testing.assert_array_equal(bts_action_dist(alpha, beta, 2, n_sim=2000, random_state=7), counts / 2000)


def test_legacy_rng_port_equals_numpy_beta_across_buffer_refills():
    from recux.ope import legacy_rng

    alpha, beta = np.array([2.0, 47.0, 1.5]), np.array([3000.0, 2.5, 1.01])
    want = np.random.RandomState(5).beta(alpha, beta, size=(700, 3))
    key, ints, cached = legacy_rng.state_of(np.random.RandomState(5))
    got = np.empty((700, 3))
    legacy_rng.beta_rows(key, ints, cached, alpha, beta, 700, got, np.zeros((3, 0), np.int64), 97)  # tiny buffer
    np.testing.assert_array_equal(got, want)


def test_cached_action_dist_is_reused_and_keyed_by_its_inputs(tmp_path):
    from recux.ope.bts import cached_bts_action_dist

    first = cached_bts_action_dist(ALPHA, BETA, 2, n_sim=3000, random_state=1, root=tmp_path)
    files = list(tmp_path.glob("bts_action_dist-*.npy"))
    assert len(files) == 1
    np.testing.assert_array_equal(first, bts_action_dist(ALPHA, BETA, 2, n_sim=3000, random_state=1))
    np.save(files[0], np.full((4, 2), 0.25))  # a planted file proves the second call reads, not simulates
    np.testing.assert_array_equal(cached_bts_action_dist(ALPHA, BETA, 2, n_sim=3000, random_state=1, root=tmp_path),
                                  np.full((4, 2), 0.25))
    other = cached_bts_action_dist(ALPHA, BETA, 2, n_sim=3000, random_state=2, root=tmp_path)  # another seed
    assert len(list(tmp_path.glob("bts_action_dist-*.npy"))) == 2
    assert not np.array_equal(other, np.full((4, 2), 0.25))


def test_legacy_rng_port_equals_numpy_when_rows_straddle_and_outgrow_blocks():
    """Blocks of 8 uniforms are smaller than one row's draws (6 gammas, each >= 3 uniforms): every row is rolled
    back and the carry room grows; blocks of 61 split rows at varying points."""
    from recux.ope import legacy_rng

    alpha, beta = np.array([2.0, 47.0, 1.5]), np.array([3000.0, 2.5, 1.01])
    want = np.random.RandomState(11).beta(alpha, beta, size=(300, 3))
    for block in (8, 61):
        key, ints, cached = legacy_rng.state_of(np.random.RandomState(11))
        got = np.empty((300, 3))
        legacy_rng.beta_rows(key, ints, cached, alpha, beta, 300, got, np.zeros((3, 0), np.int64), block)
        np.testing.assert_array_equal(got, want)


def test_speculative_rows_equal_numpy_where_rejections_are_frequent():
    """Shapes just above 1 make numpy redraw often (v <= 0 and the log test's rejections): every restart of the
    speculative parse must land where numpy's stream is. A state with a cached Gaussian (after a
    standard_normal) is carried in, and the final state equals numpy's."""
    from recux.ope import legacy_rng

    alpha = np.array([1.01, 1.05, 1.3, 2.0, 1.001])
    beta = np.array([1.02, 40.0, 1.1, 1.0001, 7.5])
    rng = np.random.RandomState(2024)
    rng.standard_normal()  # leaves has_gauss = 1
    key, ints, cached = legacy_rng.state_of(rng)
    assert ints[1] == 1
    want = rng.beta(alpha, beta, size=(4000, 5))
    got = np.empty((4000, 5))
    legacy_rng.beta_rows(key, ints, cached, alpha, beta, 4000, got, np.zeros((5, 0), np.int64), 997)
    np.testing.assert_array_equal(got, want)


def test_consume_rows_leaves_numpys_state():
    from recux.ope import legacy_rng

    alpha, beta = np.array([1.02, 3.0, 1.4]), np.array([2.5, 1.03, 90.0])
    rng = np.random.RandomState(8)
    key, ints, cached = legacy_rng.state_of(rng)
    want = rng.beta(alpha, beta, size=(500, 3))
    buf = np.empty(50_000)
    legacy_rng.fill_doubles(key, ints, buf)
    b, c = legacy_rng.gamma_constants(alpha, beta)
    has_gauss, gauss, out, gammas = ints[1:2].copy(), cached.copy(), np.zeros(2, np.int64), np.empty((500, 6))
    legacy_rng.consume_rows(buf, 0, b, c, gauss, has_gauss, 500, gammas, out)
    got = np.empty((500, 3))
    legacy_rng.rank_rows(gammas, 500, 0, b, c, got, np.zeros((3, 0), np.int64))
    np.testing.assert_array_equal(got, want)
    # numpy's state after the rows: its cached Gaussian, and the uniforms used are as many doubles of a fresh copy
    _, _, _, numpy_has_gauss, numpy_gauss = rng.get_state()
    assert (has_gauss[0], gauss[0]) == (numpy_has_gauss, numpy_gauss)
    replay = np.random.RandomState(8)
    replay.random_sample(int(out[1]))
    np.testing.assert_array_equal(replay.get_state()[1], rng.get_state()[1])
    assert replay.get_state()[2] == rng.get_state()[2]

