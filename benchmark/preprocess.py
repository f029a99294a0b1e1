"""Preprocessing: positives by rating threshold, duplicate handling, iterative k-core, dense re-coding.

Each step's settings and the counts before/after are recorded in ``ds.info["preprocessing"]`` so results
say exactly which data they were computed on.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from recux.data import Dataset, Interactions
from recux.errors import ConfigError, DataError

DUPLICATES = ("keep_last", "keep_first", "keep_all", "error")


def _counts(inter: Interactions) -> dict[str, int]:
    """Distinct users and items (by presence counts: no sort of the rows) and rows."""
    return {
        "users": int(np.count_nonzero(np.bincount(inter.user, minlength=inter.n_users))),
        "items": int(np.count_nonzero(np.bincount(inter.item, minlength=inter.n_items))),
        "interactions": len(inter),
    }


@dataclass
class Preprocess:
    """Turn a raw dataset into the one models see: positives, unique pairs, k-core, dense codes.

    rating_threshold: keep rows with rating >= threshold (None keeps all: the usual ML-100K protocol).
    min_user_interactions / min_item_interactions: iterative k-core, repeated until no row is removed.
    duplicates: repeated (user, item) pairs: keep_last / keep_first (by timestamp, then row order),
        keep_all, or error.
    """

    rating_threshold: float | None = None
    min_user_interactions: int = 0
    min_item_interactions: int = 0
    duplicates: str = "keep_last"

    def __post_init__(self) -> None:
        if self.duplicates not in DUPLICATES:
            raise ConfigError(
                f"preprocess.duplicates={self.duplicates!r}; use one of {', '.join(DUPLICATES)}."
            )
        for name in ("min_user_interactions", "min_item_interactions"):
            value = getattr(self, name)
            if int(value) != value or value < 0:
                raise ConfigError(f"preprocess.{name}={value!r}; it must be a whole number >= 0.")
            setattr(self, name, int(value))
        if self.rating_threshold is not None:
            self.rating_threshold = float(self.rating_threshold)

    def apply(self, ds: Dataset) -> Dataset:
        inter = ds.interactions
        report: dict[str, Any] = {"settings": asdict(self), "before": _counts(inter)}

        if self.rating_threshold is not None:
            if inter.rating is None:
                raise DataError(
                    f"preprocess.rating_threshold={self.rating_threshold} but dataset '{ds.name}' has no "
                    "ratings. Set preprocess.rating_threshold=null (every interaction is a positive)."
                )
            inter = inter.subset(inter.rating >= self.rating_threshold)
            report["after_threshold"] = _counts(inter)
            if len(inter) == 0:
                lo, hi = float(ds.interactions.rating.min()), float(ds.interactions.rating.max())
                raise DataError(
                    f"preprocess.rating_threshold={self.rating_threshold} removed every interaction of "
                    f"'{ds.name}' (ratings range {lo:g}..{hi:g}). Lower the threshold or set it to null."
                )

        inter, n_dup = self._dedupe(inter, ds)
        report["duplicates_removed"] = n_dup
        report["after_duplicates"] = _counts(inter)

        inter, rounds = k_core(inter, self.min_user_interactions, self.min_item_interactions)
        report["k_core_rounds"] = rounds
        if len(inter) == 0:
            raise DataError(
                f"k-core filtering (preprocess.min_user_interactions={self.min_user_interactions}, "
                f"min_item_interactions={self.min_item_interactions}) removed every interaction of "
                f"'{ds.name}' ({report['after_duplicates']['interactions']} before it). Lower these minimums."
            )
        report["after"] = _counts(inter)
        out = ds.reindexed(inter)
        out.info = {**ds.info, "preprocessing": report}
        return out

    def _dedupe(self, inter: Interactions, ds: Dataset) -> tuple[Interactions, int]:
        if self.duplicates == "keep_all" or len(inter) == 0:
            return inter, 0
        if not _has_repeated_pair(inter):  # one sort of a single key; the four-key sort only when needed
            return inter, 0
        n = len(inter)
        row = np.arange(n)
        time = inter.timestamp if inter.timestamp is not None else row
        # Sort by (user, item, time, row): the first of each pair is the oldest, the last the newest.
        order = np.lexsort((row, time, inter.item, inter.user))
        u, i = inter.user[order], inter.item[order]
        new_pair = np.ones(n, dtype=bool)
        new_pair[1:] = (u[1:] != u[:-1]) | (i[1:] != i[:-1])
        n_dup = n - int(new_pair.sum())
        if n_dup == 0:
            return inter, 0
        if self.duplicates == "error":
            first = int(np.flatnonzero(~new_pair)[0])
            uid, iid = ds.user_ids[u[first]].tolist(), ds.item_ids[i[first]].tolist()
            raise DataError(
                f"dataset '{ds.name}' has {n_dup} repeated (user, item) interactions, e.g. user {uid!r} "
                f"and item {iid!r}. Set preprocess.duplicates to keep_last, keep_first or keep_all."
            )
        if self.duplicates == "keep_first":
            chosen = order[new_pair]
        else:  # keep_last: the row before each new pair (and the very last row)
            last = np.ones(n, dtype=bool)
            last[:-1] = new_pair[1:]
            chosen = order[last]
        return inter.subset(np.sort(chosen)), n_dup


def _has_repeated_pair(inter: Interactions) -> bool:
    """Whether some (user, item) pair occurs twice: a sort of one int64 key per row."""
    key = np.sort(inter.user.astype(np.int64) * max(inter.n_items, 1) + inter.item)
    return bool(np.any(key[1:] == key[:-1]))


def k_core(inter: Interactions, min_user: int, min_item: int) -> tuple[Interactions, int]:
    """Iteratively drop rows of users with < min_user rows and items with < min_item rows until stable.

    Returns the kept rows (original order) and the number of filtering rounds that removed something.
    """
    if min_user <= 1 and min_item <= 1:
        return inter, 0
    keep = np.ones(len(inter), dtype=bool)
    rounds = 0
    while True:
        u, i = inter.user[keep], inter.item[keep]
        ok = np.ones(len(u), dtype=bool)
        if min_user > 1:
            ok &= np.bincount(u, minlength=inter.n_users)[u] >= min_user
        if min_item > 1:
            ok &= np.bincount(i, minlength=inter.n_items)[i] >= min_item
        if ok.all():
            break
        idx = np.flatnonzero(keep)
        keep[idx[~ok]] = False
        rounds += 1
    return inter.subset(keep), rounds
