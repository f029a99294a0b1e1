"""Graded ground truth: relevance grades (e.g. ratings) for the held-out pairs, for graded metrics such as
``ndcg_graded``/``ndcg_burges``. Binary metrics never read grades: every ground-truth pair is relevant to them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from recux.errors import ConfigError, DataError


def graded_truth_csr(interactions: Any, what: str = "the test split") -> sp.csr_matrix:
    """users x items CSR whose data is the rating of each (user, item) pair of an ``Interactions``.

    A pair rated more than once keeps its highest rating. Raises DataError when there are no ratings
    (implicit feedback): graded metrics need them.
    """
    if interactions.rating is None:
        raise DataError(
            f"graded metrics (ndcg_graded, ndcg_burges) need ratings, but {what} has none (implicit feedback). "
            "Drop them from metrics.plugins or use a dataset with ratings (e.g. dataset.rating_col=...)."
        )
    user = np.asarray(interactions.user, dtype=np.int64)
    item = np.asarray(interactions.item, dtype=np.int64)
    rating = np.asarray(interactions.rating, dtype=np.float64)
    order = np.lexsort((rating, item, user))  # per pair, the highest rating comes last
    u, i, r = user[order], item[order], rating[order]
    last = np.ones(len(u), dtype=bool)
    last[:-1] = (u[1:] != u[:-1]) | (i[1:] != i[:-1])
    m = sp.csr_matrix((r[last], (u[last], i[last])), shape=(interactions.n_users, interactions.n_items))
    m.sort_indices()
    return m


def align_relevance(graded: Any, gt_indptr: np.ndarray, gt_indices: np.ndarray) -> np.ndarray:
    """Relevance grade of each ground-truth entry (float64, aligned with ``gt_indices``) from ``graded``,
    a sparse matrix with the same rows as the ground truth. Ground-truth pairs absent from ``graded`` get
    grade 0 (no gain); a graded pair outside the ground truth, a repeated pair, or a negative or non-finite
    grade is refused."""
    if not sp.issparse(graded):
        raise ConfigError(f"graded_truth must be a scipy sparse matrix (rows x items), got {type(graded).__name__}")
    n = len(gt_indptr) - 1
    m = sp.csr_matrix(graded, dtype=np.float64, copy=True)
    if m.shape[0] != n:
        raise DataError(f"graded_truth has {m.shape[0]} rows but topk has {n}; align them row by row")
    m.sort_indices()
    rows = np.repeat(np.arange(n, dtype=np.int64), np.diff(m.indptr))
    cols = m.indices.astype(np.int64)
    if len(cols) > 1 and ((rows[1:] == rows[:-1]) & (cols[1:] == cols[:-1])).any():
        t = int(np.flatnonzero((rows[1:] == rows[:-1]) & (cols[1:] == cols[:-1]))[0])
        raise DataError(f"graded_truth holds row {int(rows[t])}, item {int(cols[t])} more than once; "
                        "give one grade per (user, item)")
    bad = ~np.isfinite(m.data) | (m.data < 0)
    if bad.any():
        t = int(np.flatnonzero(bad)[0])
        raise DataError(f"graded_truth: row {int(rows[t])}, item {int(cols[t])} has grade {m.data[t]!r}; "
                        "grades must be finite and >= 0")
    width = np.int64(max(int(cols.max()) + 1 if len(cols) else 0, int(gt_indices.max()) + 1 if len(gt_indices)
                         else 0))
    gt_rows = np.repeat(np.arange(n, dtype=np.int64), np.diff(gt_indptr))
    gt_keys = gt_rows * width + gt_indices.astype(np.int64)  # sorted: rows ascending, indices sorted per row
    keys = rows * width + cols
    pos = np.searchsorted(gt_keys, keys)
    found = (pos < len(gt_keys)) & (gt_keys[np.minimum(pos, len(gt_keys) - 1)] == keys) if len(gt_keys) else \
        np.zeros(len(keys), dtype=bool)
    outside = ~found & (m.data > 0)
    if outside.any():
        t = int(np.flatnonzero(outside)[0])
        raise DataError(f"graded_truth grades row {int(rows[t])}, item {int(cols[t])}, which is not in the ground "
                        "truth; grade only held-out pairs")
    rel = np.zeros(len(gt_indices), dtype=np.float64)
    rel[pos[found]] = m.data[found]
    return rel
