"""Gibbs sampler of Bayesian probabilistic matrix factorisation with biases (Salakhutdinov & Mnih 2008,
"Bayesian probabilistic matrix factorization using Markov chain Monte Carlo", ICML), used by
recux.rating_models.BayesianMF.

Model (mu: the training mean, fixed; x_u = (p_u, b_u) and y_i = (q_i, b_i) in R^(k+1)):

    r_ui ~ N(mu + b_u + b_i + p_u . q_i, 1 / alpha)
    x_u ~ N(mu_U, Lam_U^-1),   (mu_U, Lam_U) ~ Gaussian-Wishart(mu0 = 0, beta0 = 2, nu0 = k + 1, W0 = I)

and the same for the items. One sweep draws, in turn: the user hyper-parameters given X (the Gaussian-Wishart
posterior, ``nw_posterior``), every x_u given them and the items (``conditional``: a Gaussian with precision
Lam_U + alpha sum_j z_j z_j^T and mean precision^-1 (Lam_U mu_U + alpha sum_j z_j (r_uj - mu - b_j)), z_j =
(q_j, 1)), then the items symmetrically, then alpha given the residuals (Gamma(1 + n/2, rate 1 + SSE/2)) unless
alpha is fixed. The x_u of one side are conditionally independent, so each side is one batched draw.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from scipy import stats

BETA0 = 2.0


def nw_posterior(X: np.ndarray, beta0: float = BETA0) -> tuple[np.ndarray, float, float, np.ndarray]:
    """(mu*, beta*, nu*, W*) of the Gaussian-Wishart posterior of N(mu, Lam^-1) rows X under the prior
    (0, beta0, d, I): beta* = beta0 + N, mu* = N xbar / beta*, nu* = d + N,
    W*^-1 = I + N S + beta0 N / (beta0 + N) xbar xbar^T (S: the biased sample covariance)."""
    n, d = X.shape
    xbar = X.mean(axis=0)
    C = X - xbar
    w_inv = np.eye(d) + C.T @ C + beta0 * n / (beta0 + n) * np.outer(xbar, xbar)
    W = np.linalg.inv(w_inv)
    return n * xbar / (beta0 + n), beta0 + n, float(d + n), (W + W.T) / 2


def draw_hyper(X: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    mu_star, beta_star, nu_star, W = nw_posterior(X)
    lam = np.atleast_2d(stats.wishart(df=nu_star, scale=W).rvs(random_state=rng))
    return rng.multivariate_normal(mu_star, np.linalg.inv(beta_star * lam)), lam


def conditional(rows: tuple, F: np.ndarray, fb: np.ndarray, resid: np.ndarray, alpha: float, mu: np.ndarray,
                lam: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(means (n, k+1), precisions (n, k+1, k+1)) of every row's (factors, bias) given the other side's factors
    F and biases fb: features z_j = (F_j, 1), targets resid_j - fb_j over the row's ratings j."""
    indptr, other, pos = rows
    n, k = len(indptr) - 1, F.shape[1]
    Z = np.hstack([F, np.ones((F.shape[0], 1))])
    prec = np.broadcast_to(lam, (n, k + 1, k + 1)).copy()
    rhs = np.broadcast_to(lam @ mu, (n, k + 1)).copy()
    for r in range(n):
        lo, hi = indptr[r], indptr[r + 1]
        if hi > lo:
            Zr = Z[other[lo:hi]]
            prec[r] += alpha * (Zr.T @ Zr)
            rhs[r] += alpha * (Zr.T @ (resid[pos[lo:hi]] - fb[other[lo:hi]]))
    return np.linalg.solve(prec, rhs[..., None])[..., 0], prec


def draw_gaussian(mean: np.ndarray, prec: np.ndarray, z: np.ndarray) -> np.ndarray:
    """mean + L^-T z with prec = L L^T (batched): N(mean, prec^-1) for z ~ N(0, I)."""
    L = np.linalg.cholesky(prec)
    return mean + np.linalg.solve(np.swapaxes(L, 1, 2), z[..., None])[..., 0]


def _side(rows, F, fb, resid, alpha, X, rng) -> tuple[np.ndarray, np.ndarray]:
    mu, lam = draw_hyper(X, rng)
    mean, prec = conditional(rows, F, fb, resid, alpha, mu, lam)
    x = draw_gaussian(mean, prec, rng.standard_normal(mean.shape))
    return x[:, :-1], x[:, -1]


def gibbs(by_user: tuple, by_item: tuple, user: np.ndarray, item: np.ndarray, resid: np.ndarray, k: int,
          samples: int, burn: int, alpha: float | None, rng: np.random.Generator
          ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """(P, Q, bu, bi) of each sweep after the first ``burn`` (resid: ratings less mu)."""
    n_users, n_items = len(by_user[0]) - 1, len(by_item[0]) - 1
    P, Q = rng.normal(0, 0.1, (n_users, k)), rng.normal(0, 0.1, (n_items, k))
    bu, bi = np.zeros(n_users), np.zeros(n_items)
    a = 2.0 if alpha is None else float(alpha)
    for s in range(samples):
        P, bu = _side(by_user, Q, bi, resid, a, np.hstack([P, bu[:, None]]), rng)
        Q, bi = _side(by_item, P, bu, resid, a, np.hstack([Q, bi[:, None]]), rng)
        if alpha is None:
            e = resid - bu[user] - bi[item] - np.einsum("nk,nk->n", P[user], Q[item])
            a = rng.gamma(1.0 + len(e) / 2, 1.0 / (1.0 + 0.5 * float(e @ e)))
        if s >= burn:
            yield P, Q, bu, bi
