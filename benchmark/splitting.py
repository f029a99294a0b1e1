"""Train/valid/test splits: per-user random or temporal ratios, leave-last-one-out, and a global time cut.

All splits are vectorised (one lexsort plus group offsets), deterministic for a given seed, and partition
the rows: every input row lands in exactly one of train/valid/test, except that the global temporal split
drops valid/test rows whose user or item never occurs in train (see GlobalTemporalSplit).

Timestamp ties (half of ML-100K's consecutive ratings share a second) are broken at random by a seeded hash
of (user, item), the same whatever order the rows are stored in, and the time-ordered splits emit their rows in
that order, so sequences built from them (stable sort by time) agree with the split on which item came last.
Breaking ties by item code instead held out the highest-coded item of each user's last second: on ML-100K
leave-last-one-out that drew systematically less popular test items and halved EASE's NDCG@10 (0.037 vs 0.072). Repeated (user, item) pairs (preprocess.duplicates=keep_all) may land
in different parts; deduplicate first when that matters.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from recux.data import Interactions, Split
from recux.errors import ConfigError
from recux.hashing import GOLDEN, MASK64, splitmix64

_EPS = 1e-9


def _check_ratios(ratios: Sequence[float], who: str) -> tuple[float, float, float]:
    try:
        r = tuple(float(x) for x in ratios)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{who}.ratios={ratios!r} must be three numbers (train, valid, test)") from exc
    if len(r) != 3 or any(x < 0 for x in r) or r[0] <= 0 or abs(sum(r) - 1.0) > 1e-6:
        raise ConfigError(
            f"{who}.ratios={list(r)} must be three non-negative numbers (train, valid, test) with train > 0 "
            "that sum to 1, e.g. [0.8, 0.1, 0.1]."
        )
    return r  # type: ignore[return-value]


def _pct(r: float) -> str:
    return f"{r * 100:.6g}"


def _group_positions(user_sorted: np.ndarray, n_users: int) -> tuple[np.ndarray, np.ndarray]:
    """For rows sorted by user: each row's position within its user, and each row's user size."""
    counts = np.bincount(user_sorted, minlength=n_users)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    pos = np.arange(len(user_sorted)) - starts[user_sorted]
    return pos, counts[user_sorted]


def ratio_sizes(
    n: np.ndarray, ratios: tuple[float, float, float]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-user (train, valid, test) sizes for group sizes ``n``.

    valid and test are n * ratio rounded half up; then, if that would leave train empty, items move back to
    train from valid first, then from test, so every user keeps at least one training item. E.g. with
    0.8/0.1/0.1 a user with 1-4 interactions gets no valid/test rows, one with 5 gets 3/1/1.
    """
    n = np.asarray(n, dtype=np.int64)
    n_valid = np.floor(n * ratios[1] + 0.5 + _EPS).astype(np.int64)
    n_test = np.floor(n * ratios[2] + 0.5 + _EPS).astype(np.int64)
    short = np.maximum(n_valid + n_test - (n - 1), 0)  # rows missing for a one-row train
    take = np.minimum(short, n_valid)
    n_valid -= take
    n_test -= np.minimum(short - take, n_test)
    n_test = np.maximum(n_test, 0)
    return n - n_valid - n_test, n_valid, n_test


def _assign(inter: Interactions, order: np.ndarray, n_valid: np.ndarray, n_test: np.ndarray) -> np.ndarray:
    """Part of each row (0 train, 1 valid, 2 test): within each user, in ``order``, the last n_test rows go
    to test and the n_valid before them to valid."""
    user_sorted = inter.user[order]
    pos, size = _group_positions(user_sorted, inter.n_users)
    from_end = size - pos  # 1 for the user's last row in this order
    part_sorted = np.where(
        from_end <= n_test[user_sorted],
        2,
        np.where(from_end <= n_test[user_sorted] + n_valid[user_sorted], 1, 0),
    )
    part = np.empty(len(inter), dtype=np.int8)
    part[order] = part_sorted
    return part


def tie_key(user: np.ndarray, item: np.ndarray, seed: int) -> np.ndarray:
    """A pseudo-random uint64 per (user, item) for ``seed`` (splitmix64 of the pair mixed with the seed):
    the order among same-timestamp rows, independent of row storage and of item codes' order."""
    mix = np.uint64((int(seed) * GOLDEN + 0x632BE59BD9B4E019) & MASK64)
    x = (np.asarray(user).astype(np.uint64) << np.uint64(32)) ^ np.asarray(item).astype(np.uint64) ^ mix
    return splitmix64(x)


def _time_order(inter: Interactions, who: str, seed: int) -> np.ndarray:
    """Row indices by user, then timestamp, then ``tie_key`` (then row position, for repeated pairs)."""
    if inter.timestamp is None:
        raise ConfigError(f"{who} needs timestamps but the interactions have none; use split=random instead.")
    n = len(inter)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    t = inter.timestamp - inter.timestamp.min()
    ties = tie_key(inter.user, inter.item, seed)
    span = int(t.max()) + 1
    if inter.n_users * span < 2**62:  # one int64 (user, time) key: faster than a three-key lexsort
        return np.lexsort((ties, inter.user.astype(np.int64) * span + t))  # lexsort is stable
    return np.lexsort((ties, inter.timestamp, inter.user))


def _make(inter: Interactions, part: np.ndarray, protocol: str, settings: dict[str, Any],
          order: np.ndarray | None = None, time_ordered: bool = False) -> Split:
    """The split's parts; with ``order``, each part's rows follow it (time-ordered splits pass their order)."""
    if order is None:
        train, valid, test = (inter.subset(part == p) for p in (0, 1, 2))
    else:
        train, valid, test = (inter.subset(order[part[order] == p]) for p in (0, 1, 2))
    split = Split(
        train=train,
        valid=valid,
        test=test,
        protocol=protocol,
        settings=settings,
        time_ordered=time_ordered,
    )
    split.settings.update(
        n_train=len(split.train),
        n_valid=len(split.valid),
        n_test=len(split.test),
        users_with_test=int(np.unique(split.test.user).size),
    )
    return split


@dataclass
class RandomSplit:
    """Per-user random ratio split (train/valid/test), seeded.

    Every user keeps at least one training item; a user too small for the ratios gets no valid/test items
    rather than an empty train (see ratio_sizes).
    """

    ratios: Sequence[float] = (0.8, 0.1, 0.1)
    time_ordered: ClassVar[bool] = False  # test items are not each user's latest

    def __post_init__(self) -> None:
        self.ratios = _check_ratios(self.ratios, "split")

    @property
    def protocol(self) -> str:
        return "random_" + "_".join(_pct(r) for r in self.ratios)

    def split(self, inter: Interactions, seed: int) -> Split:
        rng = np.random.default_rng(seed)
        n = len(inter)
        order = np.argsort(inter.user.astype(np.int64) * n + rng.permutation(n))  # unique keys: no ties
        _, n_valid, n_test = ratio_sizes(inter.user_counts(), self.ratios)
        part = _assign(inter, order, n_valid, n_test)
        return _make(inter, part, self.protocol, {"ratios": list(self.ratios), "seed": int(seed)})


@dataclass
class TemporalSplit:
    """Per-user temporal ratio split: each user's oldest rows train, newest test (sizes as RandomSplit)."""

    ratios: Sequence[float] = (0.8, 0.1, 0.1)
    time_ordered: ClassVar[bool] = True  # each user's newest rows are test

    def __post_init__(self) -> None:
        self.ratios = _check_ratios(self.ratios, "split")

    @property
    def protocol(self) -> str:
        return "temporal_" + "_".join(_pct(r) for r in self.ratios)

    def split(self, inter: Interactions, seed: int) -> Split:
        order = _time_order(inter, "split=temporal", seed)
        _, n_valid, n_test = ratio_sizes(inter.user_counts(), self.ratios)
        part = _assign(inter, order, n_valid, n_test)
        return _make(inter, part, self.protocol, {"ratios": list(self.ratios), "seed": int(seed)}, order,
                     self.time_ordered)


@dataclass
class LeaveLastOut:
    """Leave-last-one-out for sequential models: per user by time, last -> test, second-to-last -> valid.

    Users with fewer than 3 interactions go entirely to train. The seed only breaks timestamp ties.
    """

    protocol: str = field(default="leave_last_one_out", init=False)
    time_ordered: ClassVar[bool] = True

    def split(self, inter: Interactions, seed: int) -> Split:
        order = _time_order(inter, "split=loo", seed)
        big = inter.user_counts() >= 3
        ones = big.astype(np.int64)
        part = _assign(inter, order, ones, ones)
        return _make(inter, part, self.protocol, {"seed": int(seed), "min_interactions": 3}, order,
                     self.time_ordered)


@dataclass
class GlobalTemporalSplit:
    """One time cut for everyone: rows before the valid_quantile time train, then valid, then test.

    Cut times are timestamps at those quantiles of all rows; rows at a cut time go to the later part, so
    same-second events are never split. Valid/test keep only rows whose user AND item occur in train (models
    cannot score cold users/items); the dropped counts are in Split.settings.
    """

    valid_quantile: float = 0.8
    test_quantile: float = 0.9
    time_ordered: ClassVar[bool] = True  # one cut in time for everyone

    def __post_init__(self) -> None:
        self.valid_quantile, self.test_quantile = float(self.valid_quantile), float(self.test_quantile)
        if not 0 < self.valid_quantile <= self.test_quantile <= 1:
            raise ConfigError(
                f"split.valid_quantile={self.valid_quantile} and test_quantile={self.test_quantile} need "
                "0 < valid_quantile <= test_quantile <= 1, e.g. 0.8 and 0.9."
            )

    @property
    def protocol(self) -> str:
        return f"global_temporal_{_pct(self.valid_quantile)}_{_pct(self.test_quantile)}"

    def split(self, inter: Interactions, seed: int) -> Split:
        if inter.timestamp is None:
            raise ConfigError(
                "split=global_temporal needs timestamps but the interactions have none; "
                "use split=random instead."
            )
        n = len(inter)
        settings: dict[str, Any] = {
            "valid_quantile": self.valid_quantile,
            "test_quantile": self.test_quantile,
            "seed": int(seed),
        }
        if n == 0:
            settings.update(valid_cut_time=None, test_cut_time=None, dropped_valid=0, dropped_test=0)
            return _make(inter, np.zeros(0, dtype=np.int8), self.protocol, settings, time_ordered=self.time_ordered)
        ts = np.sort(inter.timestamp)
        t_valid = ts[min(n - 1, int(np.floor(n * self.valid_quantile)))] if self.valid_quantile < 1 else None
        t_test = ts[min(n - 1, int(np.floor(n * self.test_quantile)))] if self.test_quantile < 1 else None
        part = np.zeros(n, dtype=np.int8)
        if t_valid is not None:
            part[inter.timestamp >= t_valid] = 1
        if t_test is not None:
            part[inter.timestamp >= t_test] = 2
        train = part == 0
        seen_u = np.zeros(inter.n_users, dtype=bool)
        seen_u[inter.user[train]] = True
        seen_i = np.zeros(inter.n_items, dtype=bool)
        seen_i[inter.item[train]] = True
        cold = ~train & ~(seen_u[inter.user] & seen_i[inter.item])
        settings.update(
            valid_cut_time=None if t_valid is None else int(t_valid),
            test_cut_time=None if t_test is None else int(t_test),
            dropped_valid=int((cold & (part == 1)).sum()),
            dropped_test=int((cold & (part == 2)).sum()),
        )
        part[cold] = 3  # in no part
        order = _time_order(inter, "split=global_temporal", seed)  # rows in time order: sequences agree
        return _make(inter, part, self.protocol, settings, order, self.time_ordered)


@dataclass
class ColdItemSplit:
    """Cold-start items: a seeded share of the items is held out of training entirely.

    ``cold_share`` of the items that occur in the interactions (rounded half up, at least one, never all) are
    chosen by a seeded hash of their code (item codes are the sorted item ids, so the choice depends neither on
    row order nor on how the data is stored); every interaction of a held-out item goes to test (the cold test
    set). The remaining (warm) interactions are split per user by ``ratios`` as RandomSplit does (sizes from
    ratio_sizes over each user's warm rows), into train, valid and the warm test set; the order within a user
    is a seeded hash of (user, item), so the split is independent of row order (unlike RandomSplit's row
    permutation). Validation therefore never holds a cold item: it is for model selection on what can be
    trained. A user whose items are all cold has no training rows (only cold test rows).
    """

    cold_share: float = 0.2
    ratios: Sequence[float] = (0.8, 0.1, 0.1)
    time_ordered: ClassVar[bool] = False

    def __post_init__(self) -> None:
        self.ratios = _check_ratios(self.ratios, "split")
        try:
            self.cold_share = float(self.cold_share)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"split.cold_share={self.cold_share!r} must be a number in (0, 1), e.g. 0.2") from exc
        if not 0 < self.cold_share < 1:
            raise ConfigError(f"split.cold_share={self.cold_share} must be in (0, 1), e.g. split.cold_share=0.2")

    @property
    def protocol(self) -> str:
        return f"cold_items_{_pct(self.cold_share)}_random_" + "_".join(_pct(r) for r in self.ratios)

    def cold_items(self, inter: Interactions, seed: int) -> np.ndarray:
        """Boolean mask over item codes: True for the held-out (cold) items under ``seed``."""
        present = np.flatnonzero(np.bincount(inter.item, minlength=inter.n_items) > 0)
        n_cold = int(np.floor(len(present) * self.cold_share + 0.5 + _EPS))
        n_cold = min(max(n_cold, 1), len(present) - 1) if len(present) > 1 else 0
        mix = np.uint64((int(seed) * GOLDEN + 0x1B873593C0FFEE11) & MASK64)
        keys = splitmix64(present.astype(np.uint64) ^ mix)
        mask = np.zeros(inter.n_items, dtype=bool)
        mask[present[np.argsort(keys, kind="stable")[:n_cold]]] = True
        return mask

    def split(self, inter: Interactions, seed: int) -> Split:
        cold = self.cold_items(inter, seed)
        is_cold = cold[inter.item]
        warm_rows = np.flatnonzero(~is_cold)
        warm = inter.subset(warm_rows)
        order = np.lexsort((np.arange(len(warm)), tie_key(warm.user, warm.item, seed), warm.user))
        _, n_valid, n_test = ratio_sizes(warm.user_counts(), self.ratios)
        part = np.full(len(inter), 2, dtype=np.int8)  # cold rows: test
        part[warm_rows] = _assign(warm, order, n_valid, n_test)
        settings = {"cold_share": self.cold_share, "ratios": list(self.ratios), "seed": int(seed),
                    "n_cold_items": int(cold.sum()), "n_cold_test": int(is_cold.sum()),
                    "users_without_train": int(((inter.user_counts() > 0) & (warm.user_counts() == 0)).sum())}
        return _make(inter, part, self.protocol, settings)


def time_periods(timestamps: np.ndarray, n_periods: int) -> tuple[np.ndarray, list[int]]:
    """Period of each row under ``n_periods`` global time cuts (the continual task's periods), and the cut times.

    Cut p (p = 1..n_periods-1) is the timestamp at the p/n_periods quantile of all rows (as GlobalTemporalSplit
    cuts); rows at a cut time go to the later period, so same-second events never straddle a cut. Periods are
    contiguous in time, disjoint, and cover every row; with heavy ties a period can be empty.
    """
    if int(n_periods) < 2:
        raise ConfigError(f"task.n_periods={n_periods} must be at least 2 (period 0 trains, later ones arrive).")
    ts = np.sort(np.asarray(timestamps))
    n = len(ts)
    if n == 0:
        return np.zeros(0, dtype=np.int64), []
    cuts = [int(ts[min(n - 1, int(np.floor(n * p / n_periods)))]) for p in range(1, int(n_periods))]
    return np.searchsorted(np.asarray(cuts), np.asarray(timestamps), side="right").astype(np.int64), cuts
