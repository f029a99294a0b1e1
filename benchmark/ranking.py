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


_BLOCK = 64  # columns whose maximum is checked against the heap's minimum before any of them is looked at


@nb.njit(inline="always")
def _sift_down(heap_s, heap_i, size: int, s: float, j: int) -> None:
    """Put (s, j) at the root of a min-heap of ``size`` entries and restore the heap order."""
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


@nb.njit(inline="always")
def _push(heap_s, heap_i, size: int, s: float, j: int) -> None:
    """Add (s, j) as entry ``size`` of a min-heap (sift up)."""
    pos = size
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


@nb.njit(inline="always")
def _scan(row, j0, j1, k, size, p, p_end, ex_indices, heap_s, heap_i):
    """Offer items j0..j1-1 of ``row`` to the heap (``size`` entries); returns the new size and position in
    the row's sorted exclusion list ``ex_indices[p:p_end]``."""
    for j in range(j0, j1):
        s = row[j]
        if not (s > -np.inf):  # -inf or NaN
            continue
        if size == k and not (s > heap_s[0]):
            continue
        while p < p_end and ex_indices[p] < j:
            p += 1
        if p < p_end and ex_indices[p] == j:  # already seen: masked
            continue
        if size < k:
            _push(heap_s, heap_i, size, s, j)
            size += 1
        else:
            _sift_down(heap_s, heap_i, size, s, j)
    return size, p


@nb.njit(cache=True)
def _topk_row(row, k, ex_indices, p, p_end, out_items, out_scores):
    """One row of ``masked_topk_kernel`` (a function of its own: inside a prange body LLVM does not
    vectorise the block test, about 5x slower)."""
    heap_s = np.empty(k, dtype=np.float64)
    heap_i = np.empty(k, dtype=np.int64)
    size = 0
    n_cols = row.shape[0]
    full = n_cols - n_cols % _BLOCK
    for j0 in range(0, full, _BLOCK):
        if size == k:
            threshold = heap_s[0]
            above = False
            for j in range(_BLOCK):
                above |= row[j0 + j] > threshold
            if not above:
                continue
        size, p = _scan(row, j0, j0 + _BLOCK, k, size, p, p_end, ex_indices, heap_s, heap_i)
    size, p = _scan(row, full, n_cols, k, size, p, p_end, ex_indices, heap_s, heap_i)
    # pop worst to the back: yields best-first order
    for t in range(size - 1, -1, -1):
        out_scores[t] = heap_s[0]
        out_items[t] = heap_i[0]
        _sift_down(heap_s, heap_i, t, heap_s[t], heap_i[t])
    for t in range(size, k):
        out_items[t] = -1
        out_scores[t] = -np.inf


@nb.njit(parallel=True, cache=True)
def masked_topk_kernel(scores, k, ex_indptr, ex_indices, ex_rows, out_items, out_scores):
    """Per row r, the k best (score, item) of ``scores[r]`` by the tie rule, leaving out -inf and NaN scores
    and the items ``ex_indices[ex_indptr[ex_rows[r]]:ex_indptr[ex_rows[r] + 1]]`` (sorted within each row).

    A size-k min-heap keyed by (score, -item). Columns are scanned in increasing item code, so once the heap
    is full a later item ties with the heap's minimum only at a higher code: it enters iff its score is
    strictly greater. A block of ``_BLOCK`` columns with no greater score is skipped whole (exactly the
    items that would not enter one by one; the test is branch-free over a constant trip count, so LLVM
    vectorises it); the excluded items are met by one forward walk per row.
    """
    for r in nb.prange(scores.shape[0]):
        u = ex_rows[r]
        _topk_row(scores[r], k, ex_indices, ex_indptr[u], ex_indptr[u + 1], out_items[r], out_scores[r])


_NO_EXCLUDE = (np.zeros(1, dtype=np.int64), np.zeros(0, dtype=np.int32))


def topk_from_scores(scores: np.ndarray, k: int, exclude: sp.csr_matrix | None = None,
                     rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Top-k item codes (int32) and scores (float32) of each row of a dense score block; with ``exclude``,
    row r leaves out the items of ``exclude[rows[r]]`` (``rows`` default 0..n-1). The block is only read."""
    n = len(scores)
    if exclude is None:
        return _topk_block(scores, k, *_NO_EXCLUDE, np.zeros(n, dtype=np.int64))
    rows = np.arange(n, dtype=np.int64) if rows is None else np.asarray(rows, dtype=np.int64)
    return _topk_block(scores, k, *_sorted_rows(exclude), rows)


def _topk_block(scores: np.ndarray, k: int, indptr: np.ndarray, indices: np.ndarray, rows: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
    scores = np.ascontiguousarray(scores)
    if scores.dtype not in (np.float32, np.float64):
        scores = scores.astype(np.float32)
    n = scores.shape[0]
    items = np.empty((n, k), dtype=np.int32)
    vals = np.empty((n, k), dtype=np.float32)
    if n:
        masked_topk_kernel(scores, k, indptr, indices, rows, items, vals)
    return items, vals


def _sorted_rows(exclude: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
    """(indptr int64, indices int32) of a CSR matrix with sorted indices within each row (a copy if needed)."""
    if not exclude.has_sorted_indices:
        exclude = exclude.copy()
        exclude.sort_indices()
    return (np.asarray(exclude.indptr, dtype=np.int64), np.asarray(exclude.indices, dtype=np.int32))


def mask_rows(scores: np.ndarray, rows: np.ndarray, exclude: sp.csr_matrix) -> None:
    """Set scores[b, j] = -inf for every item j of exclude[rows[b]] (in place)."""
    r, idx = excluded_pairs(exclude, rows)
    scores[r, idx] = -np.inf


def excluded_pairs(exclude: sp.csr_matrix, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(position b in ``rows``, item) of every stored entry of ``exclude[rows[b]]``, without a loop per row."""
    indptr = exclude.indptr
    rows = np.asarray(rows, dtype=np.int64)
    starts = indptr[rows].astype(np.int64)
    counts = indptr[rows + 1].astype(np.int64) - starts
    total = int(counts.sum())
    r = np.repeat(np.arange(len(rows), dtype=np.int64), counts)
    offsets = np.cumsum(counts) - counts  # where each row's entries start in the output
    pos = np.arange(total, dtype=np.int64) - offsets[r] + starts[r]
    return r, exclude.indices[pos]


def to_numpy(block) -> np.ndarray:
    """A score block as numpy: arrays as they are, torch tensors (any device, as float32) without importing
    torch here, anything else through ``np.asarray``."""
    if isinstance(block, np.ndarray):
        return block
    if hasattr(block, "detach"):
        return block.detach().float().cpu().numpy()
    return np.asarray(block)


def on_device(block) -> bool:
    """True for a torch tensor that lives off the CPU (e.g. on a GPU): its top-k is taken there."""
    return hasattr(block, "detach") and getattr(getattr(block, "device", None), "type", "cpu") != "cpu"


def rank_topk(
    score_fn: ScoreFn,
    users: np.ndarray,
    k: int,
    exclude: sp.csr_matrix | None = None,
    batch_size: int = 1024,
    device_topk: bool | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Score the whole catalogue for ``users`` in batches, leave out ``exclude`` rows, keep the top k.

    ``score_fn(user_codes)`` returns a (len(user_codes), n_items) array or tensor; higher is better. A block
    that is a torch tensor on a GPU is ranked there (``recux.ranking_torch``, same tie rule) and only the
    (batch x k) result comes back to the host; ``device_topk`` forces that path (True, e.g. for CPU tensors in
    tests) or the host kernel (False); None decides per block.
    """
    users = np.asarray(users, dtype=np.int64)
    items_out = np.empty((len(users), k), dtype=np.int32)
    scores_out = np.empty((len(users), k), dtype=np.float32)
    if exclude is None:
        indptr, indices, zero_rows = *_NO_EXCLUDE, np.zeros(min(len(users), batch_size), dtype=np.int64)
    else:
        indptr, indices = _sorted_rows(exclude)
    for start in range(0, len(users), batch_size):
        batch = users[start:start + batch_size]
        raw = score_fn(batch)
        if not hasattr(raw, "shape"):
            raw = np.asarray(raw)
        if raw.shape[0] != len(batch):
            raise ValueError(f"score_fn returned {raw.shape[0]} rows for {len(batch)} users")
        if device_topk or (device_topk is None and on_device(raw)):
            from recux.ranking_torch import device_topk as torch_topk

            it, sc = torch_topk(raw, k, exclude, batch)
        else:  # read in place: the exclusion is applied inside the kernel, so no masked copy is made
            block = np.asarray(to_numpy(raw), dtype=np.float32)
            rows = batch if exclude is not None else zero_rows[:len(batch)]
            it, sc = _topk_block(block, k, indptr, indices, rows)
        items_out[start:start + len(batch)] = it
        scores_out[start:start + len(batch)] = sc
    return items_out, scores_out
