"""List-content kernels: intra-list diversity (categories, embeddings), unexpectedness (against the user's
history in embedding space, and against a popularity list), serendipity and Steck's miscalibration.

Flat inputs, as in recux.kernels.accuracy: ``topk`` (n x K int32 item codes, best first, -1 = padding), ``ks``
(sorted unique cut-offs, int64), per-user CSR rows (``indptr`` int64, ``indices`` int32 sorted within rows) for
the ground truth and the training history, item categories as an items x categories CSR (``cat_indptr``,
``cat_indices``; an item's categories are unique), and item embeddings as an (n_items, d) float32 matrix with
unit rows. Every kernel fills ``out[j, u]`` (value at ``ks[j]`` for user row u), reading each list once where
the value can be updated item by item and recorded at each cut-off; sums run in float64. Padding is never an item: list means run over the real items.
Users are split into ``n_chunks`` blocks, each owning its scratch buffers (reset after each user).
With few categories (``dense_categories``) the category kernels read each item's categories as a dense row of
per-category weights instead of a CSR row: a fixed-length loop the compiler vectorises, with no branch on the
item's number of categories (on 100k users x 48 history items that branch, mispredicted, cost more than the
arithmetic). The CSR kernels remain for many categories.
"""

from __future__ import annotations

from typing import Any

import numba as nb
import numpy as np

# Above this much scratch memory over all blocks, use one block per thread.
_MAX_SCRATCH_BYTES = 256 * 2**20
# Reassociation lets LLVM vectorise the float sums over embedding dimensions (no NaN/inf assumptions).
_REASSOC = {"reassoc", "contract"}
# Dense category rows (n_items x n_cats float64) are used up to this many categories and this size.
_DENSE_MAX_CATS = 64
_DENSE_MAX_BYTES = 256 * 2**20


@nb.njit(parallel=True, cache=True)
def ild_cosine_kernel(topk, ks, cat_indptr, cat_indices, n_cats, out, n_chunks):
    """ILD@k with cosine distance between the items' multi-hot category vectors a_i.

    ILD@k = 1 - (2 / (m (m - 1))) * sum_{i<j} cos(a_i, a_j), cos(a_i, a_j) = |G_i ∩ G_j| / sqrt(|G_i| |G_j|),
    over the m categorised items (|G_i| >= 1) among the first k (uncategorised items and padding are left out);
    NaN when m < 2. With v_i = a_i / sqrt(|G_i|) and s the running sum of the v's already seen, the new item's
    pairs add v_p . s, so the pair sum costs O(k |G|) per user, not O(k^2).
    Ziegler et al., "Improving recommendation lists through topic diversification", WWW 2005; Smyth &
    McClave, "Similarity vs. diversity", ICCBR 2001.
    """
    n = topk.shape[0]
    nk = ks.shape[0]
    kmax = ks[nk - 1]
    chunk = (n + n_chunks - 1) // n_chunks
    for c in nb.prange(n_chunks):
        s = np.zeros(n_cats, dtype=np.float64)
        for u in range(c * chunk, min(n, (c + 1) * chunk)):
            pair = 0.0
            m = 0
            j = 0
            for p in range(kmax):
                item = topk[u, p]
                if item >= 0:
                    lo = cat_indptr[item]
                    hi = cat_indptr[item + 1]
                    if hi > lo:
                        w = 1.0 / np.sqrt(np.float64(hi - lo))
                        dot = 0.0
                        for t in range(lo, hi):
                            dot += s[cat_indices[t]]
                        pair += w * dot
                        for t in range(lo, hi):
                            s[cat_indices[t]] += w
                        m += 1
                if p + 1 == ks[j]:
                    out[j, u] = 1.0 - 2.0 * pair / (m * (m - 1.0)) if m >= 2 else np.nan
                    j += 1
            if n_cats <= 64:
                s[:] = 0.0
            else:
                for p in range(kmax):
                    item = topk[u, p]
                    if item >= 0:
                        for t in range(cat_indptr[item], cat_indptr[item + 1]):
                            s[cat_indices[t]] = 0.0


@nb.njit(parallel=True, cache=True, fastmath=_REASSOC)
def ild_cosine_dense_kernel(topk, ks, unit, cat_indptr, out, n_chunks):
    """``ild_cosine_kernel`` with each item's v_i = a_i / sqrt(|G_i|) as a dense row ``unit[i]`` (zeros outside
    G_i): the new item's pairs add v_p . s over all categories, then s += v_p. Same formula and references."""
    n = topk.shape[0]
    nk = ks.shape[0]
    kmax = ks[nk - 1]
    n_cats = unit.shape[1]
    chunk = (n + n_chunks - 1) // n_chunks
    for c in nb.prange(n_chunks):
        s = np.zeros(n_cats, dtype=np.float64)
        for u in range(c * chunk, min(n, (c + 1) * chunk)):
            pair = 0.0
            m = 0
            j = 0
            for p in range(kmax):
                item = topk[u, p]
                if item >= 0 and cat_indptr[item + 1] > cat_indptr[item]:
                    dot = 0.0
                    for g in range(n_cats):
                        dot += unit[item, g] * s[g]
                        s[g] += unit[item, g]
                    pair += dot
                    m += 1
                if p + 1 == ks[j]:
                    out[j, u] = 1.0 - 2.0 * pair / (m * (m - 1.0)) if m >= 2 else np.nan
                    j += 1
            s[:] = 0.0


@nb.njit(cache=True)
def _jaccard_distance(cat_indptr, cat_indices, a, b):
    """1 - |G_a ∩ G_b| / |G_a ∪ G_b| by a merge of the two sorted category rows."""
    i, i_end = cat_indptr[a], cat_indptr[a + 1]
    j, j_end = cat_indptr[b], cat_indptr[b + 1]
    union = (i_end - i) + (j_end - j)
    inter = 0
    while i < i_end and j < j_end:
        if cat_indices[i] == cat_indices[j]:
            inter += 1
            i += 1
            j += 1
        elif cat_indices[i] < cat_indices[j]:
            i += 1
        else:
            j += 1
    return 1.0 - inter / (union - inter)


@nb.njit(parallel=True, cache=True)
def ild_jaccard_kernel(topk, ks, cat_indptr, cat_indices, out):
    """ILD@k with Jaccard distance: mean over the m(m-1)/2 pairs of categorised items among the first k of
    1 - |G_i ∩ G_j| / |G_i ∪ G_j| (uncategorised items and padding left out; NaN when m < 2). O(k^2 |G|) per
    user: each new item is compared with the earlier ones. References as ``ild_cosine_kernel``."""
    n = topk.shape[0]
    nk = ks.shape[0]
    kmax = ks[nk - 1]
    for u in nb.prange(n):
        total = 0.0
        m = 0
        j = 0
        for p in range(kmax):
            item = topk[u, p]
            if item >= 0 and cat_indptr[item + 1] > cat_indptr[item]:
                for q in range(p):
                    other = topk[u, q]
                    if other >= 0 and cat_indptr[other + 1] > cat_indptr[other]:
                        total += _jaccard_distance(cat_indptr, cat_indices, item, other)
                m += 1
            if p + 1 == ks[j]:
                out[j, u] = 2.0 * total / (m * (m - 1.0)) if m >= 2 else np.nan
                j += 1


@nb.njit(parallel=True, cache=True, fastmath=_REASSOC)
def semantic_ild_kernel(topk, ks, emb, out, n_chunks):
    """Semantic ILD@k: mean cosine distance over the m(m-1)/2 pairs of real items among the first k, with unit
    item embeddings e_i: 1 - (2 / (m (m - 1))) sum_{i<j} e_i . e_j; NaN when m < 2.

    sum_{i != j} e_i . e_j = ||s||^2 - sum_i ||e_i||^2 with s = sum_i e_i (= ||s||^2 - m for unit vectors; the
    kernel subtracts the actual squared norms, so float32 rounding of "unit" rows does not leak in), so
    ILD@k = 1 - (||s||^2 - sum_i ||e_i||^2) / (m (m - 1)): a running sum s (O(d) per block) and one squared
    norm per cut-off, O(k d) per user; no users x k x k x d (nor k x k) array is built. Semantic ILD: Ziegler et al.
    2005's ILD with the cosine distance of content embeddings (Kaminskas & Bridge, ACM TiiS 7(1), 2016, Sec. 3).
    """
    n = topk.shape[0]
    nk = ks.shape[0]
    kmax = ks[nk - 1]
    d = emb.shape[1]
    chunk = (n + n_chunks - 1) // n_chunks
    for c in nb.prange(n_chunks):
        s = np.zeros(d, dtype=np.float64)
        for u in range(c * chunk, min(n, (c + 1) * chunk)):
            m = 0
            self_sq = 0.0
            j = 0
            for p in range(kmax):
                item = topk[u, p]
                if item >= 0:
                    for t in range(d):
                        x = np.float64(emb[item, t])
                        s[t] += x
                        self_sq += x * x
                    m += 1
                if p + 1 == ks[j]:
                    if m >= 2:
                        sq = 0.0
                        for t in range(d):
                            sq += s[t] * s[t]
                        out[j, u] = 1.0 - (sq - self_sq) / (m * (m - 1.0))
                    else:
                        out[j, u] = np.nan
                    j += 1
            s[:] = 0.0


@nb.njit(parallel=True, cache=True, fastmath=_REASSOC)
def unexpectedness_kernel(topk, ks, emb, h_indptr, h_indices, out, n_chunks):
    """Unexpectedness@k: mean over the real items i among the first k of their mean cosine distance to the
    user's training items H:  (1/m) sum_i (1/|H|) sum_{h in H} (1 - e_i . e_h) = 1 - (s . c) / m, with
    s = sum_i e_i over the list and c = (1/|H|) sum_h e_h (the mean, not re-normalised, of the unit history
    embeddings): O((|H| + k) d) per user. NaN when the user has no history or the first k hold no real item.
    The distance-from-profile definition of unexpectedness (Kaminskas & Bridge, "Diversity, serendipity,
    novelty, and coverage", ACM TiiS 7(1), 2016; Vargas & Castells, RecSys 2011).
    """
    n = topk.shape[0]
    nk = ks.shape[0]
    kmax = ks[nk - 1]
    d = emb.shape[1]
    chunk = (n + n_chunks - 1) // n_chunks
    for c in nb.prange(n_chunks):
        centre = np.zeros(d, dtype=np.float64)
        for u in range(c * chunk, min(n, (c + 1) * chunk)):
            lo = h_indptr[u]
            hi = h_indptr[u + 1]
            if hi == lo:
                for j in range(nk):
                    out[j, u] = np.nan
                continue
            centre[:] = 0.0
            for t in range(lo, hi):
                h = h_indices[t]
                for x in range(d):
                    centre[x] += emb[h, x]
            total = 0.0
            m = 0
            j = 0
            for p in range(kmax):
                item = topk[u, p]
                if item >= 0:
                    dot = 0.0
                    for x in range(d):
                        dot += emb[item, x] * centre[x]
                    total += dot
                    m += 1
                if p + 1 == ks[j]:
                    out[j, u] = 1.0 - total / ((hi - lo) * m) if m > 0 else np.nan
                    j += 1


@nb.njit(parallel=True, cache=True)
def popularity_surprise_kernel(topk, ks, pop_order, h_indptr, h_indices, gt_indptr, gt_indices, n_items,
                               out_unexp, out_seren, n_chunks):
    """Unexpectedness against a popularity list, and serendipity (Ge et al. 2010).

    PM_k(u), the "primitive" recommender's list: the first k items of ``pop_order`` (items by training
    popularity, descending; ties by lower item code) that are not in the user's training history.
      unexpectedness_pop@k = |{i in L_k : i not in PM_k(u)}| / m       (m = real items in L_k; NaN when 0)
      serendipity@k        = |{i in L_k : i not in PM_k(u), i in R_u}| / k   (R_u = the user's ground truth;
                             padding counts as a non-serendipitous slot, as in precision, so serendipity@k
                             <= precision@k)
    Ge, Delgado-Battenfeld & Jannach, "Beyond accuracy: evaluating recommender systems by coverage and
    serendipity", RecSys 2010 (PM after Murakami et al. 2008); Kotkov, Wang & Veijalainen, "A survey of
    serendipity in recommender systems", Knowledge-Based Systems 111, 2016.
    Each block owns pm_rank (an item's position in PM_kmax(u), kmax if absent) and a mark array (1 = relevant,
    2 = history); per user the popularity order is walked until kmax items outside the history are found.
    """
    n = topk.shape[0]
    nk = ks.shape[0]
    kmax = ks[nk - 1]
    n_order = pop_order.shape[0]
    chunk = (n + n_chunks - 1) // n_chunks
    for c in nb.prange(n_chunks):
        pm_rank = np.full(n_items, kmax, dtype=np.int64)
        mark = np.zeros(n_items, dtype=np.uint8)
        for u in range(c * chunk, min(n, (c + 1) * chunk)):
            for t in range(gt_indptr[u], gt_indptr[u + 1]):
                mark[gt_indices[t]] |= 1
            for t in range(h_indptr[u], h_indptr[u + 1]):
                mark[h_indices[t]] |= 2
            r = 0
            stop = 0
            while r < kmax and stop < n_order:
                item = pop_order[stop]
                if not mark[item] & 2:
                    pm_rank[item] = r
                    r += 1
                stop += 1
            for j in range(nk):
                k = ks[j]
                unexp = 0
                seren = 0
                m = 0
                for p in range(k):
                    item = topk[u, p]
                    if item >= 0:
                        m += 1
                        if pm_rank[item] >= k:
                            unexp += 1
                            if mark[item] & 1:
                                seren += 1
                out_unexp[j, u] = unexp / m if m > 0 else np.nan
                out_seren[j, u] = seren / k
            for t in range(stop):
                pm_rank[pop_order[t]] = kmax
            for t in range(gt_indptr[u], gt_indptr[u + 1]):
                mark[gt_indices[t]] = 0
            for t in range(h_indptr[u], h_indptr[u + 1]):
                mark[h_indices[t]] = 0


@nb.njit(parallel=True, cache=True)
def miscalibration_kernel(topk, ks, cat_indptr, cat_indices, n_cats, h_indptr, h_indices, alpha, out, n_chunks):
    """Steck's miscalibration C_KL@k over categories (natural log).

    p(g|i) = 1/|G_i| for g in G_i (an item's weight spread uniformly over its categories);
    p(g|u) = mean of p(g|i) over the user's categorised training items; q(g|u) = mean of p(g|i) over the
    categorised items among the first k (no rank weights; q = 0 when there is none);
    C_KL = sum_g p(g|u) log(p(g|u) / q~(g|u)), q~ = (1 - alpha) q + alpha p (terms with p = 0 are 0), so
    0 <= C_KL <= -log(alpha). NaN for a user without a categorised training item (p undefined).
    Steck, "Calibrated recommendations", RecSys 2018, Eq. (1)-(3).
    """
    n = topk.shape[0]
    nk = ks.shape[0]
    kmax = ks[nk - 1]
    log_alpha = np.log(alpha)
    chunk = (n + n_chunks - 1) // n_chunks
    for c in nb.prange(n_chunks):
        pu = np.zeros(n_cats, dtype=np.float64)
        qu = np.zeros(n_cats, dtype=np.float64)
        support = np.empty(n_cats, dtype=np.int64)
        for u in range(c * chunk, min(n, (c + 1) * chunk)):
            n_supp = 0
            n_hist = 0
            for t in range(h_indptr[u], h_indptr[u + 1]):
                h = h_indices[t]
                lo = cat_indptr[h]
                hi = cat_indptr[h + 1]
                if hi > lo:
                    n_hist += 1
                    for x in range(lo, hi):
                        g = cat_indices[x]
                        if pu[g] == 0.0:
                            support[n_supp] = g
                            n_supp += 1
                        pu[g] += 1.0 / (hi - lo)
            if n_hist == 0:
                for j in range(nk):
                    out[j, u] = np.nan
                continue
            for x in range(n_supp):
                pu[support[x]] /= n_hist
            m = 0
            j = 0
            for p in range(kmax):
                item = topk[u, p]
                if item >= 0 and cat_indptr[item + 1] > cat_indptr[item]:
                    lo = cat_indptr[item]
                    hi = cat_indptr[item + 1]
                    for x in range(lo, hi):
                        qu[cat_indices[x]] += 1.0 / (hi - lo)
                    m += 1
                if p + 1 == ks[j]:
                    kl = 0.0
                    for x in range(n_supp):
                        g = support[x]
                        if qu[g] > 0.0:
                            kl += pu[g] * np.log(pu[g] / ((1.0 - alpha) * qu[g] / m + alpha * pu[g]))
                        else:  # q~ = alpha p: the term is -p log(alpha), no log to take
                            kl -= pu[g] * log_alpha
                    out[j, u] = kl
                    j += 1
            for x in range(n_supp):
                pu[support[x]] = 0.0
            for p in range(kmax):
                item = topk[u, p]
                if item >= 0:
                    for x in range(cat_indptr[item], cat_indptr[item + 1]):
                        qu[cat_indices[x]] = 0.0


# error_model="numpy": a term that needs no logarithm may divide by zero (no category in the list, or in
# neither distribution); its quotient is computed branch-free and thrown away, so no exception check.
@nb.njit(parallel=True, cache=True, error_model="numpy")
def miscalibration_dense_kernel(topk, ks, share, n_of, h_indptr, h_indices, alpha, out, n_chunks):
    """``miscalibration_kernel`` with p(g|i) as a dense row ``share[i]`` (1/|G_i| on G_i, zeros elsewhere) and
    ``n_of[i]`` = 1 if item i has a category, else 0: p(g|u) = sum_h share[h] / sum_h n_of[h] over the history,
    each history item one vector add without a branch on its categories. Same formula and reference. At each
    cut-off the terms are sorted without branches (their pattern is unpredictable): p log(p / q~) for the
    categories with p > 0 and q > 0 into a small buffer, then one tight loop of logarithms; the categories with
    q = 0 add -log(alpha) times the sum of their p."""
    n = topk.shape[0]
    nk = ks.shape[0]
    kmax = ks[nk - 1]
    n_cats = share.shape[1]
    log_alpha = np.log(alpha)
    chunk = (n + n_chunks - 1) // n_chunks
    for c in nb.prange(n_chunks):
        pu = np.zeros(n_cats, dtype=np.float64)
        qu = np.zeros(n_cats, dtype=np.float64)
        ratio = np.empty(n_cats, dtype=np.float64)
        weight = np.empty(n_cats, dtype=np.float64)
        for u in range(c * chunk, min(n, (c + 1) * chunk)):
            n_hist = 0
            pu[:] = 0.0
            for t in range(h_indptr[u], h_indptr[u + 1]):
                h = h_indices[t]
                n_hist += n_of[h]
                for g in range(n_cats):
                    pu[g] += share[h, g]
            if n_hist == 0:
                for j in range(nk):
                    out[j, u] = np.nan
                continue
            for g in range(n_cats):
                pu[g] /= n_hist
            qu[:] = 0.0
            m = 0
            j = 0
            for p in range(kmax):
                item = topk[u, p]
                if item >= 0 and n_of[item] > 0:
                    for g in range(n_cats):
                        qu[g] += share[item, g]
                    m += 1
                if p + 1 == ks[j]:
                    n_log = 0
                    p_missing = 0.0  # q~ = alpha p where q = 0: the term is -p log(alpha), no log to take
                    for g in range(n_cats):
                        pg = pu[g]
                        qg = qu[g]
                        ratio[n_log] = pg / ((1.0 - alpha) * qg / m + alpha * pg)
                        weight[n_log] = pg
                        n_log += (pg > 0.0) & (qg > 0.0)
                        p_missing += pg if qg == 0.0 else 0.0
                    kl = 0.0
                    for x in range(n_log):
                        kl += weight[x] * np.log(ratio[x])
                    out[j, u] = kl - p_missing * log_alpha
                    j += 1


# ----------------------------------------------------------------------------------------------------------
# Wrappers: checked, contiguous inputs -> {k: float64 (n,)} per-user values


def _prepared(topk: np.ndarray, ks: Any) -> tuple[np.ndarray, np.ndarray]:
    from recux.kernels.accuracy import normalize_ks

    topk = np.ascontiguousarray(topk, dtype=np.int32)
    if topk.ndim != 2:
        raise ValueError(f"topk must be 2-D (users x K), got shape {topk.shape}")
    return topk, normalize_ks(ks, topk.shape[1])


def _chunks(n: int, buffer_bytes: int) -> int:
    """Blocks of users: a few per thread, fewer when each block's scratch buffers are large."""
    threads = nb.get_num_threads()
    per = 4 if buffer_bytes * 4 * threads <= _MAX_SCRATCH_BYTES else 1
    return max(1, min(n, per * threads))


def _csr(indptr: np.ndarray, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.ascontiguousarray(indptr, dtype=np.int64), np.ascontiguousarray(indices, dtype=np.int32)


def _as_dict(out: np.ndarray, ks: np.ndarray) -> dict[int, np.ndarray]:
    return {int(k): out[j] for j, k in enumerate(ks)}


def dense_categories(cat_indptr: np.ndarray, n_cats: int, n_items: int | None = None) -> bool:
    """Whether the category kernels use dense (n_items x n_cats) rows: few categories and a small matrix."""
    n_items = len(cat_indptr) - 1 if n_items is None else n_items
    return 0 < n_cats <= _DENSE_MAX_CATS and n_items * n_cats * 8 <= _DENSE_MAX_BYTES


def category_rows(cat_indptr: np.ndarray, cat_indices: np.ndarray, n_cats: int, power: float) -> np.ndarray:
    """(n_items, n_cats) float64: row i holds 1 / |G_i|^power on item i's categories G_i, 0 elsewhere
    (power 1: p(g|i) of miscalibration; power 0.5: the unit multi-hot vector of cosine ILD)."""
    sizes = np.diff(cat_indptr).astype(np.float64)
    weight = 1.0 / (sizes if power == 1.0 else np.sqrt(sizes) if power == 0.5 else sizes ** power)
    rows = np.zeros((len(sizes), n_cats), dtype=np.float64)
    item = np.repeat(np.arange(len(sizes)), np.diff(cat_indptr))
    rows[item, cat_indices] = weight[item]
    return rows


def ild(topk: np.ndarray, ks: Any, cat_indptr: np.ndarray, cat_indices: np.ndarray, n_cats: int,
        distance: str = "cosine", dense: bool | None = None) -> dict[int, np.ndarray]:
    """Per-user category ILD ``{k: values}`` (``distance``: cosine or jaccard; see the kernels). ``dense``:
    cosine through dense category rows (None: when ``dense_categories``)."""
    topk, kk = _prepared(topk, ks)
    cat_indptr, cat_indices = _csr(cat_indptr, cat_indices)
    out = np.empty((len(kk), topk.shape[0]), dtype=np.float64)
    if topk.shape[0]:
        if distance == "cosine" and (dense_categories(cat_indptr, n_cats) if dense is None else dense):
            unit = category_rows(cat_indptr, cat_indices, int(n_cats), 0.5)
            ild_cosine_dense_kernel(topk, kk, unit, cat_indptr, out, _chunks(topk.shape[0], 8 * int(n_cats)))
        elif distance == "cosine":
            ild_cosine_kernel(topk, kk, cat_indptr, cat_indices, int(n_cats), out,
                              _chunks(topk.shape[0], 8 * int(n_cats)))
        elif distance == "jaccard":
            ild_jaccard_kernel(topk, kk, cat_indptr, cat_indices, out)
        else:
            raise ValueError(f"distance={distance!r}: use cosine or jaccard")
    return _as_dict(out, kk)


def semantic_ild(topk: np.ndarray, ks: Any, emb: np.ndarray) -> dict[int, np.ndarray]:
    """Per-user embedding ILD ``{k: values}``; ``emb`` (n_items, d) with unit rows."""
    topk, kk = _prepared(topk, ks)
    emb = np.ascontiguousarray(emb, dtype=np.float32)
    out = np.empty((len(kk), topk.shape[0]), dtype=np.float64)
    if topk.shape[0]:
        semantic_ild_kernel(topk, kk, emb, out, _chunks(topk.shape[0], 8 * emb.shape[1]))
    return _as_dict(out, kk)


def unexpectedness(topk: np.ndarray, ks: Any, emb: np.ndarray, h_indptr: np.ndarray, h_indices: np.ndarray
                   ) -> dict[int, np.ndarray]:
    """Per-user embedding unexpectedness ``{k: values}`` against the history rows (row r = topk row r)."""
    topk, kk = _prepared(topk, ks)
    emb = np.ascontiguousarray(emb, dtype=np.float32)
    h_indptr, h_indices = _csr(h_indptr, h_indices)
    out = np.empty((len(kk), topk.shape[0]), dtype=np.float64)
    if topk.shape[0]:
        unexpectedness_kernel(topk, kk, emb, h_indptr, h_indices, out, _chunks(topk.shape[0], 8 * emb.shape[1]))
    return _as_dict(out, kk)


def popularity_order(item_counts: np.ndarray) -> np.ndarray:
    """Item codes by training popularity, most popular first; ties by lower item code (a stable sort)."""
    return np.argsort(-np.asarray(item_counts, dtype=np.int64), kind="stable").astype(np.int32)


def popularity_surprise(topk: np.ndarray, ks: Any, item_counts: np.ndarray, h_indptr: np.ndarray,
                        h_indices: np.ndarray, gt_indptr: np.ndarray, gt_indices: np.ndarray
                        ) -> tuple[dict[int, np.ndarray], dict[int, np.ndarray]]:
    """Per-user (unexpectedness_pop, serendipity) ``{k: values}`` (see ``popularity_surprise_kernel``)."""
    topk, kk = _prepared(topk, ks)
    n_items = len(item_counts)
    h_indptr, h_indices = _csr(h_indptr, h_indices)
    gt_indptr, gt_indices = _csr(gt_indptr, gt_indices)
    out_u = np.empty((len(kk), topk.shape[0]), dtype=np.float64)
    out_s = np.empty_like(out_u)
    if topk.shape[0]:
        popularity_surprise_kernel(topk, kk, popularity_order(item_counts), h_indptr, h_indices, gt_indptr,
                                   gt_indices, n_items, out_u, out_s, _chunks(topk.shape[0], 9 * n_items))
    return _as_dict(out_u, kk), _as_dict(out_s, kk)


def miscalibration(topk: np.ndarray, ks: Any, cat_indptr: np.ndarray, cat_indices: np.ndarray, n_cats: int,
                   h_indptr: np.ndarray, h_indices: np.ndarray, alpha: float = 0.01, dense: bool | None = None
                   ) -> dict[int, np.ndarray]:
    """Per-user Steck miscalibration ``{k: values}`` (see ``miscalibration_kernel``). ``dense``: through dense
    category rows (None: when ``dense_categories``)."""
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha={alpha} must lie in (0, 1)")
    topk, kk = _prepared(topk, ks)
    cat_indptr, cat_indices = _csr(cat_indptr, cat_indices)
    h_indptr, h_indices = _csr(h_indptr, h_indices)
    out = np.empty((len(kk), topk.shape[0]), dtype=np.float64)
    if topk.shape[0]:
        n_chunks = _chunks(topk.shape[0], 24 * int(n_cats))
        if dense_categories(cat_indptr, n_cats) if dense is None else dense:
            share = category_rows(cat_indptr, cat_indices, int(n_cats), 1.0)
            n_of = (np.diff(cat_indptr) > 0).astype(np.int64)
            miscalibration_dense_kernel(topk, kk, share, n_of, h_indptr, h_indices, float(alpha), out, n_chunks)
        else:
            miscalibration_kernel(topk, kk, cat_indptr, cat_indices, int(n_cats), h_indptr, h_indices,
                                  float(alpha), out, n_chunks)
    return _as_dict(out, kk)
