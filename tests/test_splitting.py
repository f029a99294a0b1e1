"""Splits: partition, per-user ratios, temporal order, leave-last-out, global cut, determinism (property tests)."""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recux.data import Interactions
from recux.errors import ConfigError
from recux.splitting import GlobalTemporalSplit, LeaveLastOut, RandomSplit, TemporalSplit, tie_key

CONF = Path(__file__).resolve().parents[1] / "conf" / "split"


def make_inter(users, items, times, n_users=None, n_items=None) -> Interactions:
    """Row ids ride in the rating column so each split part can be traced back to input rows."""
    users, items = np.asarray(users), np.asarray(items)
    return Interactions(
        user=users,
        item=items,
        n_users=n_users or int(users.max(initial=-1)) + 1,
        n_items=n_items or int(items.max(initial=-1)) + 1,
        rating=np.arange(len(users), dtype=np.float32),
        timestamp=None if times is None else np.asarray(times),
    )


def rows_of(part: Interactions) -> list[int]:
    return part.rating.astype(np.int64).tolist()


@st.composite
def interactions(draw, max_rows=120):
    n = draw(st.integers(0, max_rows))
    users = draw(st.lists(st.integers(0, 9), min_size=n, max_size=n))
    items = draw(st.lists(st.integers(0, 14), min_size=n, max_size=n))
    times = draw(st.lists(st.integers(0, 20), min_size=n, max_size=n))  # small range: many ties
    return make_inter(users, items, times, n_users=10, n_items=15)


ratios_st = st.sampled_from(
    [(0.8, 0.1, 0.1), (0.7, 0.15, 0.15), (0.6, 0.2, 0.2), (0.5, 0.0, 0.5), (1.0, 0.0, 0.0)]
)


def reference_sizes(n: int, ratios) -> tuple[int, int, int]:
    """The documented rule, written per user: round half up, then give train at least one row."""
    n_valid = math.floor(n * ratios[1] + 0.5 + 1e-9)
    n_test = math.floor(n * ratios[2] + 0.5 + 1e-9)
    while n > 0 and n - n_valid - n_test < 1:
        if n_valid > 0:
            n_valid -= 1
        else:
            n_test -= 1
    return n - n_valid - n_test, n_valid, n_test


def by_user(inter: Interactions, rows: list[int]) -> dict[int, list[int]]:
    out = defaultdict(list)
    for r in rows:
        out[int(inter.user[r])].append(r)
    return out


def check_partition(inter: Interactions, split) -> None:
    parts = [rows_of(split.train), rows_of(split.valid), rows_of(split.test)]
    everything = sorted(parts[0] + parts[1] + parts[2])
    assert everything == list(range(len(inter)))  # union is all rows, and no row appears twice
    for part in (split.train, split.valid, split.test):
        assert (part.n_users, part.n_items) == (inter.n_users, inter.n_items)
        rows = part.rating.astype(np.int64)
        np.testing.assert_array_equal(part.user, inter.user[rows])
        np.testing.assert_array_equal(part.item, inter.item[rows])
        np.testing.assert_array_equal(part.timestamp, inter.timestamp[rows])


@settings(max_examples=200, deadline=None)
@given(inter=interactions(), ratios=ratios_st, seed=st.integers(0, 2**31), temporal=st.booleans())
def test_ratio_splits(inter, ratios, seed, temporal):
    splitter = TemporalSplit(ratios) if temporal else RandomSplit(ratios)
    split = splitter.split(inter, seed=seed)
    check_partition(inter, split)
    train, valid, test = (by_user(inter, rows_of(p)) for p in (split.train, split.valid, split.test))

    ties = tie_key(inter.user, inter.item, seed)

    def key(r):  # the documented order: time, then the seeded tie key, then row position
        return (inter.timestamp[r], ties[r], r)

    for u, n in enumerate(np.bincount(inter.user, minlength=inter.n_users).tolist()):
        sizes = (len(train[u]), len(valid[u]), len(test[u]))
        assert sizes == reference_sizes(n, ratios)
        if n:
            assert sizes[0] >= 1
        if temporal and n:
            if valid[u]:
                assert max(map(key, train[u])) < min(map(key, valid[u]))
            if test[u]:
                assert max(map(key, train[u] + valid[u])) < min(map(key, test[u]))
    assert split.settings["n_train"] + split.settings["n_valid"] + split.settings["n_test"] == len(inter)


@settings(max_examples=200, deadline=None)
@given(inter=interactions(), seed=st.integers(0, 1000))
def test_leave_last_out_picks_the_last(inter, seed):
    split = LeaveLastOut().split(inter, seed=seed)
    check_partition(inter, split)
    assert split.protocol == "leave_last_one_out"
    test, valid = by_user(inter, rows_of(split.test)), by_user(inter, rows_of(split.valid))
    for u in range(inter.n_users):
        rows = [r for r in range(len(inter)) if inter.user[r] == u]
        ties = tie_key(inter.user, inter.item, seed)
        rows.sort(key=lambda r: (inter.timestamp[r], ties[r], r))
        if len(rows) >= 3:
            assert test[u] == [rows[-1]] and valid[u] == [rows[-2]]
        else:
            assert not test[u] and not valid[u]


@settings(max_examples=200, deadline=None)
@given(inter=interactions(), vq=st.sampled_from([0.5, 0.8, 0.9]), gap=st.sampled_from([0.0, 0.1]))
def test_global_temporal(inter, vq, gap):
    tq = min(1.0, vq + gap)
    split = GlobalTemporalSplit(vq, tq).split(inter, seed=0)
    train, valid, test = (set(rows_of(p)) for p in (split.train, split.valid, split.test))
    assert not (train & valid or train & test or valid & test)
    t = inter.timestamp
    if len(inter):
        # Reference cut: everything strictly before the time at the quantile position trains.
        ts = sorted(t.tolist())
        cut = ts[min(len(ts) - 1, math.floor(len(ts) * vq))]
        assert train == {r for r in range(len(inter)) if t[r] < cut}
    seen_users = {int(inter.user[r]) for r in train}
    seen_items = {int(inter.item[r]) for r in train}
    for r in valid | test:
        assert t[r] >= max((t[x] for x in train), default=t[r])
        assert int(inter.user[r]) in seen_users and int(inter.item[r]) in seen_items
    if valid and test:
        assert max(t[r] for r in valid) <= min(t[r] for r in test)
    dropped = len(inter) - len(train) - len(valid) - len(test)
    assert dropped == split.settings["dropped_valid"] + split.settings["dropped_test"]
    # Dropped rows are exactly the held-out rows of cold users or items.
    cold = {
        r
        for r in set(range(len(inter))) - train
        if int(inter.user[r]) not in seen_users or int(inter.item[r]) not in seen_items
    }
    assert (set(range(len(inter))) - train - valid - test) == cold


@settings(max_examples=60, deadline=None)
@given(inter=interactions(), seed=st.integers(0, 1000))
def test_temporal_splits_ignore_row_order(inter, seed):
    perm = np.random.default_rng(seed).permutation(len(inter))
    shuffled = make_inter(inter.user[perm], inter.item[perm], inter.timestamp[perm], 10, 15)

    def signature(inter_, split):
        return [
            sorted((int(inter_.user[r]), int(inter_.item[r]), int(inter_.timestamp[r])) for r in rows_of(p))
            for p in (split.train, split.valid, split.test)
        ]

    for splitter in (TemporalSplit(), LeaveLastOut()):
        a = signature(inter, splitter.split(inter, 0))
        b = signature(shuffled, splitter.split(shuffled, 0))
        assert a == b


def test_seed_determinism_on_larger_data():
    rng = np.random.default_rng(0)
    inter = make_inter(rng.integers(0, 200, 5000), rng.integers(0, 300, 5000), rng.integers(0, 10**6, 5000))
    a, b = RandomSplit().split(inter, seed=1), RandomSplit().split(inter, seed=1)
    c = RandomSplit().split(inter, seed=2)
    assert rows_of(a.test) == rows_of(b.test) and rows_of(a.valid) == rows_of(b.valid)
    assert rows_of(a.test) != rows_of(c.test)
    assert len(a.test) == len(c.test)  # sizes depend on the counts only
    assert a.protocol == "random_80_10_10" and a.settings["seed"] == 1
    # Each row is equally likely to be held out: over many seeds, the test share per row is near 10%.
    small = make_inter(np.zeros(20, int), np.arange(20), np.arange(20))
    hits = np.zeros(20)
    for s in range(400):
        hits[rows_of(RandomSplit().split(small, seed=s).test)] += 1
    assert np.all(np.abs(hits / 400 - 0.1) < 0.06)


def test_random_split_needs_no_timestamps():
    inter = make_inter([0] * 10 + [1] * 2, list(range(10)) + [0, 1], None)
    split = RandomSplit().split(inter, seed=0)
    assert len(split.test) == 1 and len(split.valid) == 1 and split.train.timestamp is None
    with pytest.raises(ConfigError, match="timestamps"):
        TemporalSplit().split(inter, seed=0)
    with pytest.raises(ConfigError, match="timestamps"):
        LeaveLastOut().split(inter, seed=0)
    with pytest.raises(ConfigError, match="timestamps"):
        GlobalTemporalSplit().split(inter, seed=0)


@pytest.mark.parametrize(
    "bad", [(0.8, 0.1), (0.5, 0.1, 0.1), (0.0, 0.5, 0.5), (1.1, -0.05, -0.05), ("a", 1, 2)]
)
def test_bad_ratios(bad):
    with pytest.raises(ConfigError, match="ratios"):
        RandomSplit(bad)


def test_bad_quantiles():
    with pytest.raises(ConfigError, match="quantile"):
        GlobalTemporalSplit(0.9, 0.8)


def test_hydra_configs():
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    expected = {
        "random": (RandomSplit, "random_80_10_10"),
        "temporal": (TemporalSplit, "temporal_80_10_10"),
        "loo": (LeaveLastOut, "leave_last_one_out"),
        "global_temporal": (GlobalTemporalSplit, "global_temporal_80_90"),
    }
    assert {p.stem for p in CONF.glob("*.yaml")} >= set(expected)
    rng = np.random.default_rng(0)
    inter = make_inter(rng.integers(0, 30, 600), rng.integers(0, 40, 600), rng.integers(0, 1000, 600))
    for name, (cls, protocol) in expected.items():
        splitter = instantiate(OmegaConf.load(CONF / f"{name}.yaml"))
        assert isinstance(splitter, cls)
        split = splitter.split(inter, seed=0)
        assert split.protocol == protocol
        assert len(split.train) > len(split.test) > 0


def test_wide_timestamps_use_the_same_order():
    """Timestamps too wide for the packed sort key take the lexsort path; the split rule is the same."""
    rng = np.random.default_rng(3)
    n = 400
    users, items = rng.integers(0, 20, n), rng.integers(0, 30, n)
    narrow = rng.integers(0, 50, n)
    wide = narrow * 2**55  # same order, far too wide to pack with user and item codes
    a = TemporalSplit().split(make_inter(users, items, narrow, 20, 30), seed=0)
    b = TemporalSplit().split(make_inter(users, items, wide, 20, 30), seed=0)
    for pa, pb in ((a.train, b.train), (a.valid, b.valid), (a.test, b.test)):
        assert rows_of(pa) == rows_of(pb)
    assert len(b.test) > 0


# ---------------------------------------------------------------- timestamp ties


def _triples(inter: Interactions, part: Interactions) -> list[tuple[int, int, int]]:
    return sorted(zip(part.user.tolist(), part.item.tolist(), part.timestamp.tolist(), strict=True))


@settings(max_examples=100, deadline=None)
@given(inter=interactions(), seed=st.integers(0, 1000), data=st.data())
def test_time_splits_do_not_depend_on_how_rows_are_stored(inter, seed, data):
    from recux.sequences import chronological

    perm = np.asarray(data.draw(st.permutations(range(len(inter)))), dtype=np.int64)
    shuffled = make_inter(inter.user[perm], inter.item[perm], inter.timestamp[perm], inter.n_users, inter.n_items)
    for splitter in (LeaveLastOut(), TemporalSplit((0.6, 0.2, 0.2)), GlobalTemporalSplit(0.6, 0.8)):
        a, b = splitter.split(inter, seed=seed), splitter.split(shuffled, seed=seed)
        for pa, pb in zip((a.train, a.valid, a.test), (b.train, b.valid, b.test), strict=True):
            assert _triples(inter, pa) == _triples(shuffled, pb)
            # and the sequences a sequential model trains on, same-second items included
            np.testing.assert_array_equal(chronological(pa)[0], chronological(pb)[0])


def _all_tied_world(n_users=3000, per_user=10, n_items=200, seed=0) -> Interactions:
    rng = np.random.default_rng(seed)
    items = np.concatenate([rng.choice(n_items, per_user, replace=False) for _ in range(n_users)])
    users = np.repeat(np.arange(n_users), per_user)
    return make_inter(users, items, np.zeros(len(users), dtype=np.int64), n_users, n_items)


def test_tied_held_out_items_are_drawn_without_favouring_item_codes():
    """Every row at one timestamp: the test item's rank by code among its user's items must be uniform
    (breaking ties by code would always hold out the highest code)."""
    inter = _all_tied_world()
    split = LeaveLastOut().split(inter, seed=0)
    per_user = inter.item.reshape(-1, 10)
    test_item = np.empty(inter.n_users, dtype=np.int64)
    test_item[split.test.user] = split.test.item
    rank = (per_user < test_item[:, None]).sum(axis=1)  # 0..9 by code within the user
    counts = np.bincount(rank, minlength=10)
    expected = inter.n_users / 10  # 300 each; binomial sd ~16
    assert np.all(np.abs(counts - expected) < 6 * np.sqrt(expected * 0.9)), counts


def test_the_seed_changes_only_tied_choices():
    inter = _all_tied_world(n_users=200)
    tests = [set(zip(*(LeaveLastOut().split(inter, seed=s).test.__getattribute__(f).tolist()
                       for f in ("user", "item")), strict=True)) for s in (0, 1)]
    assert tests[0] != tests[1]  # ties: another seed holds out other items
    distinct = make_inter(inter.user, inter.item, np.arange(len(inter)), inter.n_users, inter.n_items)
    a, b = (LeaveLastOut().split(distinct, seed=s) for s in (0, 1))
    assert _triples(distinct, a.test) == _triples(distinct, b.test)
    assert _triples(distinct, a.valid) == _triples(distinct, b.valid)


@settings(max_examples=100, deadline=None)
@given(inter=interactions(), seed=st.integers(0, 1000))
def test_sequences_built_from_the_split_end_with_the_held_out_items(inter, seed):
    """Sequential models order each user's items with a stable sort by time; the split's rows must come in
    its tie order, so train + valid ends with the valid item and train + valid + test with the test item."""
    from recux.pipeline import _concat
    from recux.sequences import last_items

    split = LeaveLastOut().split(inter, seed=seed)
    upto_valid = last_items(_concat(split.train, split.valid), 1)[:, -1]
    upto_test = last_items(_concat(_concat(split.train, split.valid), split.test), 1)[:, -1]
    for part, last in ((split.valid, upto_valid), (split.test, upto_test)):
        np.testing.assert_array_equal(last[part.user], part.item + 1)  # tokens are item code + 1
