"""EASE (Steck 2019): a closed-form linear item-item model. B minimises ||X - XB||^2 + l2 ||B||^2 subject
to diag(B) = 0, whose solution is B = I - P / diag(P) (column j divided by P[j, j]) with P = (X'X + l2 I)^-1.

``score(u) = X[u] @ B`` with X the binary training matrix. The solve is dense (n_items x n_items, float64),
so it suits catalogues up to a few tens of thousands of items.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
import scipy.sparse as sp

from recux.errors import ConfigError
from recux.model import FitContext, Recommender
from recux.plugins.models._history import binary_rows, training_rows
from recux.registry import register


def spd_inverse(a: np.ndarray) -> np.ndarray:
    """Inverse of a symmetric positive definite float64 matrix (overwritten) via LAPACK potrf + potri:
    ~2x fewer flops than solving against the identity."""
    c, info = scipy.linalg.lapack.dpotrf(a, lower=True, overwrite_a=True, clean=False)
    if info == 0:
        c, info = scipy.linalg.lapack.dpotri(c, lower=True, overwrite_c=True)
    if info != 0:
        raise np.linalg.LinAlgError(f"Cholesky inversion failed (LAPACK info={info}); increase l2")
    lower = np.tril(c)
    return lower + np.tril(lower, -1).T


def ease_weights(x: sp.spmatrix, l2: float) -> np.ndarray:
    """(n_items x n_items) float64 EASE weights for a users x items matrix ``x``; zero diagonal."""
    x = sp.csr_matrix(x, dtype=np.float64)
    gram = (x.T @ x).toarray()
    gram[np.diag_indices_from(gram)] += l2  # symmetric positive definite for l2 > 0
    p = spd_inverse(gram)
    b = p / (-np.diag(p))[None, :]
    b[np.diag_indices_from(b)] = 0.0
    return b


@register("model", "ease", training="closed_form")
class EASE(Recommender):
    """Embarrassingly Shallow Autoencoder: item-item weights from one regularised linear solve."""

    def __init__(self, l2: float = 350.0) -> None:
        """l2: ridge penalty added to the diagonal of the item Gram matrix X'X (must be > 0)."""
        if not l2 > 0:
            raise ConfigError(f"ease: l2 must be > 0 (it makes X'X + l2 I invertible), got {l2}")
        self.l2 = float(l2)
        self.weights: np.ndarray | None = None  # float32 copy of B used for scoring
        self._train: sp.csr_matrix | None = None

    def fit(self, ctx: FitContext) -> None:
        train = ctx.split.train
        self.n_users, self.n_items = train.n_users, train.n_items
        self._train = train.csr(binary=True)
        self.weights = ease_weights(self._train, self.l2).astype(np.float32)

    def score(self, users: np.ndarray) -> np.ndarray:
        if self.weights is None or self._train is None:
            raise RuntimeError("EASE.score called before fit")
        users = np.asarray(users, dtype=np.int64)
        return np.asarray(self._train[users] @ self.weights, dtype=np.float32)

    def item_item(self) -> np.ndarray:
        """B: score(u, i) = sum over the user's training items j of B[j, i]."""
        if self.weights is None:
            raise RuntimeError("EASE.item_item called before fit")
        return self.weights

    def history(self, users: np.ndarray) -> list[np.ndarray]:
        return training_rows(self._train, users)

    def score_histories(self, histories) -> np.ndarray:
        return np.asarray(binary_rows(histories, self.n_items) @ self.item_item(), dtype=np.float32)
