"""Beyond-accuracy kernels (exposure, coverage, Gini, ARP, novelty) against plain-Python references."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import recux.kernels.beyond as beyond
from recux.kernels.beyond import coverage_and_gini, exposure_counts, gini_index, popularity_metrics


@st.composite
def lists_case(draw):
    n_items = draw(st.integers(1, 25))
    n_users = draw(st.integers(1, 12))
    width = draw(st.integers(1, 10))
    rows = []
    for _ in range(n_users):
        n_real = draw(st.integers(0, min(width, n_items)))
        row = list(draw(st.permutations(range(n_items)))[:n_real]) + [-1] * (width - n_real)
        rows.append(draw(st.permutations(row)))
    ks = draw(st.lists(st.integers(1, width), min_size=1, max_size=4))
    pop = draw(st.lists(st.integers(0, 40), min_size=n_items, max_size=n_items))
    n_train_users = draw(st.integers(1, 30))
    return np.array(rows, dtype=np.int32).reshape(n_users, width), ks, n_items, np.array(pop), n_train_users


def gini_by_pairs(x: list[float]) -> float:
    """Gini as the mean absolute difference over all pairs / (2 * mean): independent of the sorted formula."""
    n, total = len(x), sum(x)
    if total == 0:
        return 0.0
    return sum(abs(a - b) for a in x for b in x) / (2 * n * total)


@settings(max_examples=120, deadline=None)
@given(lists_case())
def test_exposure_coverage_gini_match_reference(case):
    topk, ks, n_items, _, _ = case
    counts = exposure_counts(topk, ks, n_items)
    agg = coverage_and_gini(topk, ks, n_items)
    for k in set(ks):
        want = [0] * n_items
        for row in topk.tolist():
            for i in row[:k]:
                if i >= 0:
                    want[i] += 1
        assert counts[k].tolist() == want
        assert agg[f"coverage@{k}"] == pytest.approx(sum(c > 0 for c in want) / n_items)
        assert agg[f"gini@{k}"] == pytest.approx(gini_by_pairs(want), abs=1e-12)


@settings(max_examples=120, deadline=None)
@given(lists_case())
def test_arp_and_novelty_match_reference(case):
    topk, ks, _, pop, n_train_users = case
    got = popularity_metrics(topk, ks, pop, n_train_users)
    for u, row in enumerate(topk.tolist()):
        for k in set(ks):
            real = [i for i in row[:k] if i >= 0]
            if not real:
                assert math.isnan(got[f"arp@{k}"][u]) and math.isnan(got[f"novelty@{k}"][u])
                continue
            arp = sum(int(pop[i]) for i in real) / len(real)
            nov = sum(-math.log2(min(max(int(pop[i]), 1), n_train_users) / n_train_users) for i in real) / len(real)
            assert got[f"arp@{k}"][u] == pytest.approx(arp, abs=1e-12)
            assert got[f"novelty@{k}"][u] == pytest.approx(nov, abs=1e-12)


def test_single_buffer_path_gives_the_same_counts(monkeypatch):
    rng = np.random.default_rng(3)
    topk = np.array([rng.permutation(50)[:8] for _ in range(200)], dtype=np.int32)
    topk[::7, 5:] = -1
    expected = exposure_counts(topk, [2, 8], 50)
    monkeypatch.setattr(beyond, "_MAX_PARTIAL_BYTES", 0)  # forces n_chunks = 1
    got = exposure_counts(topk, [2, 8], 50)
    for k in (2, 8):
        np.testing.assert_array_equal(got[k], expected[k])
        np.testing.assert_array_equal(got[k], np.bincount(topk[:, :k][topk[:, :k] >= 0], minlength=50))


def test_gini_extremes():
    assert gini_index(np.array([5, 5, 5, 5])) == pytest.approx(0.0)
    # all exposure on one of n items: (n - 1) / n
    assert gini_index(np.array([0, 0, 0, 12])) == pytest.approx(3 / 4)
    assert gini_index(np.zeros(4, dtype=np.int64)) == 0.0


def test_unseen_and_overcounted_items_in_novelty():
    """pop 0 counts as 1 (log2 N bits); pop above N counts as N (0 bits)."""
    topk = np.array([[0], [1]], dtype=np.int32)
    got = popularity_metrics(topk, [1], np.array([0, 50]), 8)
    assert got["novelty@1"].tolist() == pytest.approx([3.0, 0.0])
    assert got["arp@1"].tolist() == [0.0, 50.0]


def test_item_codes_out_of_range_are_rejected():
    topk = np.array([[0, 7]], dtype=np.int32)
    with pytest.raises(ValueError, match="item code 7"):
        exposure_counts(topk, [2], 5)
    with pytest.raises(ValueError, match="item code 7"):
        popularity_metrics(topk, [2], np.zeros(5, dtype=np.int64), 3)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 30), max_size=60), st.integers(31, 40), st.sampled_from([np.int32, np.int64]))
def test_item_counts_equal_a_counter(codes, n_items, dtype):
    got = beyond.item_counts(np.array(codes, dtype=dtype), n_items)
    want = [codes.count(i) for i in range(n_items)]
    assert got.dtype == np.int64 and got.tolist() == want


def test_item_counts_refuse_codes_outside_the_catalogue():
    with pytest.raises(ValueError, match="1 item code"):
        beyond.item_counts(np.array([0, 5, 2], dtype=np.int32), 5)
