"""Per-user chronological item sequences for sequential models, built once with whole-array NumPy ops.

Token convention inside sequence tensors: item code c is token c + 1 and 0 is padding (sequences are
left-padded, so the most recent item is always in the last column). ``SequenceBatches`` yields shuffled
row subsets of a prebuilt (rows x width) matrix; torch is imported only when batches are made.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from recux.batches import EpochBatches
from recux.data import Interactions
from recux.errors import ConfigError

PAD = 0


def chronological(inter: Interactions) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Items of each user in time order: (tokens, starts, counts) with tokens = item code + 1 sorted by
    user, then timestamp (ties keep the row order); user u's tokens are tokens[starts[u]:][:counts[u]]."""
    s = inter.sort_by_user_time()
    counts = np.bincount(s.user, minlength=inter.n_users).astype(np.int64)
    starts = np.zeros(inter.n_users, dtype=np.int64)
    np.cumsum(counts[:-1], out=starts[1:])
    return s.item.astype(np.int64) + 1, starts, counts


def user_histories(inter: Interactions, users: np.ndarray) -> list[np.ndarray]:
    """Each user's item codes in time order (ties keep the row order; repeats kept)."""
    tokens, starts, counts = chronological(inter)
    return [tokens[starts[u]:starts[u] + counts[u]] - 1 for u in np.asarray(users)]


def _gather(tokens: np.ndarray, ends: np.ndarray, lo: np.ndarray, width: int) -> np.ndarray:
    """Row r = tokens[max(lo[r], ends[r] - width):ends[r]] right-aligned in a zero row of ``width``
    (ends/lo are absolute offsets into ``tokens``)."""
    cols = np.arange(width, dtype=np.int64) - width  # -width..-1
    pos = ends[:, None] + cols[None, :]
    valid = pos >= lo[:, None]
    out = np.zeros((len(ends), width), dtype=np.int64)
    out[valid] = tokens[pos[valid]]
    return out


def last_items(inter: Interactions, max_len: int) -> np.ndarray:
    """(n_users, max_len) int64 tokens: each user's most recent ``max_len`` items in time order, left-padded
    with 0. Users without interactions get an all-padding row. This is what a model scores from."""
    if max_len < 1:
        raise ConfigError(f"max_len must be >= 1, got {max_len}")
    tokens, starts, counts = chronological(inter)
    return _gather(tokens, starts + counts, starts, int(max_len))


def windows(
    inter: Interactions, width: int, stride: int | None = None, min_items: int = 2
) -> tuple[np.ndarray, np.ndarray]:
    """Training windows of each user's history: (rows (n_rows, width) int64 tokens, row user codes).

    A user's first window holds their last ``width`` items; each further window ends ``stride`` items
    earlier (default ``width - 1``: consecutive windows share one item, so with next-item targets every item
    after a user's first is a target in exactly one window), until the window reaches the user's first item.
    Short windows are left-padded; windows with fewer than ``min_items`` items are dropped.
    """
    if width < 2:
        raise ConfigError(f"sequence window width must be >= 2, got {width}")
    stride = width - 1 if stride is None else int(stride)
    if stride < 1:
        raise ConfigError(f"window stride must be >= 1, got {stride}")
    tokens, starts, counts = chronological(inter)
    n_win = np.where(counts > 0, 1 + np.ceil(np.maximum(counts - width, 0) / stride).astype(np.int64), 0)
    users = np.repeat(np.arange(inter.n_users, dtype=np.int64), n_win)
    first = np.zeros(len(n_win), dtype=np.int64)
    np.cumsum(n_win[:-1], out=first[1:])
    k = np.arange(len(users), dtype=np.int64) - first[users]  # window index within the user, 0 = latest
    ends = starts[users] + counts[users] - k * stride
    rows = _gather(tokens, ends, starts[users], int(width))
    keep = (rows != PAD).sum(1) >= int(min_items)
    return rows[keep], users[keep]


def mask_items(
    rows: Any, generator: Any, prob: float, mask_token: int, last_prob: float = 0.0
) -> tuple[Any, Any]:
    """Cloze masking for BERT-style training: (inputs, labels) LongTensors shaped like ``rows``.

    Each real token is replaced by ``mask_token`` with probability ``prob``; a row where none was drawn gets
    its last item masked, so every row has a target. With probability ``last_prob`` a row instead masks
    only its last item (BERT4Rec's "force last" instances, which match next-item prediction). labels hold
    the hidden tokens there and 0 elsewhere.
    """
    import torch

    real = rows != PAD
    masked = (torch.rand(rows.shape, generator=generator) < prob) & real
    if last_prob > 0:
        last_only = torch.rand(len(rows), generator=generator) < last_prob
        masked[last_only] = False
    none = ~masked.any(1) & real.any(1)
    masked[none, -1] = True  # left padding: the last column is the most recent item
    inputs = torch.where(masked, torch.full_like(rows, mask_token), rows)
    labels = torch.where(masked, rows, torch.zeros_like(rows))
    return inputs, labels


class SequenceBatches(EpochBatches):
    """Shuffled batches of rows of a prebuilt (n_rows x width) token matrix; each ``iter()`` is one epoch.

    The order (and anything ``transform(batch, generator)`` draws, e.g. masking) depends only on
    (seed, epoch number), so runs repeat exactly; rank slicing: see ``recux.batches.EpochBatches``.
    """

    def __init__(
        self,
        rows: np.ndarray,
        batch_size: int = 128,
        seed: int = 0,
        transform: Callable[[Any, Any], Any] | None = None,
    ) -> None:
        import torch

        if len(rows) == 0:
            raise ConfigError("no training sequences (every user has too few training interactions); "
                              "check the split or lower the model's min sequence length")
        super().__init__(len(rows), batch_size, seed)
        self.rows = torch.as_tensor(np.asarray(rows), dtype=torch.long)
        self.transform = transform

    def _epoch(self, perm: Any, gen: Any) -> Iterator[Any]:
        for idx in self._chunks(perm):
            batch = self.rows[idx]
            yield batch if self.transform is None else self.transform(batch, gen)
