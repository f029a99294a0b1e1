"""The cold-item split (split=cold_items): held-out items never reach train or valid, every one of their rows is
a test row, the share is respected, the seed changes the held-out set, and the split ignores row order."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf

from recux.data import Interactions
from recux.errors import ConfigError
from recux.splitting import ColdItemSplit, ratio_sizes

CONF = Path(__file__).resolve().parents[1] / "conf" / "split"


def world(seed: int = 0, n_users: int = 150, n_items: int = 240, rows: int = 4000) -> Interactions:
    """Distinct (user, item) pairs drawn with a skewed item popularity; row ids ride in the rating column."""
    rng = np.random.default_rng(seed)
    p = 1.0 / np.arange(1, n_items + 1)
    user = rng.integers(0, n_users, rows)
    item = rng.choice(n_items, rows, p=p / p.sum())
    pairs = np.unique(user.astype(np.int64) * n_items + item)
    rng.shuffle(pairs)
    return Interactions(user=pairs // n_items, item=pairs % n_items, n_users=n_users, n_items=n_items,
                        rating=np.arange(len(pairs), dtype=np.float32), timestamp=None)


def parts(split) -> dict[str, set[tuple[int, int]]]:
    return {name: set(zip(getattr(split, name).user.tolist(), getattr(split, name).item.tolist(), strict=True))
            for name in ("train", "valid", "test")}


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_cold_items_never_in_train_or_valid_and_all_their_rows_are_test(seed):
    inter = world(seed)
    splitter = ColdItemSplit()
    split = splitter.split(inter, seed)
    cold = splitter.cold_items(inter, seed)
    assert cold.any()
    assert not cold[split.train.item].any() and not cold[split.valid.item].any()
    # every row of a cold item is in test, and the parts partition the rows
    assert np.array_equal(np.bincount(split.test.item[cold[split.test.item]], minlength=inter.n_items),
                          np.bincount(inter.item[cold[inter.item]], minlength=inter.n_items))
    ids = np.concatenate([split.train.rating, split.valid.rating, split.test.rating]).astype(int)
    assert sorted(ids.tolist()) == list(range(len(inter)))
    assert split.settings["n_cold_items"] == int(cold.sum())


@pytest.mark.parametrize("share", [0.1, 0.2, 0.35])
def test_share_of_items_is_respected(share):
    inter = world(3)
    present = np.unique(inter.item).size
    cold = ColdItemSplit(cold_share=share).cold_items(inter, 0)
    assert int(cold.sum()) == int(np.floor(present * share + 0.5))
    assert not cold[np.setdiff1d(np.arange(inter.n_items), inter.item)].any()  # absent items are never chosen


def test_warm_rows_split_per_user_by_the_ratios():
    """Each user's warm rows get the (train, valid, test) sizes ratio_sizes gives for their warm count."""
    inter = world(4)
    splitter = ColdItemSplit(ratios=(0.7, 0.15, 0.15))
    split = splitter.split(inter, 5)
    cold = splitter.cold_items(inter, 5)
    warm_counts = np.bincount(inter.user[~cold[inter.item]], minlength=inter.n_users)
    want = ratio_sizes(warm_counts, (0.7, 0.15, 0.15))
    warm_test = split.test.subset(~cold[split.test.item])
    got = [np.bincount(p.user, minlength=inter.n_users) for p in (split.train, split.valid, warm_test)]
    for g, w in zip(got, want, strict=True):
        assert np.array_equal(g, w)


def test_seed_changes_the_held_out_items_and_repeats_itself():
    inter = world(5)
    splitter = ColdItemSplit()
    masks = [splitter.cold_items(inter, s) for s in range(4)]
    assert all(not np.array_equal(masks[0], m) for m in masks[1:])
    assert parts(splitter.split(inter, 2)) == parts(splitter.split(inter, 2))


def test_split_is_independent_of_row_order():
    inter = world(6)
    perm = np.random.default_rng(9).permutation(len(inter))
    splitter = ColdItemSplit()
    assert parts(splitter.split(inter, 3)) == parts(splitter.split(inter.subset(perm), 3))


def test_yaml_builds_the_split_and_bad_shares_are_refused():
    splitter = instantiate(OmegaConf.load(CONF / "cold_items.yaml"))
    assert isinstance(splitter, ColdItemSplit) and splitter.cold_share == 0.2
    assert splitter.protocol == "cold_items_20_random_80_10_10"
    for bad in (0, 1, -0.1, "x"):
        with pytest.raises(ConfigError, match="split.cold_share"):
            ColdItemSplit(cold_share=bad)


def test_users_whose_items_are_all_cold_are_counted():
    """A user with only cold items has no training rows; the split says how many such users there are."""
    inter = world(8)
    splitter = ColdItemSplit(cold_share=0.5)
    cold = splitter.cold_items(inter, 0)
    extra = np.flatnonzero(cold)[:3]  # one new user who only has cold items
    user = np.concatenate([inter.user, np.full(3, inter.n_users)])
    item = np.concatenate([inter.item, extra])
    grown = Interactions(user=user, item=item, n_users=inter.n_users + 1, n_items=inter.n_items,
                         rating=np.arange(len(user), dtype=np.float32), timestamp=None)
    split = splitter.split(grown, 0)
    trained = np.bincount(split.train.user, minlength=grown.n_users) > 0
    assert not trained[inter.n_users]
    assert split.settings["users_without_train"] == int((~trained & (grown.user_counts() > 0)).sum()) >= 1
