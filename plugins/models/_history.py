"""The histories models are scored from, as lists of item codes, and back (``Recommender.history`` and
``score_histories``: the deletion test of explanations re-scores users whose history was edited)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from recux.data import Interactions
from recux.sequences import user_histories


def training_rows(train: sp.csr_matrix | None, users: np.ndarray) -> list[np.ndarray]:
    """Each user's distinct training item codes (sorted): the binary row a linear item-item model reads."""
    if train is None:
        raise RuntimeError("history() called before fit")
    return [train.indices[train.indptr[u]:train.indptr[u + 1]].astype(np.int64) for u in np.asarray(users)]


def binary_rows(histories: Sequence[np.ndarray], n_items: int) -> sp.csr_matrix:
    """(len(histories) x n_items) binary CSR: row r has 1.0 at the distinct items of ``histories[r]``."""
    rows = [np.unique(np.asarray(h, dtype=np.int64)) for h in histories]
    indptr = np.concatenate([[0], np.cumsum([len(r) for r in rows])]).astype(np.int64)
    indices = np.concatenate(rows) if rows else np.zeros(0, np.int64)
    return sp.csr_matrix((np.ones(len(indices), np.float32), indices, indptr), shape=(len(rows), n_items))


def time_ordered(inter: Interactions | None, users: np.ndarray) -> list[np.ndarray]:
    """Each user's item codes in time order (ties keep the log order; repeats kept)."""
    if inter is None:
        raise RuntimeError("history() called before the model was fitted or conditioned")
    return user_histories(inter, users)


def as_interactions(histories: Sequence[np.ndarray], n_items: int) -> Interactions:
    """Histories as interactions of users 0..len-1, timestamps = positions (so time order = list order)."""
    lengths = np.array([len(h) for h in histories], dtype=np.int64)
    items = np.concatenate([np.asarray(h, np.int64) for h in histories]) if len(histories) else np.zeros(0, np.int64)
    user = np.repeat(np.arange(len(histories)), lengths)
    pos = np.arange(len(items)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    return Interactions(user=user, item=items, n_users=len(histories), n_items=n_items, timestamp=pos)
