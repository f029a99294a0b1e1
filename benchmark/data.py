"""In-memory containers: interactions as flat integer-coded arrays, a dataset with raw-id maps and features,
and a split into train/validation/test.

Codes are dense: users are 0..n_users-1 and items 0..n_items-1; ``Dataset.user_ids[code]`` gives the raw id.
Feature tables are polars DataFrames whose row i describes code i.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import polars as pl
import scipy.sparse as sp


@dataclass(frozen=True)
class Interactions:
    """User-item events as parallel arrays (one row per event)."""

    user: np.ndarray  # int32 codes
    item: np.ndarray  # int32 codes
    n_users: int
    n_items: int
    rating: np.ndarray | None = None  # float32
    timestamp: np.ndarray | None = None  # int64 (seconds)

    def __post_init__(self) -> None:
        object.__setattr__(self, "user", np.ascontiguousarray(self.user, dtype=np.int32))
        object.__setattr__(self, "item", np.ascontiguousarray(self.item, dtype=np.int32))
        if self.rating is not None:
            object.__setattr__(self, "rating", np.ascontiguousarray(self.rating, dtype=np.float32))
        if self.timestamp is not None:
            object.__setattr__(self, "timestamp", np.ascontiguousarray(self.timestamp, dtype=np.int64))
        n = len(self.user)
        for name in ("item", "rating", "timestamp"):
            arr = getattr(self, name)
            if arr is not None and len(arr) != n:
                raise ValueError(f"Interactions.{name} has {len(arr)} rows, user has {n}")

    def __len__(self) -> int:
        return len(self.user)

    def subset(self, mask_or_index: np.ndarray) -> Interactions:
        """Rows selected by a boolean mask or an index array; the code space is unchanged."""
        sel = mask_or_index
        return Interactions(
            user=self.user[sel],
            item=self.item[sel],
            n_users=self.n_users,
            n_items=self.n_items,
            rating=None if self.rating is None else self.rating[sel],
            timestamp=None if self.timestamp is None else self.timestamp[sel],
        )

    def csr(self, binary: bool = True) -> sp.csr_matrix:
        """users x items CSR matrix (duplicates summed, or 1.0 when binary); indices sorted per row."""
        data = np.ones(len(self), dtype=np.float32)
        m = sp.csr_matrix((data, (self.user, self.item)), shape=(self.n_users, self.n_items), dtype=np.float32)
        m.sum_duplicates()
        if binary:
            m.data[:] = 1.0
        m.sort_indices()
        return m

    def item_counts(self) -> np.ndarray:
        """Number of events per item (int64, length n_items): the popularity used by beyond-accuracy metrics."""
        return np.bincount(self.item, minlength=self.n_items).astype(np.int64)

    def user_counts(self) -> np.ndarray:
        return np.bincount(self.user, minlength=self.n_users).astype(np.int64)

    def sort_by_user_time(self) -> Interactions:
        """Rows ordered by user, then timestamp (stable; original order breaks ties)."""
        keys = (self.user,) if self.timestamp is None else (self.timestamp, self.user)
        order = np.lexsort(keys)
        return self.subset(order)


@dataclass
class Dataset:
    """A loaded dataset: interactions plus raw-id maps, features and provenance."""

    name: str
    interactions: Interactions
    user_ids: np.ndarray  # raw user id of each code
    item_ids: np.ndarray  # raw item id of each code
    user_features: pl.DataFrame | None = None  # row i = user code i; first column "user_id"
    item_features: pl.DataFrame | None = None  # row i = item code i; first column "item_id"; "text" if any
    true_scores: np.ndarray | None = None  # synthetic worlds: (n_users, n_items) true preference
    info: dict[str, Any] = field(default_factory=dict)  # source, checksum, preprocessing applied, ...

    @property
    def n_users(self) -> int:
        return self.interactions.n_users

    @property
    def n_items(self) -> int:
        return self.interactions.n_items

    def to_frame(self, inter: Interactions | None = None) -> pl.DataFrame:
        """Interactions with raw ids (user_id, item_id, rating?, timestamp?)."""
        inter = self.interactions if inter is None else inter
        cols: dict[str, Any] = {"user_id": self.user_ids[inter.user], "item_id": self.item_ids[inter.item]}
        if inter.rating is not None:
            cols["rating"] = inter.rating
        if inter.timestamp is not None:
            cols["timestamp"] = inter.timestamp
        return pl.DataFrame(cols)

    @classmethod
    def from_frame(
        cls,
        name: str,
        frame: pl.DataFrame,
        user_features: pl.DataFrame | None = None,
        item_features: pl.DataFrame | None = None,
        info: dict[str, Any] | None = None,
    ) -> Dataset:
        """Encode a frame with columns user_id, item_id[, rating][, timestamp] into dense codes.

        Codes follow the sorted raw ids, so they are stable across runs. Feature frames (keyed by
        ``user_id``/``item_id``) are aligned to the codes; ids missing from them get nulls.
        """
        user_ids = np.sort(frame["user_id"].unique().to_numpy())
        item_ids = np.sort(frame["item_id"].unique().to_numpy())
        u = np.searchsorted(user_ids, frame["user_id"].to_numpy())
        i = np.searchsorted(item_ids, frame["item_id"].to_numpy())
        inter = Interactions(
            user=u,
            item=i,
            n_users=len(user_ids),
            n_items=len(item_ids),
            rating=frame["rating"].to_numpy() if "rating" in frame.columns else None,
            timestamp=frame["timestamp"].to_numpy() if "timestamp" in frame.columns else None,
        )
        return cls(
            name=name,
            interactions=inter,
            user_ids=user_ids,
            item_ids=item_ids,
            user_features=_align(user_features, "user_id", user_ids),
            item_features=_align(item_features, "item_id", item_ids),
            info=dict(info or {}),
        )

    def reindexed(self, keep: Interactions) -> Dataset:
        """Drop users/items with no remaining interactions and re-code densely (after filtering)."""
        users, items = present_codes(keep.user, self.n_users), present_codes(keep.item, self.n_items)
        umap = np.full(self.n_users, -1, dtype=np.int64)
        umap[users] = np.arange(len(users))
        imap = np.full(self.n_items, -1, dtype=np.int64)
        imap[items] = np.arange(len(items))
        inter = Interactions(
            user=umap[keep.user], item=imap[keep.item], n_users=len(users), n_items=len(items),
            rating=keep.rating, timestamp=keep.timestamp,
        )
        return replace(
            self,
            interactions=inter,
            user_ids=self.user_ids[users],
            item_ids=self.item_ids[items],
            user_features=None if self.user_features is None else self.user_features[users],
            item_features=None if self.item_features is None else self.item_features[items],
            true_scores=None if self.true_scores is None else self.true_scores[np.ix_(users, items)],
        )


def present_codes(codes: np.ndarray, n: int) -> np.ndarray:
    """The distinct codes of ``codes`` in increasing order (``np.unique`` for codes in 0..n-1, without a sort)."""
    return np.flatnonzero(np.bincount(codes, minlength=n))


def _align(features: pl.DataFrame | None, key: str, ids: np.ndarray) -> pl.DataFrame | None:
    if features is None:
        return None
    ids_frame = pl.DataFrame({key: ids})
    features = features.with_columns(pl.col(key).cast(ids_frame[key].dtype))
    out = ids_frame.join(features.unique(subset=key, keep="first"), on=key, how="left", maintain_order="left")
    return out


@dataclass(frozen=True)
class Split:
    """Train/validation/test interactions over the same code space, and the protocol that made them."""

    train: Interactions
    valid: Interactions
    test: Interactions
    protocol: str  # e.g. "random_80_10_10", "leave_last_one_out"
    settings: dict[str, Any] = field(default_factory=dict)
    time_ordered: bool = False  # test items come after each user's training items (sequential models allowed)

    @property
    def n_users(self) -> int:
        return self.train.n_users

    @property
    def n_items(self) -> int:
        return self.train.n_items
