"""Gibbs sampler of a Bayesian factorization machine (Freudenthaler, Schmidt-Thieme & Rendle 2011, "Bayesian
factorization machines", NIPS workshop on sparse representation and low-rank approximation; Rendle 2012,
"Factorization machines with libFM", ACM TIST 3(3), section 4.3 "MCMC"), used by
recux.rating_models.BayesianFM.

Every feature of a rating (u, i) belongs to the user side (user id, the user's implicit items, ...) or to the
item side (item id, the item's implicit users, ...): x = (x_U(u), x_I(i)), X_U (n_users, m_U) and X_I
(n_items, m_I) sparse. The FM's pairwise terms within one side are constants per user (per item), which the
free user-id (item-id) weights already express, so the model keeps the cross-side pairs only (as Rendle 2013,
"Scaling factorization machines to relational data", VLDB, the computation runs per block, not per rating):

    y_ui = w0 + sum_f P_uf Q_if + P_uk + Q_ik + eps,   eps ~ N(0, 1/alpha),
    P = X_U V_U,  Q = X_I V_I   (V: one row per feature; columns 0..k-1 the factors, column k the linear
                                 weight w, whose partner on the other side is the constant 1)

Priors (libFM's): each parameter theta of feature group g in column f ~ N(mu_gf, 1/lam_gf), with
mu_gf ~ N(0, 1/(gamma0 lam_gf)), lam_gf ~ Gamma(alpha0/2 .. as below), alpha ~ Gamma; w0 ~ N(0, 1).

One sweep (libFM's order): hyper-parameters of every group and column given V; for each side, for each column
f, for each feature j in turn the exact conditional of theta = V_jf given everything else. y is linear in
theta with derivative h_ui = x_j(u) q_i (q_i = Q_if, or 1 in column k), so (Freudenthaler et al. 2011, eq. 6)

    theta | rest ~ N(m, 1/p),  p = lam + alpha sum h^2,  m = (alpha sum h (e + theta h) + lam mu) / p,

e = y - y_hat the current residuals. Per row u of the side, S2_u = sum_{i in R(u)} q_i^2 and EQ_u =
sum_{i in R(u)} e_ui q_i give sum h^2 = sum_u x_j(u)^2 S2_u and sum h e = sum_u x_j(u) EQ_u; after a change d
of theta, P_uf += d x_j(u) and EQ_u -= d x_j(u) S2_u (e_ui -= d x_j(u) q_i), and e itself is brought up to
date once per column. A sweep costs O((k + 1) (n_ratings + nnz(X_U) + nnz(X_I))).
"""

from __future__ import annotations

import numpy as np
from numba import njit

ALPHA0, BETA0, GAMMA0 = 1.0, 1.0, 1.0  # libFM's hyper-prior constants (alpha_0, beta_0, gamma_0; mu_0 = 0)


@njit(cache=True)
def update_side(P, V, xptr, xrow, xval, group, mu_h, lam_h, Q, indptr, other, pos, e, alpha, z):  # pragma: no cover
    """One pass of the coordinate Gibbs draws over every (feature j, column f) of one side, in place.

    P (n_rows, k+1) = X V of this side; V (m, k+1); X in CSC form (xptr, xrow, xval: feature j's rows and
    values); group (m,) each feature's group; mu_h, lam_h (n_groups, k+1) the prior of each group and column;
    Q (n_other, k+1) the other side's aggregate (column k unused: its partner is 1); (indptr, other, pos) the
    ratings of each row of this side (other-side codes, positions in e); e the residuals y - y_hat (updated);
    z (m, k+1) standard normal draws: theta = m + z / sqrt(p)."""
    n_rows, k1 = P.shape
    k = k1 - 1
    m = V.shape[0]
    s2 = np.zeros(n_rows)
    eq = np.zeros(n_rows)
    old = np.zeros(n_rows)
    for f in range(k1):
        for r in range(n_rows):
            a, b = 0.0, 0.0
            for t in range(indptr[r], indptr[r + 1]):
                q = 1.0 if f == k else Q[other[t], f]
                a += q * q
                b += e[pos[t]] * q
            s2[r], eq[r], old[r] = a, b, P[r, f]
        for j in range(m):
            h2, he = 0.0, 0.0
            for t in range(xptr[j], xptr[j + 1]):
                x = xval[t]
                h2 += x * x * s2[xrow[t]]
                he += x * eq[xrow[t]]
            theta = V[j, f]
            lam, mu = lam_h[group[j], f], mu_h[group[j], f]
            prec = lam + alpha * h2
            mean = (alpha * (he + theta * h2) + lam * mu) / prec
            new = mean + z[j, f] / np.sqrt(prec)
            d = new - theta
            V[j, f] = new
            for t in range(xptr[j], xptr[j + 1]):
                x = xval[t]
                P[xrow[t], f] += d * x
                eq[xrow[t]] -= d * x * s2[xrow[t]]
        for r in range(n_rows):
            d = P[r, f] - old[r]
            if d != 0.0:
                for t in range(indptr[r], indptr[r + 1]):
                    q = 1.0 if f == k else Q[other[t], f]
                    e[pos[t]] -= d * q


def draw_hyper(V: np.ndarray, group: np.ndarray, n_groups: int, mu: np.ndarray, rng: np.random.Generator
               ) -> tuple[np.ndarray, np.ndarray]:
    """(mu, lam) (n_groups, k+1) given V, libFM's order (lam given the current mu, then mu given lam):
    lam_gf ~ Gamma(shape (alpha0 + n_g + 1) / 2, rate (beta0 + gamma0 mu_gf^2 + sum_j (V_jf - mu_gf)^2) / 2),
    mu_gf ~ N(sum_j V_jf / (n_g + gamma0), 1 / ((n_g + gamma0) lam_gf))."""
    k1 = V.shape[1]
    lam, new_mu = np.ones((n_groups, k1)), np.zeros((n_groups, k1))
    for g in range(n_groups):
        Vg = V[group == g]
        n = len(Vg)
        rate = (BETA0 + GAMMA0 * mu[g] ** 2 + ((Vg - mu[g]) ** 2).sum(axis=0)) / 2
        lam[g] = rng.gamma((ALPHA0 + n + 1) / 2, 1.0 / rate)
        new_mu[g] = rng.normal(Vg.sum(axis=0) / (n + GAMMA0), 1.0 / np.sqrt((n + GAMMA0) * lam[g]))
    return new_mu, lam


def draw_alpha(e: np.ndarray, rng: np.random.Generator) -> float:
    """alpha ~ Gamma(shape (alpha0 + n) / 2, rate (beta0 + sum e^2) / 2)."""
    return float(rng.gamma((ALPHA0 + len(e)) / 2, 2.0 / (BETA0 + float(e @ e))))


def draw_w0(w0: float, e: np.ndarray, alpha: float, rng: np.random.Generator) -> tuple[float, np.ndarray]:
    """w0 ~ N(m, 1/p), p = 1 + alpha n, m = alpha sum (e + w0) / p (prior N(0, 1)); returns (w0, e)."""
    p = 1.0 + alpha * len(e)
    new = alpha * float((e + w0).sum()) / p + rng.standard_normal() / np.sqrt(p)
    return new, e - (new - w0)


def predict_all(w0: float, P: np.ndarray, Q: np.ndarray, user: np.ndarray, item: np.ndarray) -> np.ndarray:
    """y_hat - (the training mean) of each (user, item): w0 + P_u[:k] . Q_i[:k] + P_uk + Q_ik."""
    k = P.shape[1] - 1
    return w0 + np.einsum("nk,nk->n", P[user, :k], Q[item, :k]) + P[user, k] + Q[item, k]


def gibbs(XU, gU: np.ndarray, XI, gI: np.ndarray, by_user: tuple, by_item: tuple, user: np.ndarray,
          item: np.ndarray, y: np.ndarray, k: int, samples: int, burn: int, init: float, rng: np.random.Generator):
    """(w0, P, Q) of each sweep after the first ``burn`` (P, Q: the sides' aggregates with the linear term in
    column k; they are updated in place by the next sweep). XU, XI: the sides' designs (scipy CSC); gU, gI:
    each column's feature group; y: the ratings less their mean; by_user, by_item: (indptr, other codes,
    positions) of each row's ratings."""
    sides = []
    for X, g in ((XU, gU), (XI, gI)):
        X = X.tocsc()
        X.sort_indices()
        V = np.zeros((X.shape[1], k + 1))
        V[:, :k] = rng.normal(0.0, init, (X.shape[1], k))
        n_groups = int(g.max()) + 1
        sides.append([X, np.ascontiguousarray(g, np.int64), n_groups, V, np.zeros((n_groups, k + 1))])
    w0, alpha = 0.0, 1.0
    for s in range(samples):
        P, Q = sides[0][0] @ sides[0][3], sides[1][0] @ sides[1][3]  # exact, against rounding drift
        e = y - predict_all(w0, P, Q, user, item)
        lams = []
        for side in sides:
            side[4], lam = draw_hyper(side[3], side[1], side[2], side[4], rng)
            lams.append(lam)
        w0, e = draw_w0(w0, e, alpha, rng)
        for (X, g, _, V, mu), lam, (A, B), rows in zip(sides, lams, ((P, Q), (Q, P)), (by_user, by_item),
                                                      strict=True):
            update_side(A, V, X.indptr, X.indices, X.data.astype(np.float64), g, mu, lam, B, rows[0], rows[1],
                        rows[2], e, alpha, rng.standard_normal(V.shape))
        alpha = draw_alpha(e, rng)
        if s >= burn:
            yield w0, P, Q
