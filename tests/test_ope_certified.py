"""Certified Bernoulli-TS slates (recux.ope.certified_rows, recux.ope.fastlog): the approximate logarithm's error,
numpy's accept/reject decisions and stream position reproduced exactly, and slate counts equal to numpy's draws
ranked exactly, including where certification fails and everything is recomputed."""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from recux.ope import legacy_rng
from recux.ope.certified_rows import EPS_X, accept_bits, bits_words, consume_rows_certified
from recux.ope.fastlog import REL_ERR, log_approx_array

FREQUENT_REJECTIONS = (np.array([1.01, 1.05, 1.3, 2.0, 1.001]), np.array([1.02, 40.0, 1.1, 1.0001, 7.5]))


@njit
def _libm_log(x, out):
    for i in range(x.shape[0]):
        out[i] = math.log(x[i])  # the C library's log, as numpy's legacy gauss calls it


def test_log_approx_is_within_its_stated_error_of_the_c_librarys_log():
    rng = np.random.default_rng(0)
    x = np.concatenate([
        rng.random(2_000_000),  # the polar method's r2 and the uniforms: (0, 1)
        1.0 - rng.random(200_000) * 1e-6,  # ln x -> 0: relative error is hardest here
        np.sqrt(0.5) * (1.0 + (rng.random(200_000) - 0.5) * 1e-9),  # the range reduction's boundary
        rng.random(200_000) * 3.0 + 0.05,  # v^3 of the log test
        2.0 ** -rng.integers(1, 105, 10_000) * (1 + rng.random(10_000)),  # down to 2^-104 (the smallest r2)
    ])
    x = x[(x > 0) & (x != 1.0)]
    got, want = np.empty_like(x), np.empty_like(x)
    log_approx_array(x, got)
    _libm_log(x, want)
    rel = np.abs(got - want) / np.abs(want)
    assert rel.max() <= REL_ERR / 2  # the budget holds with a factor 2 to spare
    assert np.abs(got - want).max() > 0  # an approximation, not the library call


def _numpy_slate_counts(rng, alpha, beta, n_sim, k):
    """OBP's loop: one beta row per simulation, the k largest in decreasing order."""
    counts = np.zeros((len(alpha), k), dtype=np.int64)
    draws = rng.beta(alpha, beta, size=(n_sim, len(alpha)))
    order = np.argsort(-draws, axis=1, kind="stable")[:, :k]
    for pos in range(k):
        np.add.at(counts[:, pos], order[:, pos], 1)
    return counts


def _certified_counts(rng, alpha, beta, n_sim, k, block=1 << 21, eps=EPS_X):
    key, ints, cached = legacy_rng.state_of(rng)
    counts = np.zeros((len(alpha), k), dtype=np.int64)
    stood = legacy_rng.beta_rows(key, ints, cached, alpha, beta, n_sim, np.empty((0, 0)), counts, block, eps)
    return counts, stood


def test_certified_slates_equal_numpys_where_rejections_are_frequent_and_a_gaussian_is_carried_in():
    alpha, beta = FREQUENT_REJECTIONS
    rng = np.random.RandomState(2024)
    rng.standard_normal()  # leaves a cached Gaussian for the first gamma
    mirror = np.random.RandomState()
    mirror.set_state(rng.get_state())
    want = _numpy_slate_counts(mirror, alpha, beta, 20_000, 2)
    got, stood = _certified_counts(rng, alpha, beta, 20_000, 2, block=997)
    assert stood
    np.testing.assert_array_equal(got, want)


def test_certified_slates_equal_numpys_on_an_obd_like_prior_across_block_sizes():
    rng = np.random.default_rng(5)
    alpha = rng.integers(2, 1000, 30).astype(float)
    beta = rng.integers(2000, 200_000, 30).astype(float)
    want = _numpy_slate_counts(np.random.RandomState(12345), alpha, beta, 30_000, 3)
    for block in (61, 4099, 1 << 16):
        got, stood = _certified_counts(np.random.RandomState(12345), alpha, beta, 30_000, 3, block=block)
        assert stood
        np.testing.assert_array_equal(got, want)


def test_an_uncertifiable_pass_falls_back_to_the_exact_draws():
    """With an error budget of 1% every comparison of close betas is in doubt: the pass reports failure and the
    counts come from the exact port, still equal to numpy's."""
    rng = np.random.default_rng(6)
    alpha, beta = rng.integers(2, 50, 12).astype(float), rng.integers(100, 900, 12).astype(float)
    want = _numpy_slate_counts(np.random.RandomState(7), alpha, beta, 5000, 3)
    got, stood = _certified_counts(np.random.RandomState(7), alpha, beta, 5000, 3, block=4099, eps=1e-2)
    assert not stood
    np.testing.assert_array_equal(got, want)


def test_certified_draws_take_numpys_decisions_and_stay_within_the_error_bound():
    """Against the exact port on the same uniforms: the same rows, the same stream position and the same cached
    Gaussian afterwards, and every Gaussian within the bound. A large ``eps`` sends most decisions to the exact
    tests (the path a thin margin takes); EPS_X takes them from the approximations."""
    alpha, beta = FREQUENT_REJECTIONS
    rng = np.random.RandomState(8)
    rng.standard_normal()
    key, ints, cached = legacy_rng.state_of(rng)
    buf = np.empty(60_000)
    legacy_rng.fill_doubles(key, ints[:1].copy(), buf)
    b, c = legacy_rng.gamma_constants(alpha, beta)
    exact_gauss, exact_has, exact_out = cached.copy(), ints[1:2].copy(), np.zeros(2, np.int64)
    exact = np.empty((800, 10))
    legacy_rng.consume_rows(buf, 0, b, c, exact_gauss, exact_has, 800, exact, exact_out)
    bits = np.empty(bits_words(len(buf)), np.uint64)
    accept_bits(buf, 0, len(buf), bits)
    for eps in (EPS_X, 1e-3):
        gauss, has, out, approx = cached.copy(), ints[1:2].copy(), np.zeros(2, np.int64), np.empty((800, 10))
        consume_rows_certified(buf, bits, 0, b, c, gauss, has, 800, approx, out, eps)
        np.testing.assert_array_equal(out, exact_out)
        assert (has[0], gauss[0]) == (exact_has[0], exact_gauss[0])
        n = out[0]
        assert np.all(np.abs(approx[:n] - exact[:n]) <= 2 * EPS_X * np.abs(exact[:n]) + 1e-300)
