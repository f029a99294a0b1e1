"""Beyond-accuracy kernels over top-k lists: item exposure (-> coverage, Gini) and per-user popularity
(-> average recommendation popularity ARP, novelty).

``topk`` is (n x K) int32 item codes, best first, -1 = padding (ignored everywhere).
"""

from __future__ import annotations

from collections.abc import Iterable

import numba as nb
import numpy as np

from recux.kernels.accuracy import normalize_ks

# Cap on the per-thread exposure buffers; above it the count runs on one buffer (still correct, less parallel).
_MAX_PARTIAL_BYTES = 256 * 2**20


@nb.njit(parallel=True, cache=True)
def exposure_kernel(topk, ks, n_items, n_chunks):
    """(len(ks), n_items) int64: how many users have item i within their top ks[j] (ks sorted, unique)."""
    n = topk.shape[0]
    nk = ks.shape[0]
    kmax = ks[nk - 1]
    partial = np.zeros((n_chunks, nk, n_items), dtype=np.int32)
    chunk = (n + n_chunks - 1) // n_chunks
    for c in nb.prange(n_chunks):
        stop = min(n, (c + 1) * chunk)
        for u in range(c * chunk, stop):
            j = 0
            for p in range(kmax):
                while p >= ks[j]:
                    j += 1
                item = topk[u, p]
                if item >= 0:
                    partial[c, j, item] += 1
    counts = np.zeros((nk, n_items), dtype=np.int64)
    for c in range(n_chunks):
        for j in range(nk):
            for i in range(n_items):
                counts[j, i] += partial[c, j, i]
    for j in range(1, nk):  # band j holds positions ks[j-1] <= p < ks[j]: accumulate to "within top ks[j]"
        for i in range(n_items):
            counts[j, i] += counts[j - 1, i]
    return counts


@nb.njit(cache=True)
def gini_index(counts):
    """Gini index of a non-negative count vector (0 = equal exposure, -> 1 = all on one item).

    G = sum_{i=1}^{n} (2i - n - 1) x_(i) / (n * sum x), x_(i) sorted ascending; 0 when nothing is exposed.
    """
    return gini_of_sorted(np.sort(counts.astype(np.float64)))


@nb.njit(cache=True)
def gini_of_sorted(x):
    """``gini_index`` of a float64 vector already sorted ascending."""
    n = x.shape[0]
    total = x.sum()
    if n == 0 or total == 0.0:
        return 0.0
    acc = 0.0
    for i in range(n):
        acc += (2.0 * (i + 1) - n - 1.0) * x[i]
    return acc / (n * total)


@nb.njit(parallel=True, cache=True)
def popularity_kernel(topk, ks, item_pop, n_train_users, out):
    """Fill ``out[0, j, u]`` with ARP@ks[j] and ``out[1, j, u]`` with novelty@ks[j] for user row u.

    ARP@k     = mean training popularity (``item_pop``) of the user's recommended items within k.
    novelty@k = mean self-information -log2(p_i / N) of those items, N = ``n_train_users``; p_i is
                clipped to [1, N]: an item unseen in training counts as seen once (the rarest possible,
                finite), and counts above N (repeat interactions) count as N (self-information 0).
    Padding is skipped: the mean runs over the real items within k; a row without any is NaN. Each item's
    self-information is computed once (n_items logarithms, not one per list slot).
    """
    n = topk.shape[0]
    nk = ks.shape[0]
    kmax = ks[nk - 1]
    log_n = np.log2(np.float64(n_train_users))
    info = np.empty(item_pop.shape[0], dtype=np.float64)
    for i in range(item_pop.shape[0]):
        info[i] = log_n - np.log2(min(max(np.float64(item_pop[i]), 1.0), np.float64(n_train_users)))
    for u in nb.prange(n):
        s_pop = 0.0
        s_nov = 0.0
        cnt = 0
        j = 0
        for p in range(kmax):
            item = topk[u, p]
            if item >= 0:
                s_pop += np.float64(item_pop[item])
                s_nov += info[item]
                cnt += 1
            if p + 1 == ks[j]:
                if cnt > 0:
                    out[0, j, u] = s_pop / cnt
                    out[1, j, u] = s_nov / cnt
                else:
                    out[0, j, u] = np.nan
                    out[1, j, u] = np.nan
                j += 1


@nb.njit(cache=True)
def _count_kernel(indices, n_items):
    """(n_items,) int64 occurrences of each code in ``indices``; codes outside 0..n_items-1 are not counted
    but returned as the second value (their number)."""
    out = np.zeros(n_items, dtype=np.int64)
    bad = 0
    for t in range(indices.shape[0]):
        i = indices[t]
        if 0 <= i < n_items:
            out[i] += 1
        else:
            bad += 1
    return out, bad


def item_counts(indices: np.ndarray, n_items: int) -> np.ndarray:
    """(n_items,) int64: how often each item code occurs in ``indices`` (np.bincount, a third of its time on
    int32 codes: no int64 copy of the codes)."""
    counts, bad = _count_kernel(np.ascontiguousarray(indices), int(n_items))
    if bad:
        raise ValueError(f"{bad} item code(s) outside 0..{n_items - 1}")
    return counts


def _check_topk(topk: np.ndarray) -> np.ndarray:
    topk = np.ascontiguousarray(topk, dtype=np.int32)
    if topk.ndim != 2:
        raise ValueError(f"topk must be 2-D (users x K), got shape {topk.shape}")
    return topk


def exposure_counts(topk: np.ndarray, ks: Iterable[int], n_items: int) -> dict[int, np.ndarray]:
    """``{k: (n_items,) int64}``: number of top-k lists that contain each item."""
    topk = _check_topk(topk)
    kk = normalize_ks(ks, topk.shape[1])
    if topk.size and topk.max() >= n_items:
        raise ValueError(f"topk holds item code {int(topk.max())} but n_items={n_items}")
    n_chunks = max(1, min(nb.get_num_threads(), topk.shape[0]))
    if n_chunks * len(kk) * n_items * 4 > _MAX_PARTIAL_BYTES:
        n_chunks = 1
    counts = exposure_kernel(topk, kk, int(n_items), n_chunks)
    return {int(k): counts[j] for j, k in enumerate(kk)}


def coverage_and_gini(topk: np.ndarray, ks: Iterable[int], n_items: int) -> dict[str, float]:
    """``{"coverage@k": fraction of catalogue items in anyone's top-k, "gini@k": Gini of item exposure}``."""
    out: dict[str, float] = {}
    for k, counts in exposure_counts(topk, ks, n_items).items():
        out[f"coverage@{k}"] = float(np.count_nonzero(counts)) / n_items if n_items else 0.0
        out[f"gini@{k}"] = float(gini_of_sorted(np.sort(counts).astype(np.float64)))  # numpy sorts faster
    return out


def popularity_metrics(
    topk: np.ndarray, ks: Iterable[int], item_pop: np.ndarray, n_train_users: int
) -> dict[str, np.ndarray]:
    """Per-user ``{"arp@k": ..., "novelty@k": ...}`` float64 arrays (see ``popularity_kernel``)."""
    topk = _check_topk(topk)
    kk = normalize_ks(ks, topk.shape[1])
    item_pop = np.ascontiguousarray(item_pop, dtype=np.int64)
    if n_train_users < 1:
        raise ValueError(f"n_train_users must be >= 1, got {n_train_users}")
    if topk.size and topk.max() >= len(item_pop):
        raise ValueError(f"topk holds item code {int(topk.max())} but item_pop has {len(item_pop)} entries")
    out = np.empty((2, len(kk), topk.shape[0]), dtype=np.float64)
    if topk.shape[0]:
        popularity_kernel(topk, kk, item_pop, int(n_train_users), out)
    res: dict[str, np.ndarray] = {}
    for m, name in enumerate(("arp", "novelty")):
        for j, k in enumerate(kk):
            res[f"{name}@{int(k)}"] = out[m, j]
    return res
