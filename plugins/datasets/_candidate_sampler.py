"""A synthetic world's interactions at scale (1M users x 100k items x 50M interactions on a laptop): each
user's items are drawn from candidates instead of from a dense users x items logit matrix.

The exact sampler of ``synthetic.py`` draws each user's k items without replacement from
softmax(true + noise * N(0, 1) + log pop) by Gumbel-top-k over the whole catalogue, which needs the dense
(n_users x n_items) matrices (400 GB at 1M x 100k). This one approximates it by sampling-importance-resampling
(Rubin 1987; the "sampled softmax" of Bengio & Senecal 2008): draw m = ceil(oversample * k) + 8 candidates with
replacement from the popularity prior (the proposal), merge repeated draws (an item drawn c times carries
c times the importance weight), then keep the k unique candidates of largest
    true + noise * N(0, 1) + log c + Gumbel,
Gumbel-top-k with log weight = log importance weight exp(true + noise) summed over the item's draws. As
oversample grows it approaches the exact sampler's distribution. Memory is O(users per chunk x m) plus the
output; true scores are dot products computed per candidate, never a dense matrix. Seeded: the same seed,
settings and chunk size give the same data.
"""

from __future__ import annotations

import numba as nb
import numpy as np

CHUNK_USERS = 32_768  # users per chunk of random draws (part of the generator's definition: keep it fixed)


@nb.njit(cache=True)
def _select_kernel(first_user, ptr, cand, z, gumbel, uf, itf, scale, noise, k, stamp, slot,
                   out_item, out_true, out_count):
    """For each chunk user u (global code first_user + u): merge the draws cand[ptr[u]:ptr[u+1]], key each
    unique item by true + noise * z(first draw) + log(draw count) + gumbel(first draw), keep the k[u] largest
    (fewer when fewer unique items were drawn). Writes items and true scores user after user into
    out_item/out_true and each user's count into out_count; returns the number written. ``stamp`` (per
    item, last user that drew it, +1) and ``slot`` (its position in that user's unique list) are scratch."""
    pos = 0
    d = uf.shape[1]
    m_max = 0
    for u in range(len(ptr) - 1):
        m_max = max(m_max, ptr[u + 1] - ptr[u])
    items = np.empty(m_max, dtype=np.int64)
    trues = np.empty(m_max, dtype=np.float64)
    base = np.empty(m_max, dtype=np.float64)
    counts = np.empty(m_max, dtype=np.float64)
    for u in range(len(ptr) - 1):
        g_user = first_user + u
        n_unique = 0
        for t in range(ptr[u], ptr[u + 1]):
            i = cand[t]
            if stamp[i] == g_user + 1:
                counts[slot[i]] += 1.0
                continue
            stamp[i] = g_user + 1
            slot[i] = n_unique
            dot = 0.0
            for f in range(d):
                dot += uf[g_user, f] * itf[i, f]
            items[n_unique] = i
            trues[n_unique] = dot * scale
            base[n_unique] = dot * scale + noise * z[t] + gumbel[t]
            counts[n_unique] = 1.0
            n_unique += 1
        keys = np.empty(n_unique, dtype=np.float64)
        for q in range(n_unique):
            keys[q] = -(base[q] + np.log(counts[q]))
        order = np.argsort(keys, kind="mergesort")
        take = min(k[u], n_unique)
        for q in range(take):
            out_item[pos + q] = items[order[q]]
            out_true[pos + q] = trues[order[q]]
        out_count[u] = take
        pos += take
    return pos


def sample_interactions(rng: np.random.Generator, uf: np.ndarray, itf: np.ndarray, pop: np.ndarray,
                        k: np.ndarray, noise: float, oversample: float, span: int
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(user int32, item int32, true score float32, time offset int64) of every interaction, users in code
    order and each user's rows in time order; time offsets are uniform in [0, span) and independent of the
    sampling order."""
    n_users, n_items = uf.shape[0], itf.shape[0]
    cdf = np.cumsum(pop)
    cdf /= cdf[-1]
    scale = 1.0 / np.sqrt(uf.shape[1])
    total = int(k.sum())
    user = np.empty(total, dtype=np.int32)
    item = np.empty(total, dtype=np.int32)
    true = np.empty(total, dtype=np.float32)
    offset = np.empty(total, dtype=np.int64)
    stamp = np.zeros(n_items, dtype=np.int64)
    slot = np.zeros(n_items, dtype=np.int64)
    filled = 0
    for a in range(0, n_users, CHUNK_USERS):
        b = min(a + CHUNK_USERS, n_users)
        kk = k[a:b]
        m = np.ceil(oversample * kk).astype(np.int64) + 8
        ptr = np.concatenate([[0], np.cumsum(m)])
        draws = int(ptr[-1])
        cand = np.minimum(np.searchsorted(cdf, rng.random(draws), side="right"), n_items - 1)
        z = rng.standard_normal(draws)
        gumbel = -np.log(-np.log(rng.random(draws)))
        out_item = np.empty(int(kk.sum()), dtype=np.int64)
        out_true = np.empty(int(kk.sum()), dtype=np.float64)
        got = np.empty(b - a, dtype=np.int64)
        n = _select_kernel(a, ptr, cand, z, gumbel, uf, itf, scale, noise, kk, stamp, slot, out_item, out_true,
                           got)
        users = np.repeat(np.arange(a, b, dtype=np.int64), got)
        ts = rng.integers(0, span, n)
        chrono = np.argsort((users - a) * span + ts, kind="stable")  # time order within each user
        user[filled:filled + n] = users[chrono]
        item[filled:filled + n] = out_item[:n][chrono]
        true[filled:filled + n] = out_true[:n][chrono]
        offset[filled:filled + n] = ts[chrono]
        filled += n
    return user[:filled], item[:filled], true[:filled], offset[:filled]
