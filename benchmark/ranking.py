"""Full-catalogue top-k ranking in user batches, with already-seen items masked out.

Memory stays at one (batch x n_items) score block; the result is (users x k) int32 item codes and their
scores. A user with fewer than k eligible items gets -1 padding (score -inf) in the tail.

Tie rule (the one rule of recux; the pipeline, ``evaluate_scores`` and ``recux-evaluate --score-col`` all follow
it): among equal scores the lower item code ranks first. Item codes number the sorted raw item ids
(``Dataset.from_frame``): integer ids in numeric order, any other ids in text order. So equal scores put the
item with the smaller id first: item 9 before item 10 when ids are integers, "a10" before "a9" when they are
text. Results never depend on the batch size or on the order of rows in a file.
"""

from __future__ import annotations

from collections.abc import Callable

import numba as nb
import numpy as np
import scipy.sparse as sp

ScoreFn = Callable[[np.ndarray], "np.ndarray"]


@nb.njit(inline="always")
def _worse(s_a: float, i_a: int, s_b: float, i_b: int) -> bool:
    """True when (s_a, i_a) ranks below (s_b, i_b): lower score, or equal score and higher item code."""
    return s_a < s_b or (s_a == s_b and i_a > i_b)


@nb.njit(parallel=True, cache=True)
def topk_kernel(scores: np.ndarray, k: int, out_items: np.ndarray, out_scores: np.ndarray) -> None:
    """Per row, a size-k min-heap keyed by (score, -item); -inf and NaN scores are ineligible."""
    n_rows, n_cols = scores.shape
    for r in nb.prange(n_rows):
        heap_s = np.empty(k, dtype=np.float64)
        heap_i = np.empty(k, dtype=np.int64)
        size = 0
        row = scores[r]
        for j in range(n_cols):
            s = row[j]
            if not (s > -np.inf):  # -inf or NaN
                continue
            if size < k:
                # sift up
                pos = size
                size += 1
                while pos > 0:
                    parent = (pos - 1) // 2
                    if _worse(s, j, heap_s[parent], heap_i[parent]):
                        heap_s[pos] = heap_s[parent]
                        heap_i[pos] = heap_i[parent]
                        pos = parent
                    else:
                        break
                heap_s[pos] = s
                heap_i[pos] = j
            elif _worse(heap_s[0], heap_i[0], s, j):
                # replace root, sift down
                pos = 0
                while True:
                    c = 2 * pos + 1
                    if c >= size:
                        break
                    if c + 1 < size and _worse(heap_s[c + 1], heap_i[c + 1], heap_s[c], heap_i[c]):
                        c += 1
                    if _worse(heap_s[c], heap_i[c], s, j):
                        heap_s[pos] = heap_s[c]
                        heap_i[pos] = heap_i[c]
                        pos = c
                    else:
                        break
                heap_s[pos] = s
                heap_i[pos] = j
        # pop worst to the back: yields best-first order
        for t in range(size - 1, -1, -1):
            out_scores[r, t] = heap_s[0]
            out_items[r, t] = heap_i[0]
            last_s = heap_s[t]
            last_i = heap_i[t]
            pos = 0
            while True:
                c = 2 * pos + 1
                if c >= t:
                    break
                if c + 1 < t and _worse(heap_s[c + 1], heap_i[c + 1], heap_s[c], heap_i[c]):
                    c += 1
                if _worse(heap_s[c], heap_i[c], last_s, last_i):
                    heap_s[pos] = heap_s[c]
                    heap_i[pos] = heap_i[c]
                    pos = c
                else:
                    break
            heap_s[pos] = last_s
            heap_i[pos] = last_i
        for t in range(size, k):
            out_items[r, t] = -1
            out_scores[r, t] = -np.inf


def topk_from_scores(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-k item codes (int32) and scores (float32) of each row of a dense score block."""
    scores = np.ascontiguousarray(scores)
    if scores.dtype not in (np.float32, np.float64):
        scores = scores.astype(np.float32)
    n = scores.shape[0]
    items = np.empty((n, k), dtype=np.int32)
    vals = np.empty((n, k), dtype=np.float32)
    if n:
        topk_kernel(scores, k, items, vals)
    return items, vals


def mask_rows(scores: np.ndarray, rows: np.ndarray, exclude: sp.csr_matrix) -> None:
    """Set scores[b, j] = -inf for every item j of exclude[rows[b]] (in place)."""
    indptr = exclude.indptr
    starts, ends = indptr[rows], indptr[rows + 1]
    counts = (ends - starts).astype(np.int64)
    if counts.sum() == 0:
        return
    r = np.repeat(np.arange(len(rows)), counts)
    idx = np.concatenate([exclude.indices[s:e] for s, e in zip(starts, ends, strict=True)])
    scores[r, idx] = -np.inf


def to_numpy(block) -> np.ndarray:
    """A score block as numpy: arrays as they are, torch tensors (any device, as float32) without importing
    torch here, anything else through ``np.asarray``."""
    if isinstance(block, np.ndarray):
        return block
    if hasattr(block, "detach"):
        return block.detach().float().cpu().numpy()
    return np.asarray(block)


def rank_topk(
    score_fn: ScoreFn,
    users: np.ndarray,
    k: int,
    exclude: sp.csr_matrix | None = None,
    batch_size: int = 1024,
) -> tuple[np.ndarray, np.ndarray]:
    """Score the whole catalogue for ``users`` in batches, mask ``exclude`` rows, keep the top k.

    ``score_fn(user_codes)`` returns a (len(user_codes), n_items) array or tensor; higher is better.
    """
    users = np.asarray(users, dtype=np.int64)
    items_out = np.empty((len(users), k), dtype=np.int32)
    scores_out = np.empty((len(users), k), dtype=np.float32)
    for start in range(0, len(users), batch_size):
        batch = users[start:start + batch_size]
        block = np.array(to_numpy(score_fn(batch)), dtype=np.float32, copy=True)
        if block.shape[0] != len(batch):
            raise ValueError(f"score_fn returned {block.shape[0]} rows for {len(batch)} users")
        if exclude is not None:
            mask_rows(block, batch, exclude)
        it, sc = topk_from_scores(block, k)
        items_out[start:start + len(batch)] = it
        scores_out[start:start + len(batch)] = sc
    return items_out, scores_out
