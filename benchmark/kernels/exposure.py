"""Popularity-bias, long-tail, personalisation and item-side exposure kernels over top-k lists.

Inputs are flat arrays: ``topk`` (n x K) int32 item codes, best first, -1 = padding (ignored everywhere);
a user's training history in CSR form (``h_indptr`` int64 (n+1), ``h_indices`` int32); item popularity
``item_pop`` (n_items,) = training interactions per item (``EvalContext.train_item_counts``).
"""

from __future__ import annotations

from collections.abc import Iterable

import numba as nb
import numpy as np

from recux.kernels.accuracy import normalize_ks

HEAD, MID, TAIL = 0, 1, 2
GROUPS = ("head", "mid", "tail")  # index = group code
# Cap on the per-thread buffers of the personalisation kernel; above it one buffer is used (same result).
_MAX_PARTIAL_BYTES = 256 * 2**20


def popularity_groups(item_pop: np.ndarray, head_share: float = 0.2, tail_share: float = 0.2) -> np.ndarray:
    """(n_items,) int8 group code per item: HEAD, MID or TAIL, from training popularity.

    Head / mid / tail as in Abdollahpouri et al. 2019 ("The Unfairness of Popularity Bias in Recommendation"):
    the head is the most popular items that together make ``head_share`` of the training interactions, the
    tail the least popular items that together make ``tail_share``, the mid the rest. With T = sum_i pop_i,
    above_i = interactions on items strictly more popular than i and upto_i = interactions on items at most
    as popular as i (i included):

        head: above_i <  head_share * T          (the shortest popularity prefix that reaches head_share)
        tail: upto_i  <= tail_share * T          (the longest suffix that stays within tail_share)
        mid:  the rest.

    Items of equal popularity always share a group (nothing depends on item codes), so the realised shares
    can differ from the nominal ones when a popularity value straddles a boundary. Items without training
    interactions are tail (upto = 0); with no interactions at all every item is tail. head_share +
    tail_share <= 1 makes head and tail disjoint; head_share = 0 gives a two-way mid/tail split.
    """
    if not (0.0 <= head_share <= 1.0 and 0.0 <= tail_share <= 1.0 and head_share + tail_share <= 1.0):
        raise ValueError(f"head_share={head_share} and tail_share={tail_share} must lie in [0, 1] with a sum <= 1")
    pop = np.asarray(item_pop, dtype=np.int64)
    if pop.ndim != 1 or (pop.size and pop.min() < 0):
        raise ValueError("item_pop must be a 1-D array of non-negative interaction counts")
    values, inverse, counts = np.unique(pop, return_inverse=True, return_counts=True)
    upto = np.cumsum(values * counts)[inverse]  # interactions on items with popularity <= pop_i
    total = int(pop.sum())
    groups = np.full(pop.shape[0], MID, dtype=np.int8)
    groups[upto <= tail_share * total] = TAIL
    groups[(total - upto) < head_share * total] = HEAD
    return groups


@nb.njit(parallel=True, cache=True)
def pop_lift_kernel(topk, ks, item_pop, h_indptr, h_indices, out):
    """Fill ``out[j, u]`` with the popularity lift of user row u's top ks[j] over the user's history.

    pop_lift@k(u) = (mean_{i in L_u@k} pop_i - mean_{i in H_u} pop_i) / mean_{i in H_u} pop_i

    L_u@k = the real (non-padding) items of the list within k, H_u = the user's training items: the per-user
    form of the group-average-popularity lift dGAP = (GAP_r - GAP_p) / GAP_p of Abdollahpouri et al. 2019
    ("The Unfairness of Popularity Bias in Recommendation"). NaN when the list has no real item within k,
    the history is empty, or the history's mean popularity is 0.
    """
    n = topk.shape[0]
    nk = ks.shape[0]
    kmax = ks[nk - 1]
    for u in nb.prange(n):
        lo = h_indptr[u]
        hi = h_indptr[u + 1]
        s_hist = 0.0
        for t in range(lo, hi):
            s_hist += item_pop[h_indices[t]]
        base = s_hist / (hi - lo) if hi > lo else 0.0
        s_list = 0.0
        cnt = 0
        j = 0
        for p in range(kmax):
            item = topk[u, p]
            if item >= 0:
                s_list += item_pop[item]
                cnt += 1
            if p + 1 == ks[j]:
                if cnt > 0 and base > 0.0:
                    out[j, u] = (s_list / cnt - base) / base
                else:
                    out[j, u] = np.nan
                j += 1


@nb.njit(parallel=True, cache=True)
def member_share_kernel(topk, ks, member, out):
    """Fill ``out[j, u]`` with the share of user row u's real items within ks[j] for which member[item] = 1.

    With member = the long tail this is APLT@k (Abdollahpouri et al. 2017, "Controlling popularity bias in
    learning to rank recommendation"): |{i in L_u@k : i in tail}| / |L_u@k|, L_u@k the real items within k;
    NaN for a list without a real item within k.
    """
    n = topk.shape[0]
    nk = ks.shape[0]
    kmax = ks[nk - 1]
    for u in nb.prange(n):
        hits = 0
        cnt = 0
        j = 0
        for p in range(kmax):
            item = topk[u, p]
            if item >= 0:
                cnt += 1
                hits += member[item]
            if p + 1 == ks[j]:
                out[j, u] = hits / cnt if cnt > 0 else np.nan
                j += 1


@nb.njit(parallel=True, cache=True)
def cosine_mass_kernel(topk, ks, n_items, n_chunks):
    """Per cut-off ks[j]: S[j, i] = sum over lists holding item i of w_u, Q[j, i] = the sum of w_u^2, with
    w_u = 1 / sqrt(l_u) and l_u the number of real items in user u's list within ks[j]; and n_lists[j] = the
    number of lists with l_u >= 1 (lists without a real item are left out)."""
    n = topk.shape[0]
    nk = ks.shape[0]
    kmax = ks[nk - 1]
    s_part = np.zeros((n_chunks, nk, n_items), dtype=np.float64)
    q_part = np.zeros((n_chunks, nk, n_items), dtype=np.float64)
    n_part = np.zeros((n_chunks, nk), dtype=np.int64)
    chunk = (n + n_chunks - 1) // n_chunks
    for c in nb.prange(n_chunks):
        lens = np.zeros(nk, dtype=np.int64)
        for u in range(c * chunk, min(n, (c + 1) * chunk)):
            cnt = 0
            j = 0
            for p in range(kmax):
                if topk[u, p] >= 0:
                    cnt += 1
                if p + 1 == ks[j]:
                    lens[j] = cnt
                    j += 1
            for j in range(nk):
                if lens[j] == 0:
                    continue
                w = 1.0 / np.sqrt(np.float64(lens[j]))
                q = 1.0 / np.float64(lens[j])
                n_part[c, j] += 1
                for p in range(ks[j]):
                    item = topk[u, p]
                    if item >= 0:
                        s_part[c, j, item] += w
                        q_part[c, j, item] += q
    s = np.zeros((nk, n_items), dtype=np.float64)
    qq = np.zeros((nk, n_items), dtype=np.float64)
    n_lists = np.zeros(nk, dtype=np.int64)
    for c in range(n_chunks):
        for j in range(nk):
            n_lists[j] += n_part[c, j]
            for i in range(n_items):
                s[j, i] += s_part[c, j, i]
                qq[j, i] += q_part[c, j, i]
    return s, qq, n_lists


def _check_topk(topk: np.ndarray, n_items: int) -> np.ndarray:
    topk = np.ascontiguousarray(topk, dtype=np.int32)
    if topk.ndim != 2:
        raise ValueError(f"topk must be 2-D (users x K), got shape {topk.shape}")
    if topk.size and topk.max() >= n_items:
        raise ValueError(f"topk holds item code {int(topk.max())} but the catalogue has {n_items} items")
    return topk


def pop_lift(topk: np.ndarray, ks: Iterable[int], item_pop: np.ndarray, h_indptr: np.ndarray,
             h_indices: np.ndarray) -> dict[str, np.ndarray]:
    """Per-user ``{"pop_lift@k": float64 array}`` (see ``pop_lift_kernel``)."""
    item_pop = np.ascontiguousarray(item_pop, dtype=np.float64)
    topk = _check_topk(topk, len(item_pop))
    kk = normalize_ks(ks, topk.shape[1])
    h_indptr = np.ascontiguousarray(h_indptr, dtype=np.int64)
    h_indices = np.ascontiguousarray(h_indices, dtype=np.int32)
    if len(h_indptr) != topk.shape[0] + 1:
        raise ValueError(f"history indptr has {len(h_indptr)} entries; {topk.shape[0] + 1} expected (one row per list)")
    if len(h_indices) and h_indices.max() >= len(item_pop):
        raise ValueError(f"history holds item code {int(h_indices.max())} but item_pop has {len(item_pop)} entries")
    out = np.empty((len(kk), topk.shape[0]), dtype=np.float64)
    if topk.shape[0]:
        pop_lift_kernel(topk, kk, item_pop, h_indptr, h_indices, out)
    return {f"pop_lift@{int(k)}": out[j] for j, k in enumerate(kk)}


def member_share(topk: np.ndarray, ks: Iterable[int], member: np.ndarray) -> dict[int, np.ndarray]:
    """``{k: (n,) float64}``: share of each list's real items within k that are members (see the kernel)."""
    member = np.ascontiguousarray(member, dtype=np.int64)
    topk = _check_topk(topk, len(member))
    kk = normalize_ks(ks, topk.shape[1])
    out = np.empty((len(kk), topk.shape[0]), dtype=np.float64)
    if topk.shape[0]:
        member_share_kernel(topk, kk, member, out)
    return {int(k): out[j] for j, k in enumerate(kk)}


def personalisation(topk: np.ndarray, ks: Iterable[int], n_items: int,
                    counts: dict[int, np.ndarray] | None = None) -> dict[str, float]:
    """``{"personalisation@k": value}``: 1 - the mean cosine similarity of two users' top-k lists.

    personalisation@k = 1 - (2 / (n (n - 1))) * sum_{u < v} |L_u ∩ L_v| / sqrt(|L_u| |L_v|)

    over the n lists with at least one real item within k (L_u = the list's real items within k; with full
    lists the denominator is k, the "1 - mean pairwise overlap / k" form; the recmetrics-style
    personalisation of binary list vectors). Exact without an all-pairs loop: a pair (u, v) shares item i
    iff both lists hold it, so with w_u = 1 / sqrt(|L_u|), S_i = sum_{u ∋ i} w_u and Q_i = sum_{u ∋ i} w_u^2,
    sum_{u < v} |L_u ∩ L_v| w_u w_v = sum_i sum_{u < v, both ∋ i} w_u w_v = sum_i (S_i^2 - Q_i) / 2;
    O(n K) time and O(n_items) memory per cut-off. When every list is full within k this is
    sum_i c_i (c_i - 1) / (2 k), c_i = the number of lists holding item i, summed in integers from
    ``counts`` (``{k: c}`` of ``recux.kernels.beyond.exposure_counts``) when given. NaN with fewer than two
    such lists. Rows must not repeat an item (evaluate_topk refuses them).
    """
    topk = _check_topk(topk, n_items)
    kk = normalize_ks(ks, topk.shape[1])
    full = [bool((topk[:, :k] >= 0).all()) for k in kk]
    out: dict[str, float] = {}
    n = topk.shape[0]
    for j, k in enumerate(kk):
        if full[j] and counts is not None:
            c = counts[int(k)].astype(np.int64)
            pair_sim = int((c * (c - 1) // 2).sum()) / int(k)
            out[f"personalisation@{int(k)}"] = 1.0 - pair_sim / (n * (n - 1) / 2.0) if n >= 2 else float("nan")
    rest = [int(k) for k in kk if f"personalisation@{int(k)}" not in out]
    if rest:
        out.update(_personalisation_weighted(topk, normalize_ks(rest, topk.shape[1]), n_items))
    return {f"personalisation@{int(k)}": out[f"personalisation@{int(k)}"] for k in kk}


def _personalisation_weighted(topk: np.ndarray, kk: np.ndarray, n_items: int) -> dict[str, float]:
    """The general form of ``personalisation`` (lists of any length) through ``cosine_mass_kernel``."""
    n_chunks = max(1, min(nb.get_num_threads(), topk.shape[0]))
    if n_chunks * len(kk) * n_items * 16 > _MAX_PARTIAL_BYTES:
        n_chunks = 1
    s, q, n_lists = cosine_mass_kernel(topk, kk, int(n_items), n_chunks)
    out: dict[str, float] = {}
    for j, k in enumerate(kk):
        m = int(n_lists[j])
        pair_sim = float(np.sum(s[j] * s[j] - q[j])) / 2.0
        out[f"personalisation@{int(k)}"] = 1.0 - pair_sim / (m * (m - 1) / 2.0) if m >= 2 else float("nan")
    return out


def exposure_entropy(counts: np.ndarray) -> tuple[float, float]:
    """(H, H / log2(n_items)) of an item exposure count vector (``recux.kernels.beyond.exposure_counts``).

    H = -sum_i p_i log2 p_i with p_i = c_i / sum_j c_j (Shannon entropy in bits of the distribution of
    top-k slots over the catalogue; 0 log 0 = 0). The normalised form divides by log2(n_items), the entropy
    of equal exposure of every item, so it lies in [0, 1]. Both NaN when nothing is exposed; the normalised
    one also NaN for a one-item catalogue.
    """
    c = np.asarray(counts, dtype=np.float64)
    total = c.sum()
    if total <= 0:
        return float("nan"), float("nan")
    p = c[c > 0] / total
    h = float(-(p * np.log2(p)).sum()) + 0.0  # + 0.0: no "-0.0"
    return h, (h / float(np.log2(len(c))) if len(c) > 1 else float("nan"))


def group_shares(weights: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """(3,) share of the total weight per group code (HEAD, MID, TAIL); NaN everywhere for a zero total.

    E.g. weights = exposure counts gives the groups' shares of all filled top-k slots; weights =
    training popularity their shares of the training interactions; weights = 1 their shares of the catalogue.
    """
    w = np.bincount(np.asarray(groups, dtype=np.int64), weights=np.asarray(weights, dtype=np.float64),
                    minlength=len(GROUPS))
    total = w.sum()
    return w / total if total > 0 else np.full(len(GROUPS), np.nan)
