"""Top-k accuracy metrics (Precision, Recall, NDCG, MRR, MAP, HitRate) at several cut-offs in one pass.

Inputs are flat arrays: ``topk`` (n x K int32 item codes, best first, -1 = padding that is never relevant)
and the ground truth in CSR form (``gt_indptr`` int64 (n+1), ``gt_indices`` int32, sorted within each row
as recux stores it; the kernel itself only needs each row free of repeats).
"""

from __future__ import annotations

from collections.abc import Iterable

import numba as nb
import numpy as np

from recux.errors import ConfigError

# Order of the first axis of the kernel output.
METRICS = ("precision", "recall", "ndcg", "mrr", "map", "hit", "map_recbole")
_MAX_MARKER_BYTES = 64 * 2**20


@nb.njit(parallel=True, cache=True)
def accuracy_kernel(topk, gt_indptr, gt_indices, ks, out, n_mark, n_chunks):
    """Fill ``out[m, j, u]`` with metric m (order of METRICS) at cut-off ``ks[j]`` for user row u.

    Definitions (binary relevance; R = the user's ground-truth set, rank = 1-based position, hits@k =
    relevant items among the first k; as in trec_eval / ranx):
      precision@k   = hits@k / k   (padding counts as a non-relevant slot)
      recall@k      = hits@k / |R|
      ndcg@k        = DCG@k / IDCG@k, DCG@k = sum over relevant ranks r <= k of 1 / log2(r + 1),
                      IDCG@k = sum_{r=1}^{min(|R|, k)} 1 / log2(r + 1)
      mrr@k         = 1 / rank of the first relevant item within k (0 if none)
      map@k (AP@k)  = sum over relevant ranks r <= k of precision@r, divided by |R|
      hit@k         = 1 if hits@k > 0 else 0
      map_recbole@k = the same sum divided by min(|R|, k) (RecBole's normalisation)

    ``ks`` is sorted, unique, 1 <= ks[j] <= K; every user has |R| >= 1 without repeats, all codes in
    0..n_mark-1 (the caller guarantees these). Users are split into ``n_chunks`` blocks; each block owns a
    marker array over item codes: mark the user's relevant items, scan the list, unmark.
    """
    n = topk.shape[0]
    nk = ks.shape[0]
    kmax = ks[nk - 1]
    disc = np.empty(kmax, dtype=np.float64)
    for p in range(kmax):
        disc[p] = 1.0 / np.log2(p + 2.0)
    chunk = (n + n_chunks - 1) // n_chunks
    for c in nb.prange(n_chunks):
        mark = np.zeros(n_mark, dtype=np.uint8)
        for u in range(c * chunk, min(n, (c + 1) * chunk)):
            lo = gt_indptr[u]
            hi = gt_indptr[u + 1]
            n_rel = hi - lo
            for t in range(lo, hi):
                mark[gt_indices[t]] = 1
            hits = 0
            dcg = 0.0
            idcg = 0.0
            rr = 0.0
            ap = 0.0
            j = 0
            for p in range(kmax):
                if p < n_rel:
                    idcg += disc[p]
                item = topk[u, p]
                if item >= 0 and item < n_mark and mark[item]:
                    hits += 1
                    dcg += disc[p]
                    if hits == 1:
                        rr = 1.0 / (p + 1)
                    ap += hits / (p + 1.0)
                if p + 1 == ks[j]:
                    k = p + 1
                    out[0, j, u] = hits / k
                    out[1, j, u] = hits / n_rel
                    out[2, j, u] = dcg / idcg
                    out[3, j, u] = rr
                    out[4, j, u] = ap / n_rel
                    out[5, j, u] = 1.0 if hits > 0 else 0.0
                    out[6, j, u] = ap / min(n_rel, k)
                    j += 1
            for t in range(lo, hi):
                mark[gt_indices[t]] = 0


def check_ks(ks: Iterable[int], width: int | None = None, setting: str = "ks") -> tuple[int, ...]:
    """The one cut-off validator: sorted unique positive ints, each <= ``width`` (the top-k columns) when given.

    ``setting`` names the setting in the error (``metrics.ks``, ``recux-evaluate --ks``, ``ks=``). Raises
    ConfigError (a ValueError).
    """
    try:
        raw = list(ks)
        kk = tuple(sorted({int(k) for k in raw}))
        if any(float(k) != int(k) for k in raw):
            raise ValueError
    except (TypeError, ValueError):
        raise ConfigError(f"{setting}={ks!r} must be a list of positive integers, e.g. [5, 10, 20]") from None
    if not kk or kk[0] < 1:
        raise ConfigError(f"{setting}={list(raw)} must be a non-empty list of positive integers, e.g. [5, 10, 20]")
    if width is not None and kk[-1] > width:
        raise ConfigError(
            f"k={kk[-1]} is larger than the top-k lists ({width} columns). Rank at least {kk[-1]} items per user "
            f"or use cut-offs <= {width} ({setting})."
        )
    return kk


def normalize_ks(ks: Iterable[int], width: int | None = None) -> np.ndarray:
    """``check_ks`` as an int64 array, for the kernels."""
    return np.asarray(check_ks(ks, width), dtype=np.int64)


def accuracy_metrics(
    topk: np.ndarray, gt_indptr: np.ndarray, gt_indices: np.ndarray, ks: Iterable[int]
) -> dict[str, np.ndarray]:
    """Per-user accuracy values ``{"ndcg@10": float64 array (n,), ...}`` for every metric and k in ``ks``.

    Every row must have a non-empty ground truth (callers drop and count empty rows first) without
    repeated items (not checked here: ``evaluate_topk`` canonicalises it). Top-k codes outside the
    ground truth's code range are simply not relevant.
    """
    topk = np.ascontiguousarray(topk, dtype=np.int32)
    gt_indptr = np.ascontiguousarray(gt_indptr, dtype=np.int64)
    gt_indices = np.ascontiguousarray(gt_indices, dtype=np.int32)
    if topk.ndim != 2:
        raise ValueError(f"topk must be 2-D (users x K), got shape {topk.shape}")
    n, width = topk.shape
    kk = normalize_ks(ks, width)
    if gt_indptr.shape[0] != n + 1:
        raise ValueError(f"gt_indptr has {gt_indptr.shape[0]} entries for {n} top-k rows (need n+1)")
    if n and np.diff(gt_indptr).min() <= 0:
        raise ValueError("every row needs a non-empty ground truth: drop (and count) empty rows before calling")
    if len(gt_indices) != gt_indptr[-1]:
        raise ValueError(f"gt_indices has {len(gt_indices)} entries but gt_indptr ends at {gt_indptr[-1]}")
    out = np.empty((len(METRICS), len(kk), n), dtype=np.float64)
    if n:
        if gt_indices.min() < 0:
            raise ValueError(f"ground truth holds a negative item code ({int(gt_indices.min())})")
        n_mark = int(gt_indices.max()) + 1
        threads = nb.get_num_threads()
        # a few blocks per thread balance the load; each block zeroes one marker of n_mark bytes
        n_chunks = max(1, min(n, 4 * threads if n_mark * 4 * threads <= _MAX_MARKER_BYTES else threads))
        accuracy_kernel(topk, gt_indptr, gt_indices, kk, out, n_mark, n_chunks)
    return {f"{name}@{int(k)}": out[m, j] for m, name in enumerate(METRICS) for j, k in enumerate(kk)}


GAINS = ("jarvelin", "burges")


@nb.njit(parallel=True, cache=True)
def graded_ndcg_kernel(topk, gt_indptr, gt_indices, gains, ideal, ks, out, n_mark, n_chunks):
    """Fill ``out[j, u]`` with graded NDCG@ks[j] of user row u.

    ``gains[t]`` is the gain of ground-truth entry t, ``ideal`` the same gains sorted descending within each
    row. DCG@k = sum over ranks r <= k of gain(item at r) / log2(r + 1); IDCG@k = the same sum over the
    ideal order; NDCG@k = DCG@k / IDCG@k, and 0 when IDCG@k = 0 (no positive grade; as ranx does).
    """
    n = topk.shape[0]
    nk = ks.shape[0]
    kmax = ks[nk - 1]
    disc = np.empty(kmax, dtype=np.float64)
    for p in range(kmax):
        disc[p] = 1.0 / np.log2(p + 2.0)
    chunk = (n + n_chunks - 1) // n_chunks
    for c in nb.prange(n_chunks):
        gain_of = np.zeros(n_mark, dtype=np.float64)
        for u in range(c * chunk, min(n, (c + 1) * chunk)):
            lo = gt_indptr[u]
            hi = gt_indptr[u + 1]
            for t in range(lo, hi):
                gain_of[gt_indices[t]] = gains[t]
            dcg = 0.0
            idcg = 0.0
            j = 0
            for p in range(kmax):
                if p < hi - lo:
                    idcg += ideal[lo + p] * disc[p]
                item = topk[u, p]
                if item >= 0 and item < n_mark:
                    dcg += gain_of[item] * disc[p]
                if p + 1 == ks[j]:
                    out[j, u] = dcg / idcg if idcg > 0.0 else 0.0
                    j += 1
            for t in range(lo, hi):
                gain_of[gt_indices[t]] = 0.0


def graded_ndcg(
    topk: np.ndarray, gt_indptr: np.ndarray, gt_indices: np.ndarray, relevance: np.ndarray, ks: Iterable[int],
    gain: str = "jarvelin",
) -> dict[int, np.ndarray]:
    """Per-user graded NDCG ``{k: float64 array (n,)}`` with the grade ``relevance`` of each ground-truth entry.

    Gains (rel = the grade, e.g. a 1-5 rating; discount 1 / log2(rank + 1) as in binary NDCG):
      ``jarvelin``: gain = rel          (Järvelin & Kekäläinen, "Cumulated gain-based evaluation of IR
                                         techniques", ACM TOIS 20(4), 2002; ranx ``ndcg``)
      ``burges``:   gain = 2^rel - 1    (Burges et al., "Learning to rank using gradient descent", ICML 2005;
                                         ranx ``ndcg_burges``)
    IDCG@k uses the user's grades sorted descending. Rows as in ``accuracy_metrics`` (non-empty, no repeats).
    ranx ignores grades below its ``rel_lvl`` (1) by default; here a grade in (0, 1) still gains.
    """
    if gain not in GAINS:
        raise ConfigError(f"gain={gain!r} is not one of {', '.join(GAINS)}")
    topk = np.ascontiguousarray(topk, dtype=np.int32)
    gt_indptr = np.ascontiguousarray(gt_indptr, dtype=np.int64)
    gt_indices = np.ascontiguousarray(gt_indices, dtype=np.int32)
    rel = np.ascontiguousarray(relevance, dtype=np.float64)
    n, width = topk.shape
    kk = normalize_ks(ks, width)
    if len(rel) != len(gt_indices) or gt_indptr.shape[0] != n + 1:
        raise ValueError("relevance must align with gt_indices, and gt_indptr needs n+1 entries")
    gains = rel if gain == "jarvelin" else np.exp2(rel) - 1.0
    rows = np.repeat(np.arange(n), np.diff(gt_indptr))
    ideal = np.ascontiguousarray(gains[np.lexsort((-gains, rows))])
    out = np.zeros((len(kk), n), dtype=np.float64)
    if n and len(gt_indices):
        n_mark = int(gt_indices.max()) + 1
        threads = nb.get_num_threads()
        n_chunks = max(1, min(n, 4 * threads if 8 * n_mark * 4 * threads <= _MAX_MARKER_BYTES else threads))
        graded_ndcg_kernel(topk, gt_indptr, gt_indices, gains, ideal, kk, out, n_mark, n_chunks)
    return {int(k): out[j] for j, k in enumerate(kk)}
