"""Item-based k-nearest-neighbours: cosine similarity between the item columns of the binary training
matrix, shrunk towards zero for rarely co-rated pairs and pruned to each item's k nearest neighbours.

``score(u, j) = sum_{i in train(u)} W[i, j]`` where column j of W holds the similarities of item j's
k nearest neighbours (ties broken by the lower item code; zero similarities are never kept).
The similarity is built in blocks of target items, so memory stays at one (n_items x block) array.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from recux.model import FitContext, Recommender
from recux.plugins.models._history import binary_rows, training_rows
from recux.ranking import topk_from_scores
from recux.registry import register


def cosine_topk(
    x: sp.csr_matrix, k: int, shrink: float = 0.0, block_bytes: int = 256 << 20
) -> sp.csr_matrix:
    """(n_items x n_items) W with W[i, j] = x_i.x_j / (|x_i| |x_j| + shrink) for the k items i most
    similar to j (i != j, similarity > 0), zero elsewhere; x is users x items."""
    x = sp.csr_matrix(x, dtype=np.float32)
    n_items = x.shape[1]
    k = int(min(k, max(n_items - 1, 0)))
    xt = x.T.tocsr()  # items x users
    norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=0)).ravel()).astype(np.float64)
    block = max(1, min(n_items, block_bytes // max(1, 8 * n_items)))
    rows, cols, vals = [], [], []
    for start in range(0, n_items, block):
        stop = min(n_items, start + block)
        targets = np.arange(start, stop)
        dots = (xt[targets] @ x).toarray().astype(np.float64)  # (block, n_items): target j vs every i
        denom = norms[targets, None] * norms[None, :] + shrink
        sim = np.divide(dots, denom, out=np.zeros_like(dots), where=denom > 0)
        sim[sim <= 0] = -np.inf  # never keep non-positive similarities
        sim[np.arange(stop - start), targets] = -np.inf  # an item is not its own neighbour
        if k == 0:
            continue
        nbr, val = topk_from_scores(sim, k)
        keep = nbr >= 0
        rows.append(nbr[keep])
        cols.append(np.repeat(targets, keep.sum(axis=1)))
        vals.append(val[keep])
    if rows:
        r, c, v = np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)
    else:
        r = c = np.zeros(0, dtype=np.int64)
        v = np.zeros(0, dtype=np.float32)
    w = sp.csr_matrix((v.astype(np.float32), (r, c)), shape=(n_items, n_items))
    w.sort_indices()
    return w


@register("model", "itemknn", training="closed_form")
class ItemKNN(Recommender):
    """Item-based KNN with shrunk cosine similarity over binary training interactions."""

    def __init__(self, k: int = 300, shrink: float = 0.0) -> None:
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        if shrink < 0:
            raise ValueError(f"shrink must be >= 0, got {shrink}")
        self.k = int(k)
        self.shrink = float(shrink)
        self.similarity: sp.csr_matrix | None = None
        self._train: sp.csr_matrix | None = None

    def fit(self, ctx: FitContext) -> None:
        train = ctx.split.train
        self.n_users, self.n_items = train.n_users, train.n_items
        self._train = train.csr(binary=True)
        self.similarity = cosine_topk(self._train, self.k, self.shrink)

    def score(self, users: np.ndarray) -> np.ndarray:
        if self.similarity is None or self._train is None:
            raise RuntimeError("ItemKNN.score called before fit")
        users = np.asarray(users, dtype=np.int64)
        return np.asarray((self._train[users] @ self.similarity).toarray(), dtype=np.float32)

    def item_item(self) -> sp.csr_matrix:
        """W: score(u, i) = sum over the user's training items j of W[j, i]."""
        if self.similarity is None:
            raise RuntimeError("ItemKNN.item_item called before fit")
        return self.similarity

    def history(self, users: np.ndarray) -> list[np.ndarray]:
        return training_rows(self._train, users)

    def score_histories(self, histories) -> np.ndarray:
        return np.asarray((binary_rows(histories, self.n_items) @ self.item_item()).toarray(), dtype=np.float32)
