"""Rating predictors from ratings alone: the baselines a language-model satisfaction judge must beat.

Each model has ``fit(user, item, rating, n_users, n_items)`` (int codes and float ratings of the training
ratings) and ``predict(user, item) -> float64 array``. Users or items without a training rating get the part of
the prediction that does not need them (the global mean plus the other side's term).

- ``popularity``: the item's number of training ratings (a ranking score, not a rating).
- ``item_mean``: the item's mean training rating (global mean for an unseen item).
- ``user_item_means``: r_u + r_i - mu, the user's and the item's mean ratings, unregularised.
- ``biases``: the baseline predictor mu + b_u + b_i minimising sum (r - mu - b_u - b_i)^2 + lam_u sum b_u^2
  + lam_i sum b_i^2, by alternating exact least squares (Koren 2010, "Factor in the neighbors", section 2.1).
- ``biased_mf``: mu + b_u + b_i + p_u . q_i, regularised squared error (Koren, Bell & Volinsky 2009, "Matrix
  factorization techniques for recommender systems", eq. 5), fitted by alternating least squares: with the item
  side fixed, each user's (p_u, b_u) is the ridge solution over its ratings with features (q_i, 1) and targets
  r - mu - b_i, and symmetrically for the items (Zhou et al. 2008, ALS-WR, scale the ridge by the count).
- ``bayesian_mf``: the same model, mu + b_u + b_i + p_u . q_i, as Bayesian probabilistic matrix factorisation
  (Salakhutdinov & Mnih 2008, "Bayesian probabilistic matrix factorization using Markov chain Monte Carlo",
  ICML), the biases folded into the factor vectors; the prediction is the posterior mean of the rating,
  averaged over Gibbs samples (recux._bpmf).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from recux.errors import ConfigError


def _check(user: np.ndarray, item: np.ndarray, rating: np.ndarray, n_users: int, n_items: int) -> tuple:
    user, item = np.asarray(user, np.int64), np.asarray(item, np.int64)
    rating = np.asarray(rating, np.float64)
    if not len(user) == len(item) == len(rating) or len(user) == 0:
        raise ConfigError(f"rating model: user, item and rating must be equal non-empty lengths, got {len(user)}, "
                          f"{len(item)}, {len(rating)}")
    if user.max() >= n_users or item.max() >= n_items or user.min() < 0 or item.min() < 0:
        raise ConfigError(f"rating model: codes out of range for {n_users} users and {n_items} items")
    return user, item, rating


def _group_mean(codes: np.ndarray, values: np.ndarray, n: int, shrink: float = 0.0) -> np.ndarray:
    """sum(values) / (count + shrink) per code (0 where a code has no value and shrink is 0)."""
    total = np.bincount(codes, weights=values, minlength=n)
    count = np.bincount(codes, minlength=n) + shrink
    return np.divide(total, count, out=np.zeros(n), where=count > 0)


class RatingModel:
    name = "base"

    def fit(self, user, item, rating, n_users: int, n_items: int) -> RatingModel:
        raise NotImplementedError

    def predict(self, user, item) -> np.ndarray:
        raise NotImplementedError

    def params(self) -> dict[str, Any]:
        return {}


class Popularity(RatingModel):
    name = "popularity"

    def fit(self, user, item, rating, n_users, n_items):
        _, item, _ = _check(user, item, rating, n_users, n_items)
        self.counts = np.bincount(item, minlength=n_items).astype(np.float64)
        return self

    def predict(self, user, item):
        return self.counts[np.asarray(item)]


class ItemMean(RatingModel):
    name = "item_mean"

    def fit(self, user, item, rating, n_users, n_items):
        _, item, rating = _check(user, item, rating, n_users, n_items)
        self.mu = float(rating.mean())
        seen = np.bincount(item, minlength=n_items) > 0
        self.means = np.where(seen, _group_mean(item, rating, n_items), self.mu)
        return self

    def predict(self, user, item):
        return self.means[np.asarray(item)]


class UserItemMeans(RatingModel):
    """r_u + r_i - mu (a missing side contributes mu, i.e. nothing)."""

    name = "user_item_means"

    def fit(self, user, item, rating, n_users, n_items):
        user, item, rating = _check(user, item, rating, n_users, n_items)
        self.mu = float(rating.mean())
        self.du = _group_mean(user, rating - self.mu, n_users)
        self.di = _group_mean(item, rating - self.mu, n_items)
        return self

    def predict(self, user, item):
        return self.mu + self.du[np.asarray(user)] + self.di[np.asarray(item)]


@dataclass
class Biases(RatingModel):
    """mu + b_u + b_i, ridge-regularised (lam_u on users, lam_i on items), ``iters`` alternating exact steps:
    b_i = sum_u (r - mu - b_u) / (lam_i + n_i), b_u = sum_i (r - mu - b_i) / (lam_u + n_u)."""

    lam_u: float = 10.0
    lam_i: float = 25.0
    iters: int = 10
    name: str = field(default="biases", init=False)

    def fit(self, user, item, rating, n_users, n_items):
        user, item, rating = _check(user, item, rating, n_users, n_items)
        self.mu = float(rating.mean())
        self.bu, self.bi = np.zeros(n_users), np.zeros(n_items)
        for _ in range(int(self.iters)):
            self.bi = _group_mean(item, rating - self.mu - self.bu[user], n_items, self.lam_i)
            self.bu = _group_mean(user, rating - self.mu - self.bi[item], n_users, self.lam_u)
        return self

    def predict(self, user, item):
        return self.mu + self.bu[np.asarray(user)] + self.bi[np.asarray(item)]

    def params(self):
        return {"lam_u": self.lam_u, "lam_i": self.lam_i, "iters": self.iters}


@dataclass
class BiasedMF(RatingModel):
    """mu + b_u + b_i + p_u . q_i by ALS: ``factors`` dimensions, ridge ``reg`` x (the row's rating count) on
    the factors and the bias of the side being solved, ``iters`` sweeps, factors drawn N(0, init^2) by ``seed``."""

    factors: int = 32
    reg: float = 0.1
    iters: int = 15
    init: float = 0.1
    seed: int = 0
    name: str = field(default="biased_mf", init=False)

    def fit(self, user, item, rating, n_users, n_items):
        user, item, rating = _check(user, item, rating, n_users, n_items)
        if int(self.factors) < 1 or float(self.reg) <= 0 or int(self.iters) < 1:
            raise ConfigError(f"biased_mf: factors and iters must be >= 1 and reg > 0, got {self.factors}, "
                              f"{self.iters}, {self.reg}")
        rng = np.random.default_rng(self.seed)
        self.mu = float(rating.mean())
        k = int(self.factors)
        self.P, self.Q = rng.normal(0, self.init, (n_users, k)), rng.normal(0, self.init, (n_items, k))
        self.bu, self.bi = np.zeros(n_users), np.zeros(n_items)
        by_user, by_item = _rows(user, item, n_users), _rows(item, user, n_items)
        resid = rating - self.mu
        for _ in range(int(self.iters)):
            self.P, self.bu = _solve_side(by_user, self.Q, self.bi, resid, self.reg)
            self.Q, self.bi = _solve_side(by_item, self.P, self.bu, resid, self.reg)
        return self

    def predict(self, user, item):
        u, i = np.asarray(user), np.asarray(item)
        return self.mu + self.bu[u] + self.bi[i] + np.einsum("nk,nk->n", self.P[u], self.Q[i])

    def params(self):
        return {"factors": self.factors, "reg": self.reg, "iters": self.iters, "init": self.init, "seed": self.seed}


def _rows(codes: np.ndarray, other: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(indptr, other codes, rating positions) of the ratings grouped by ``codes``."""
    order = np.argsort(codes, kind="stable")
    indptr = np.concatenate([[0], np.cumsum(np.bincount(codes, minlength=n))])
    return indptr, other[order], order


def _solve_side(rows: tuple, F: np.ndarray, fb: np.ndarray, resid: np.ndarray, reg: float
                ) -> tuple[np.ndarray, np.ndarray]:
    """Each row's ridge solution [x, b] = argmin sum_j (resid_j - fb_j - x . F_j - b)^2 + reg n (|x|^2 + b^2)
    over its ratings j (a row without ratings gets zeros)."""
    indptr, other, pos = rows
    n, k = len(indptr) - 1, F.shape[1]
    X = np.hstack([F, np.ones((F.shape[0], 1))])
    A = np.zeros((n, k + 1, k + 1))
    rhs = np.zeros((n, k + 1))
    for r in range(n):
        lo, hi = indptr[r], indptr[r + 1]
        if hi == lo:
            continue
        Xr = X[other[lo:hi]]
        A[r] = Xr.T @ Xr
        rhs[r] = Xr.T @ (resid[pos[lo:hi]] - fb[other[lo:hi]])
    counts = np.diff(indptr).astype(np.float64)
    A += (reg * np.maximum(counts, 1.0))[:, None, None] * np.eye(k + 1)
    sol = np.linalg.solve(A, rhs[..., None])[..., 0]
    return sol[:, :k], sol[:, k]


@dataclass
class BayesianMF(RatingModel):
    """mu + b_u + b_i + p_u . q_i by Gibbs sampling (recux._bpmf): ``factors`` dimensions, ``samples`` sweeps of
    which the first ``burn`` are not averaged, observation precision ``alpha`` (None: sampled, Gamma(1, 1) prior),
    ``seed``. The average over the S kept sweeps s of p_us . q_is is the dot product of the concatenated
    [p_u1 .. p_uS] / sqrt(S) and [q_i1 .. q_iS] / sqrt(S), so ``P``, ``Q``, ``bu`` (mean b_u), ``bi`` hold the
    posterior-mean predictor in BiasedMF's form."""

    factors: int = 10
    samples: int = 150
    burn: int = 30
    alpha: float | None = None
    seed: int = 0
    name: str = field(default="bayesian_mf", init=False)

    def fit(self, user, item, rating, n_users, n_items, keep_draws: bool = False):
        """``keep_draws``: also keep each averaged sweep's (P, Q, bu, bi) in ``draws`` (for checks)."""
        from recux._bpmf import gibbs

        user, item, rating = _check(user, item, rating, n_users, n_items)
        if int(self.factors) < 1 or not 0 <= int(self.burn) < int(self.samples) or (
                self.alpha is not None and float(self.alpha) <= 0):
            raise ConfigError(f"bayesian_mf: factors >= 1, 0 <= burn < samples and alpha > 0 (or null) needed, got "
                              f"factors={self.factors}, burn={self.burn}, samples={self.samples}, alpha={self.alpha}")
        self.mu = float(rating.mean())
        draws = list(gibbs(_rows(user, item, n_users), _rows(item, user, n_items), user, item, rating - self.mu,
                           int(self.factors), int(self.samples), int(self.burn), self.alpha,
                           np.random.default_rng(self.seed)))
        root = np.sqrt(len(draws))
        self.P = np.hstack([d[0] for d in draws]) / root
        self.Q = np.hstack([d[1] for d in draws]) / root
        self.bu = np.mean([d[2] for d in draws], axis=0)
        self.bi = np.mean([d[3] for d in draws], axis=0)
        self.draws = draws if keep_draws else None
        return self

    def predict(self, user, item):
        u, i = np.asarray(user), np.asarray(item)
        return self.mu + self.bu[u] + self.bi[i] + np.einsum("nk,nk->n", self.P[u], self.Q[i])

    def params(self):
        return {"factors": self.factors, "samples": self.samples, "burn": self.burn, "alpha": self.alpha,
                "seed": self.seed}


@dataclass
class BayesianFM(RatingModel):
    """A Bayesian factorization machine by Gibbs sampling (recux._bfm; Freudenthaler et al. 2011, Rendle 2012)
    over the user id and the item id and, with ``implicit``, the implicit feedback of the TRAINING ratings given
    to ``fit``: the set N(u) of items the user rated (SVD++, Koren 2008) and the "flipped" set N(i) of users who
    rated the item (Rendle, Zhang & Koren 2019, "On the difficulty of evaluating baselines"), each weighted
    |N|^-1/2 (``norm="sqrt"``) or |N|^-1 (``norm="sum"``). Only the ratings passed to ``fit`` enter N(u), N(i):
    the pairs to be predicted never do. ``factors`` dimensions, ``samples`` sweeps of which the first ``burn``
    are not averaged, factors started N(0, init^2) by ``seed``. The posterior-mean predictor (average of the
    kept sweeps' predictions) is held in BiasedMF's form mu + bu + bi + P . Q: the mean of the sweeps' P_s Q_s^T
    is accumulated densely (n_users x n_items) and factored exactly by SVD into P, Q."""

    factors: int = 10
    samples: int = 200
    burn: int = 50
    implicit: bool = True
    norm: str = "sqrt"
    init: float = 0.1
    seed: int = 0
    user_side: Any = field(default=None, repr=False, compare=False)  # (n_users, m) side features or None
    item_side: Any = field(default=None, repr=False, compare=False)  # (n_items, m) side features or None
    name: str = field(default="bayesian_fm", init=False)

    MAX_CELLS = 50_000_000

    def fit(self, user, item, rating, n_users, n_items, keep_draws: bool = False):
        """``keep_draws``: also keep each averaged sweep's (w0, P, Q) in ``draws`` (for checks)."""
        from recux._bfm import gibbs

        user, item, rating = _check(user, item, rating, n_users, n_items)
        self._check_settings(n_users, n_items)
        XU, gU = side_design(user, item, n_users, n_items, self.implicit, self.norm, self.user_side)
        XI, gI = side_design(item, user, n_items, n_users, self.implicit, self.norm, self.item_side)
        self.mu = float(rating.mean())
        k = int(self.factors)
        M, bu, bi, draws = np.zeros((n_users, n_items)), np.zeros(n_users), np.zeros(n_items), []
        for w0, P, Q in gibbs(XU, gU, XI, gI, _rows(user, item, n_users), _rows(item, user, n_items), user, item,
                              rating - self.mu, k, int(self.samples), int(self.burn), float(self.init),
                              np.random.default_rng(self.seed)):
            M += P[:, :k] @ Q[:, :k].T
            bu += w0 + P[:, k]
            bi += Q[:, k]
            if keep_draws:
                draws.append((w0, P.copy(), Q.copy()))
        n = int(self.samples) - int(self.burn)
        self.bu, self.bi = bu / n, bi / n
        self.P, self.Q = _exact_factors(M / n)
        self.draws = draws if keep_draws else None
        return self

    def _check_settings(self, n_users: int, n_items: int) -> None:
        if int(self.factors) < 1 or not 0 <= int(self.burn) < int(self.samples) or float(self.init) <= 0:
            raise ConfigError(f"bayesian_fm: factors >= 1, 0 <= burn < samples and init > 0 needed, got "
                              f"factors={self.factors}, burn={self.burn}, samples={self.samples}, init={self.init}")
        if self.norm not in ("sqrt", "sum"):
            raise ConfigError(f"bayesian_fm: norm={self.norm!r}; choose sqrt (|N|^-1/2) or sum (|N|^-1)")
        if n_users * n_items > self.MAX_CELLS:
            raise ConfigError(f"bayesian_fm keeps a dense {n_users} x {n_items} posterior mean (over "
                              f"{self.MAX_CELLS} cells); use bayesian_mf for a catalogue this large")

    def predict(self, user, item):
        u, i = np.asarray(user), np.asarray(item)
        return self.mu + self.bu[u] + self.bi[i] + np.einsum("nk,nk->n", self.P[u], self.Q[i])

    def params(self):
        return {"factors": self.factors, "samples": self.samples, "burn": self.burn, "implicit": self.implicit,
                "norm": self.norm, "init": self.init, "seed": self.seed}


def side_design(codes: np.ndarray, other: np.ndarray, n: int, n_other: int, implicit: bool, norm: str,
                extra: Any = None) -> tuple[sp.csc_matrix, np.ndarray]:
    """(X in CSC form, the group of each column) of one side: the one-hot id (group 0); with ``implicit``, the
    row's rated set over the other side's codes (group 1) weighted |N|^-1/2 or |N|^-1; ``extra`` (n, m) side
    features (the next group)."""
    blocks, groups = [sp.identity(n, format="csr")], [np.zeros(n, np.int64)]
    if implicit:
        N = sp.csr_matrix((np.ones(len(codes)), (codes, other)), shape=(n, n_other))
        N.data[:] = 1.0  # duplicates count once
        count = np.diff(N.indptr).astype(np.float64)
        scale = np.divide(1.0, np.sqrt(count) if norm == "sqrt" else count, out=np.zeros(n), where=count > 0)
        blocks.append(sp.diags(scale) @ N)
        groups.append(np.ones(n_other, np.int64))
    if extra is not None:
        extra = sp.csr_matrix(extra, dtype=np.float64)
        if extra.shape[0] != n:
            raise ConfigError(f"bayesian_fm: side features have {extra.shape[0]} rows for {n} codes")
        blocks.append(extra)
        groups.append(np.full(extra.shape[1], len(groups), np.int64))
    return sp.hstack(blocks, format="csc"), np.concatenate(groups)


def side_features(frame: Any, id_col: str, bins: int = 5, max_levels: int = 100) -> sp.csr_matrix | None:
    """Side features of one side from its feature frame (row r = code r; ``id_col`` and text-like columns
    skipped): a string column with at most ``max_levels`` values one-hot; a list column multi-hot weighted
    |set|^-1/2; a numeric column one-hot in ``bins`` quantile bins (missing values a bin of their own). None
    when no column qualifies."""
    blocks = []
    for name in frame.columns:
        col = frame[name]
        if name == id_col:
            continue
        if col.dtype.is_numeric():
            v = col.cast(float).to_numpy()
            edges = np.unique(np.nanquantile(v, np.linspace(0, 1, bins + 1)[1:-1])) if np.isfinite(v).any() else []
            blocks.append(_one_hot(np.where(np.isfinite(v), np.digitize(np.nan_to_num(v), edges), -1)))
        elif str(col.dtype).startswith("List"):
            sets = [list(x) if x is not None else [] for x in col.to_list()]
            levels = sorted({x for xs in sets for x in xs})
            rows = [r for r, xs in enumerate(sets) for _ in xs]
            cols = [levels.index(x) for xs in sets for x in xs]
            M = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(sets), len(levels)))
            M.data[:] = 1.0
            count = np.diff(M.indptr).astype(np.float64)
            blocks.append(sp.diags(np.divide(1.0, np.sqrt(count), out=np.zeros_like(count), where=count > 0)) @ M)
        elif col.n_unique() <= max_levels:
            blocks.append(_one_hot(np.unique(np.asarray(col.cast(str).fill_null("")), return_inverse=True)[1]))
    return sp.hstack(blocks, format="csr") if blocks else None


def _one_hot(codes: np.ndarray) -> sp.csr_matrix:
    """One column per distinct value of ``codes`` (a row per entry)."""
    _, inv = np.unique(codes, return_inverse=True)
    return sp.csr_matrix((np.ones(len(inv)), (np.arange(len(inv)), inv)), shape=(len(inv), int(inv.max()) + 1))


def _exact_factors(M: np.ndarray, tol: float = 1e-12) -> tuple[np.ndarray, np.ndarray]:
    """(P, Q) with P Q^T = M up to singular values below tol x the largest (the SVD, U s^1/2, V s^1/2)."""
    U, s, Vt = np.linalg.svd(M, full_matrices=False)
    keep = s > tol * max(float(s[0]) if len(s) else 0.0, 1e-300)
    root = np.sqrt(s[keep])
    return U[:, keep] * root, Vt[keep].T * root


BASELINES = {"popularity": Popularity, "item_mean": ItemMean, "user_item_means": UserItemMeans,
             "biases": Biases, "biased_mf": BiasedMF, "bayesian_mf": BayesianMF,
             "bayesian_fm": BayesianFM}


def build(name: str, **params: Any) -> RatingModel:
    if name not in BASELINES:
        raise ConfigError(f"unknown rating model {name!r}; choose one of {', '.join(BASELINES)}")
    return BASELINES[name](**params)


class TextProfile(RatingModel):
    """A frozen language-model user-profile judge: cos(sum_{j in H_u} (r_uj - rbar_u) f_j, f_i), f the item
    text embeddings (row i = item code i), rbar_u the user's mean training rating: how close the item's text is
    to what the user rated above their own average. A ranking score, not a rating."""

    name = "text_profile"

    def __init__(self, feats: np.ndarray) -> None:
        self.feats = np.asarray(feats, np.float64)

    def fit(self, user, item, rating, n_users, n_items):
        user, item, rating = _check(user, item, rating, n_users, n_items)
        if self.feats.shape[0] != n_items:
            raise ConfigError(f"text_profile: {self.feats.shape[0]} item embeddings for {n_items} items")
        rbar = _group_mean(user, rating, n_users)
        prof = np.zeros((n_users, self.feats.shape[1]))
        np.add.at(prof, user, (rating - rbar[user])[:, None] * self.feats[item])
        self.profile = prof / np.maximum(np.linalg.norm(prof, axis=1, keepdims=True), 1e-12)
        self.unit = self.feats / np.maximum(np.linalg.norm(self.feats, axis=1, keepdims=True), 1e-12)
        return self

    def predict(self, user, item):
        return np.einsum("nd,nd->n", self.profile[np.asarray(user)], self.unit[np.asarray(item)])
