"""Reward models q(x, a, k) ~ E[r | context x, item a, position k] for the model-based estimators (DM, DR, ...).

Both cross-fit as OBP's ``RegressionModel.fit_predict(n_folds=...)``: ``KFold(n_folds, shuffle=True,
random_state)`` over rounds (re-implemented here: the same folds without importing scikit-learn); each fold's rounds get predictions from a model fitted on the other folds.

- ``LogisticRewardModel``: OBP's RegressionModel with a scikit-learn LogisticRegression base model: one model per
  position, fitted on that position's rounds, features [context, item features of a] (OBP's
  ``np.c_[context, action_context[action]]``; ``action_features="one_hot"`` uses the item's one-hot instead,
  "both" concatenates them). Predictions for every item come from the fitted coefficients in one matrix product
  (sigmoid(x w_x + z_a w_z + b)), equal to ``predict_proba`` on each (x, a) row.
  Solver: by default recux's own Newton iteration (``newton_logistic``, ~50x faster than a scikit-learn fit on
  these small problems; ``solver=<sklearn solver>`` uses scikit-learn) with ``tol=1e-10``, i.e. converged to the unique optimum of the
  L2-penalised log-loss (C=100, as OBP's example); OBP's default lbfgs with tol=1e-4 stops early, which on OBD
  (random -> BTS, 30 runs) moves the mean relative error of DM by -0.005, DR by -0.002, Switch-DR by -0.006
  and DRos by -0.005 (scikit-learn 1.9); lbfgs with tol=1e-10 gives the converged values (slowly).
- ``CTRRewardModel``: the per-(item, position) click-through rate, shrunk toward the position's overall rate:
  q(a, k) = (clicks(a, k) + s * ctr(k)) / (shows(a, k) + s), the same for every context.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit

from recux.bandit import BanditFeedback
from recux.errors import ConfigError

ACTION_FEATURES = ("item_context", "one_hot", "both")


def cross_fit_folds(n: int, n_folds: int, random_state: int | None) -> list[tuple[np.ndarray, np.ndarray]]:
    if n_folds < 1:
        raise ConfigError(f"n_folds must be >= 1, got {n_folds}")
    if n_folds == 1:
        idx = np.arange(n)
        return [(idx, idx)]
    if n_folds > n:
        raise ConfigError(f"n_folds={n_folds} exceeds the {n} rounds")
    # scikit-learn's KFold(n_folds, shuffle=True, random_state): RandomState(seed).shuffle(arange(n)), folds of
    # n // n_folds rounds (the first n % n_folds one more); test and train rounds each in increasing order
    order = np.arange(n)
    np.random.RandomState(random_state).shuffle(order)
    sizes = np.full(n_folds, n // n_folds)
    sizes[: n % n_folds] += 1
    folds, start = [], 0
    for size in sizes:
        mask = np.ones(n, dtype=bool)
        mask[order[start:start + size]] = False
        folds.append((np.flatnonzero(mask), np.flatnonzero(~mask)))
        start += size
    return folds


def newton_logistic(x: np.ndarray, y: np.ndarray, C: float, tol: float = 1e-10, max_iter: int = 100,
                    ) -> tuple[np.ndarray, float]:
    """Minimise C * sum_i logloss(y_i, x_i w + b) + ||w||^2 / 2 (scikit-learn's L2 LogisticRegression objective;
    the intercept b is not penalised) by Newton's method with backtracking; stops when the largest gradient
    entry of the objective divided by n is <= tol. Returns (w, b). The objective is strictly convex, so this
    reaches scikit-learn's converged solution (tests compare them). Compiled (``_newton``), without the GIL."""
    n, d = x.shape
    xb = np.ascontiguousarray(np.c_[x, np.ones(n)], dtype=np.float64)
    penalty = np.r_[np.full(d, 1.0 / C), 0.0]
    w = _newton(xb, np.ascontiguousarray(y, dtype=np.float64), penalty, float(tol), int(max_iter))
    return w[:d], float(w[d])


@njit(cache=True, nogil=True)
def _objective(z: np.ndarray, y: np.ndarray, w: np.ndarray, penalty: np.ndarray, e: np.ndarray) -> float:
    """sum_i [softplus(z_i) - y_i z_i] + sum_j penalty_j w_j^2 / 2 (the log-loss of sigmoid(z) plus the L2 term),
    softplus(z) = max(z, 0) + log1p(e), e = exp(-|z|) (written to ``e``: the next gradient's sigmoid reuses it)."""
    f = 0.0
    for i in range(z.shape[0]):
        e[i] = math.exp(-abs(z[i]))
        f += max(z[i], 0.0) + math.log1p(e[i]) - y[i] * z[i]
    for j in range(w.shape[0]):
        f += 0.5 * penalty[j] * w[j] * w[j]
    return f


@njit(cache=True, nogil=True)
def _newton(xb: np.ndarray, y: np.ndarray, penalty: np.ndarray, tol: float, max_iter: int) -> np.ndarray:
    """Newton's method for ``newton_logistic``: gradient X^T (p - y) + penalty w, Hessian X^T diag(p (1 - p)) X
    + diag(penalty) (+1e-12) solved by Cholesky, Armijo backtracking on the objective (sufficient decrease
    1e-4). Plain loops over each row's non-zero features (OBD's contexts are one-hot: ~8 of 25), no BLAS/LAPACK
    call: BLAS libraries serialise (spin on a lock) when several threads call them at once."""
    n, m = xb.shape
    nnz = np.zeros(n, np.int64)
    cols, vals = np.empty((n, m), np.int64), np.empty((n, m))
    for i in range(n):
        for j in range(m):
            if xb[i, j] != 0.0:
                cols[i, nnz[i]], vals[i, nnz[i]] = j, xb[i, j]
                nnz[i] += 1
    w, z, e = np.zeros(m), np.zeros(n), np.empty(n)
    z_try, e_try, w_try = np.empty(n), np.empty(n), np.empty(m)
    grad, hess, step, dz = np.empty(m), np.empty((m, m)), np.empty(m), np.empty(n)
    f = _objective(z, y, w, penalty, e)
    for _ in range(max_iter):
        grad[:] = penalty * w
        hess[:] = 0.0
        for i in range(n):
            p = 1.0 / (1.0 + e[i]) if z[i] >= 0.0 else e[i] / (1.0 + e[i])  # sigmoid(z), e = exp(-|z|)
            r, h = p - y[i], p * (1.0 - p)
            for a in range(nnz[i]):
                ja, va = cols[i, a], vals[i, a]
                grad[ja] += r * va
                for b in range(nnz[i]):
                    hess[ja, cols[i, b]] += h * va * vals[i, b]
        if np.abs(grad).max() <= tol * n:
            break
        for j in range(m):
            hess[j, j] += penalty[j] + 1e-12
        _cholesky_solve(hess, grad, step)
        slope = 0.0
        for j in range(m):
            slope += grad[j] * step[j]
        for i in range(n):
            acc = 0.0
            for a in range(nnz[i]):
                acc += vals[i, a] * step[cols[i, a]]
            dz[i] = acc
        t, f_new = 1.0, f
        while t > 1e-10:  # backtracking (Armijo); at the optimum f changes below its rounding: take the step
            z_try[:] = z - t * dz
            w_try[:] = w - t * step
            f_new = _objective(z_try, y, w_try, penalty, e_try)
            if f_new <= f - 1e-4 * t * slope or abs(f_new - f) <= 1e-14 * abs(f):
                break
            t *= 0.5
        z, z_try = z_try, z
        e, e_try = e_try, e
        w, w_try = w_try, w
        f = f_new
    return w


@njit(cache=True, nogil=True)
def _cholesky_solve(a: np.ndarray, b: np.ndarray, x: np.ndarray) -> None:
    """x = A^-1 b for symmetric positive-definite A (its upper triangle is read and overwritten by L^T, A = L L^T)."""
    m = a.shape[0]
    for j in range(m):
        s = a[j, j]
        for k in range(j):
            s -= a[k, j] * a[k, j]
        a[j, j] = math.sqrt(s)
        for i in range(j + 1, m):
            s = a[j, i]
            for k in range(j):
                s -= a[k, j] * a[k, i]
            a[j, i] = s / a[j, j]
    for i in range(m):  # L y = b (L[i, k] = a[k, i])
        s = b[i]
        for k in range(i):
            s -= a[k, i] * x[k]
        x[i] = s / a[i, i]
    for i in range(m - 1, -1, -1):  # L^T x = y
        s = x[i]
        for k in range(i + 1, m):
            s -= a[i, k] * x[k]
        x[i] = s / a[i, i]


@njit(cache=True, nogil=True)
def _fill_logistic(q_hat: np.ndarray, rows: np.ndarray, s: np.ndarray, t: np.ndarray) -> None:
    """q_hat[rows[i], a, k] = sigmoid(s[i, k] + t[a, k]) = 1 / (1 + exp(-s[i, k]) exp(-t[a, k])): the
    per-position logistic models' predictions x w_x + b + z_a w_z written in place, with one exp per round and
    per item instead of one per (round, item) (exact exp(-(s + t)) where the product is not finite)."""
    es, et = np.exp(-s), np.exp(-t)
    for i in range(rows.shape[0]):
        r = rows[i]
        for a in range(t.shape[0]):
            for k in range(t.shape[1]):
                e = es[i, k] * et[a, k]
                if not math.isfinite(e):
                    e = math.exp(-(s[i, k] + t[a, k]))
                q_hat[r, a, k] = 1.0 / (1.0 + e)


@dataclass
class LogisticPrediction:
    """Cross-fitted logistic predictions kept as their factors, a few hundred kB instead of the full array:
    q(x_i, a, k) = sigmoid(s[i, k] + t[a, k]) with (rows, s, t) of the fold whose test part holds round i.
    ``fill`` writes the (n_rounds, n_actions, len_list) array, into ``out`` when given (a reused buffer costs
    no fresh pages)."""

    shape: tuple[int, int, int]
    folds: list[tuple[np.ndarray, np.ndarray, np.ndarray]]

    def fill(self, out: np.ndarray | None = None) -> np.ndarray:
        out = np.empty(self.shape) if out is None else out
        for rows, s, t in self.folds:
            _fill_logistic(out, rows, s, t)
        return out


@dataclass
class TablePrediction:
    """Cross-fitted predictions that do not depend on the context: q(x_i, a, k) = table[a, k] of round i's fold."""

    shape: tuple[int, int, int]
    folds: list[tuple[np.ndarray, np.ndarray]]

    def fill(self, out: np.ndarray | None = None) -> np.ndarray:
        out = np.empty(self.shape) if out is None else out
        for rows, table in self.folds:
            out[rows] = table[None, :, :]
        return out


@dataclass
class LogisticRewardModel:
    """Per-position logistic regression (OBP's RegressionModel + sklearn LogisticRegression)."""

    C: float = 100.0
    max_iter: int = 10_000
    tol: float = 1e-10
    solver: str = "newton"  # recux's Newton (newton_logistic), or any scikit-learn solver name
    random_state: int | None = 12345
    n_folds: int = 3
    fold_seed: int | None = 12345
    action_features: str = "item_context"

    def __post_init__(self) -> None:
        if self.action_features not in ACTION_FEATURES:
            raise ConfigError(f"action_features must be one of {ACTION_FEATURES}, got {self.action_features!r}")

    def item_features(self, data: BanditFeedback) -> np.ndarray:
        one_hot = np.eye(data.n_actions)
        return {"item_context": data.action_context, "one_hot": one_hot,
                "both": np.c_[data.action_context, one_hot]}[self.action_features]

    def _fit_position(self, x: np.ndarray, z: np.ndarray, r: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        if self.solver == "newton":
            coef, intercept = newton_logistic(np.c_[x, z], r, self.C, self.tol, self.max_iter)
        else:
            from sklearn.linear_model import LogisticRegression

            model = LogisticRegression(C=self.C, max_iter=self.max_iter, tol=self.tol, solver=self.solver,
                                       random_state=self.random_state)
            model.fit(np.c_[x, z], r)
            coef, intercept = model.coef_[0], float(model.intercept_[0])
        return coef[: x.shape[1]], coef[x.shape[1]:], intercept

    def fit_predict(self, data: BanditFeedback) -> np.ndarray:
        """(n_rounds, n_actions, len_list) cross-fitted click probabilities."""
        return self.predict_folds(data).fill()

    def predict_folds(self, data: BanditFeedback) -> LogisticPrediction:
        """The cross-fitted predictions as their factors (``LogisticPrediction``)."""
        z_all = self.item_features(data)
        folds = []
        for train, test in cross_fit_folds(data.n_rounds, self.n_folds, self.fold_seed):
            s = np.empty((len(test), data.len_list))  # logit = s[round, k] + t[item, k]
            t = np.empty((data.n_actions, data.len_list))
            for k in range(data.len_list):
                rows = train[data.position[train] == k]
                if len(rows) == 0 or len(np.unique(data.reward[rows])) < 2:
                    raise ConfigError(f"position {k} has no rounds with both outcomes in a training fold; "
                                      "use fewer folds (reward_model.n_folds) or the ctr reward model")
                w_x, w_z, b = self._fit_position(data.context[rows], z_all[data.action[rows]], data.reward[rows])
                s[:, k], t[:, k] = data.context[test] @ w_x + b, z_all @ w_z
            folds.append((test, s, t))
        return LogisticPrediction((data.n_rounds, data.n_actions, data.len_list), folds)


@dataclass
class CTRRewardModel:
    """Per-(item, position) click-through rate with additive shrinkage toward the position's rate."""

    smoothing: float = 1.0
    n_folds: int = 3
    fold_seed: int | None = 12345

    def fit_predict(self, data: BanditFeedback) -> np.ndarray:
        return self.predict_folds(data).fill()

    def predict_folds(self, data: BanditFeedback) -> TablePrediction:
        if self.smoothing < 0:
            raise ConfigError(f"smoothing must be >= 0, got {self.smoothing}")
        shape = (data.n_actions, data.len_list)
        folds = []
        for train, test in cross_fit_folds(data.n_rounds, self.n_folds, self.fold_seed):
            a, k, r = data.action[train], data.position[train], data.reward[train]
            shows = np.zeros(shape)
            clicks = np.zeros(shape)
            np.add.at(shows, (a, k), 1.0)
            np.add.at(clicks, (a, k), r)
            pos_rate = clicks.sum(0) / np.maximum(shows.sum(0), 1.0)
            denom = shows + self.smoothing
            table = np.where(denom > 0, (clicks + self.smoothing * pos_rate) / np.where(denom > 0, denom, 1), pos_rate)
            folds.append((test, table))
        return TablePrediction((data.n_rounds, *shape), folds)
