"""Popularity lift, long tail, exposure entropy, personalisation and item-side exposure (recux.kernels.exposure,
recux.plugins.metrics.exposure) against plain-Python references and the all-pairs definition."""

from __future__ import annotations

import math
from collections import Counter
from itertools import combinations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import entropy

from recux.errors import ConfigError
from recux.evaluation import evaluate_topk
from recux.kernels.beyond import exposure_counts
from recux.kernels.exposure import (
    GROUPS,
    HEAD,
    MID,
    TAIL,
    exposure_entropy,
    member_share,
    personalisation,
    pop_lift,
    popularity_groups,
)


@st.composite
def lists_case(draw, max_items=20, max_users=10, max_width=8):
    """Top-k rows of distinct items with -1 padding anywhere, cut-offs, popularity and a history per row."""
    n_items = draw(st.integers(1, max_items))
    n_users = draw(st.integers(1, max_users))
    width = draw(st.integers(1, max_width))
    rows, history = [], []
    for _ in range(n_users):
        n_real = draw(st.integers(0, min(width, n_items)))
        row = list(draw(st.permutations(range(n_items)))[:n_real]) + [-1] * (width - n_real)
        rows.append(draw(st.permutations(row)))
        history.append(sorted(draw(st.sets(st.integers(0, n_items - 1), max_size=n_items))))
    ks = draw(st.lists(st.integers(1, width), min_size=1, max_size=4))
    pop = np.array(draw(st.lists(st.integers(0, 30), min_size=n_items, max_size=n_items)), dtype=np.int64)
    return np.array(rows, dtype=np.int32).reshape(n_users, width), ks, n_items, pop, history


def _csr(history: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    indptr = np.cumsum([0] + [len(h) for h in history]).astype(np.int64)
    return indptr, np.array([i for h in history for i in h], dtype=np.int32)


# -- the head / mid / tail partition -------------------------------------------------------------------------

def test_partition_of_a_hand_made_catalogue():
    # 100 interactions. Head (20%): item 0 alone reaches 50 >= 20. Tail (20%): from the bottom 0, 0, 2, 3, 5,
    # 10 sum to 20 <= 20; adding item 1 (30) would exceed it. Item 1 is mid.
    pop = np.array([50, 30, 10, 5, 3, 2, 0, 0])
    assert popularity_groups(pop, 0.2, 0.2).tolist() == [HEAD, MID] + [TAIL] * 6
    # head 0.6: item 0 (above = 0) and item 1 (above = 50 < 60) are head; item 2 has 80 above it. Tail 0.1:
    # 0 + 0 + 2 + 3 + 5 = 10 <= 10, so item 3 (5) is tail and item 2 (10 more) mid.
    assert popularity_groups(pop, 0.6, 0.1).tolist() == [HEAD, HEAD, MID, TAIL, TAIL, TAIL, TAIL, TAIL]
    # two-way split (no head): the long tail of 80% is everything but item 0 (the bottom 50 interactions).
    assert popularity_groups(pop, 0.0, 0.8).tolist() == [MID] + [TAIL] * 7


def test_partition_keeps_ties_together_and_handles_no_interactions():
    # the two 10s have nothing above them (< 6): both head, although together they hold 2/3 of the interactions;
    # the two 5s have 10 at or below them (> 6): mid.
    assert popularity_groups(np.array([10, 5, 10, 5]), 0.2, 0.2).tolist() == [HEAD, MID, HEAD, MID]
    assert popularity_groups(np.zeros(3, dtype=np.int64), 0.2, 0.2).tolist() == [TAIL] * 3
    with pytest.raises(ValueError, match="sum <= 1"):
        popularity_groups(np.array([1, 2]), 0.6, 0.6)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(0, 40), min_size=1, max_size=30), st.floats(0, 1), st.floats(0, 1))
def test_partition_meets_its_shares(pop, head_share, tail_share):
    """The head reaches head_share of the interactions and stops at the first popularity value that does; the
    tail stays within tail_share and is the largest set of least-popular values that does."""
    if head_share + tail_share > 1:
        head_share, tail_share = head_share / 2, tail_share / 2
    groups = popularity_groups(np.array(pop), head_share, tail_share).tolist()
    total = sum(pop)
    by_value = sorted(set(pop), reverse=True)
    for v in by_value:
        group = {g for p, g in zip(pop, groups, strict=True) if p == v}
        assert len(group) == 1  # ties share a group
    mass = lambda g: sum(p for p, gg in zip(pop, groups, strict=True) if gg == g)  # noqa: E731
    if total == 0:
        assert set(groups) == {TAIL}
        return
    head_values = [v for v in by_value if groups[pop.index(v)] == HEAD]
    assert head_values == by_value[:len(head_values)]  # a prefix of the most popular values
    if head_values:
        assert mass(HEAD) - head_values[-1] * pop.count(head_values[-1]) < head_share * total
    if head_share > 0 and mass(HEAD) < head_share * total:
        pytest.fail("the head does not reach head_share")
    tail_values = [v for v in reversed(by_value) if groups[pop.index(v)] == TAIL]
    assert tail_values == sorted(by_value)[:len(tail_values)]  # a prefix of the least popular values
    assert mass(TAIL) <= tail_share * total + 1e-9
    rest = sorted(v for v in by_value if v not in tail_values)
    if rest and groups[pop.index(rest[0])] == MID:  # the next value up would overflow the tail
        assert mass(TAIL) + rest[0] * pop.count(rest[0]) > tail_share * total


# -- per-user kernels ----------------------------------------------------------------------------------------

@settings(max_examples=150, deadline=None)
@given(lists_case())
def test_pop_lift_matches_reference(case):
    topk, ks, _, pop, history = case
    got = pop_lift(topk, ks, pop, *_csr(history))
    for u, row in enumerate(topk.tolist()):
        for k in set(ks):
            real = [i for i in row[:k] if i >= 0]
            base = sum(int(pop[i]) for i in history[u]) / len(history[u]) if history[u] else 0.0
            if not real or base == 0:
                assert math.isnan(got[f"pop_lift@{k}"][u])
            else:
                want = (sum(int(pop[i]) for i in real) / len(real) - base) / base
                assert got[f"pop_lift@{k}"][u] == pytest.approx(want, abs=1e-12)


@settings(max_examples=150, deadline=None)
@given(lists_case(), st.data())
def test_member_share_matches_reference(case, data):
    topk, ks, n_items, _, _ = case
    member = np.array(data.draw(st.lists(st.booleans(), min_size=n_items, max_size=n_items)))
    got = member_share(topk, ks, member)
    for u, row in enumerate(topk.tolist()):
        for k in set(ks):
            real = [i for i in row[:k] if i >= 0]
            if not real:
                assert math.isnan(got[k][u])
            else:
                assert got[k][u] == pytest.approx(sum(bool(member[i]) for i in real) / len(real), abs=1e-12)


# -- personalisation and entropy -----------------------------------------------------------------------------

def personalisation_all_pairs(topk: np.ndarray, k: int) -> float:
    """1 - mean over pairs of lists (with a real item within k) of |L_u ∩ L_v| / sqrt(|L_u| |L_v|)."""
    lists = [set(i for i in row[:k] if i >= 0) for row in topk.tolist()]
    lists = [s for s in lists if s]
    if len(lists) < 2:
        return math.nan
    sims = [len(a & b) / math.sqrt(len(a) * len(b)) for a, b in combinations(lists, 2)]
    return 1 - sum(sims) / len(sims)


@settings(max_examples=150, deadline=None)
@given(lists_case(max_users=14))
def test_personalisation_matches_all_pairs(case):
    topk, ks, n_items, _, _ = case
    got = personalisation(topk, ks, n_items)
    # with the exposure counts, full lists take the integer path c_i (c_i - 1) / (2 k)
    got_counts = personalisation(topk, ks, n_items, exposure_counts(topk, ks, n_items))
    for k in set(ks):
        want = personalisation_all_pairs(topk, k)
        for value in (got[f"personalisation@{k}"], got_counts[f"personalisation@{k}"]):
            if math.isnan(want):
                assert math.isnan(value)
            else:
                assert value == pytest.approx(want, abs=1e-9)


def test_personalisation_of_full_lists_is_one_minus_mean_overlap_over_k():
    rng = np.random.default_rng(5)
    topk = np.stack([rng.permutation(12)[:4] for _ in range(30)]).astype(np.int32)
    overlaps = [len(set(a) & set(b)) / 4 for a, b in combinations(topk.tolist(), 2)]
    for counts in (None, exposure_counts(topk, [4], 12)):
        got = personalisation(topk, [4], 12, counts)["personalisation@4"]
        assert got == pytest.approx(1 - np.mean(overlaps), abs=1e-12)
    same = np.tile(topk[:1], (5, 1))
    assert personalisation(same, [4], 12, exposure_counts(same, [4], 12))["personalisation@4"] == 0.0


def test_personalisation_single_buffer_path_agrees(monkeypatch):
    import recux.kernels.exposure as exposure

    rng = np.random.default_rng(2)
    topk = np.stack([rng.permutation(40)[:6] for _ in range(300)]).astype(np.int32)
    topk[::4, 3:] = -1
    want = personalisation(topk, [3, 6], 40)
    monkeypatch.setattr(exposure, "_MAX_PARTIAL_BYTES", 0)  # forces one buffer
    got = personalisation(topk, [3, 6], 40)
    assert got == pytest.approx(want, abs=1e-12)
    assert got["personalisation@6"] == pytest.approx(personalisation_all_pairs(topk, 6), abs=1e-9)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 50), min_size=1, max_size=30))
def test_exposure_entropy_matches_scipy(counts):
    h, h_norm = exposure_entropy(np.array(counts))
    if sum(counts) == 0:
        assert math.isnan(h) and math.isnan(h_norm)
        return
    assert h == pytest.approx(entropy(counts, base=2), abs=1e-12)
    if len(counts) > 1:
        assert h_norm == pytest.approx(entropy(counts, base=2) / math.log2(len(counts)), abs=1e-12)


# -- the plugins through evaluate_topk -----------------------------------------------------------------------

ALL = ["pop_lift", "aplt", "ltc", "exposure_entropy", "personalisation", "exposure_share_head",
       "exposure_share_mid", "exposure_share_tail", "exposure_relevance_head", "exposure_relevance_mid",
       "exposure_relevance_tail"]


@pytest.fixture(scope="module")
def world():
    rng = np.random.default_rng(11)
    n, n_items, width = 60, 40, 6
    weights = 1.0 / np.arange(1, n_items + 1)  # skewed popularity
    train = sp.csr_matrix((rng.random((n, n_items)) < 0.5 * weights[None, :] * 4).astype(np.float32))
    topk = np.stack([rng.choice(n_items, width, replace=False, p=weights / weights.sum()) for _ in range(n)])
    topk = topk.astype(np.int32)
    topk[::5, 4:] = -1
    truth = sp.csr_matrix((rng.random((n, n_items)) < 0.08).astype(np.float32))
    truth[3] = 0  # one user without ground truth: dropped from every metric
    truth.eliminate_zeros()
    report = evaluate_topk(topk, truth, metrics=ALL, ks=[3, 6], train=train, history=train, n_items=n_items)
    return topk, truth, train, report


def test_plugins_match_direct_computations(world):
    topk, truth, train, report = world
    keep = np.diff(truth.indptr) > 0
    topk, truth, hist = topk[keep], truth[keep], train[keep]
    pop = np.asarray((train > 0).sum(axis=0)).ravel()
    groups3 = popularity_groups(pop, 0.2, 0.2)
    long_tail = popularity_groups(pop, 0.0, 0.8) == TAIL
    relevant = Counter(truth.indices.tolist())
    for k in (3, 6):
        lists = [[i for i in row[:k] if i >= 0] for row in topk.tolist()]
        slots = Counter(i for lst in lists for i in lst)
        lift = [(np.mean(pop[lst]) - np.mean(pop[h.indices])) / np.mean(pop[h.indices]) for lst, h in
                zip(lists, hist, strict=True)]
        assert report.means[f"pop_lift@{k}"] == pytest.approx(np.nanmean(lift))
        assert report.means[f"aplt@{k}"] == pytest.approx(np.mean([np.mean(long_tail[lst]) for lst in lists]))
        assert report.means[f"ltc@{k}"] == pytest.approx(
            len({i for i in slots if long_tail[i]}) / long_tail.sum())
        assert report.means[f"personalisation@{k}"] == pytest.approx(personalisation_all_pairs(topk, k))
        assert report.means[f"exposure_entropy@{k}"] == pytest.approx(entropy(list(slots.values()), base=2))
        for code, g in enumerate(GROUPS):
            share = sum(c for i, c in slots.items() if groups3[i] == code) / sum(slots.values())
            rel = sum(c for i, c in relevant.items() if groups3[i] == code) / sum(relevant.values())
            assert report.means[f"exposure_share_{g}@{k}"] == pytest.approx(share)
            assert report.means[f"catalogue_share_{g}@{k}"] == pytest.approx(np.mean(groups3 == code))
            assert report.means[f"interaction_share_{g}@{k}"] == pytest.approx(pop[groups3 == code].sum() / pop.sum())
            if rel:
                assert report.means[f"exposure_relevance_{g}@{k}"] == pytest.approx(share / rel)
            else:
                assert math.isnan(report.means[f"exposure_relevance_{g}@{k}"])
    assert report.means["exposure_share_head@6"] > report.means["catalogue_share_head@6"]  # skewed lists


def test_directions_and_per_user_columns(world):
    report = world[3]
    assert report.directions["pop_lift@3"] is False and report.directions["exposure_share_head@3"] is False
    assert report.directions["aplt@3"] and report.directions["personalisation@6"]
    assert {"pop_lift@3", "aplt@6"} <= set(report.per_user.columns)
    assert "personalisation@3" not in report.per_user.columns  # corpus-level


def test_shares_are_settings(world):
    topk, truth, train, _ = world
    rep = evaluate_topk(topk, truth, metrics=[{"name": "aplt", "tail_share": 0.2},
                                              {"name": "exposure_share_tail", "tail_share": 0.5}],
                        ks=[6], train=train, n_items=40)
    pop = np.asarray((train > 0).sum(axis=0)).ravel()
    assert rep.means["interaction_share_tail@6"] <= 0.5
    keep = np.diff(truth.indptr) > 0
    tail = popularity_groups(pop, 0.0, 0.2) == TAIL
    want = np.nanmean([np.mean(tail[[i for i in row if i >= 0]]) for row in topk[keep].tolist()])
    assert rep.means["aplt@6"] == pytest.approx(want)


def test_bad_settings_and_missing_inputs_are_refused():
    topk = np.array([[0, 1]], dtype=np.int32)
    truth = sp.csr_matrix(np.array([[1.0, 0, 0]]))
    train = sp.csr_matrix(np.ones((1, 3)))
    with pytest.raises(ConfigError, match="tail_share=1.5 must be a number in"):
        evaluate_topk(topk, truth, metrics=[{"name": "aplt", "tail_share": 1.5}], ks=[2], train=train)
    with pytest.raises(ConfigError, match="exceeds 1"):
        evaluate_topk(topk, truth, metrics=[{"name": "exposure_share_head", "head_share": 0.7, "tail_share": 0.5}],
                      ks=[2], train=train)
    with pytest.raises(ConfigError, match="needs history.*pass history="):
        evaluate_topk(topk, truth, metrics=["pop_lift"], ks=[2], train=train)
    with pytest.raises(ConfigError, match="needs train_popularity"):
        evaluate_topk(topk, truth, metrics=["ltc"], ks=[2])


def test_undefined_values_are_nan_not_errors():
    """One user with an all-padding list, an empty history and no training interactions: the per-user values,
    entropy, personalisation (one list) and every share are undefined; nothing of the long tail is covered."""
    report = evaluate_topk(np.array([[-1, -1]], np.int32), sp.csr_matrix(np.array([[1.0, 0]])), metrics=ALL,
                           ks=[2], train=sp.csr_matrix((1, 2)), history=sp.csr_matrix((1, 2)), n_items=2)
    means = report.means
    assert means["ltc@2"] == 0.0 and means["catalogue_share_tail@2"] == 1.0
    defined = {"ltc@2", "catalogue_share_head@2", "catalogue_share_mid@2", "catalogue_share_tail@2"}
    assert all(math.isnan(v) for name, v in means.items() if name not in defined)
