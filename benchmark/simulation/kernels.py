"""Numba kernels of the user simulator: counter-based uniforms and the session loop.

Random numbers are a hash of (seed, user, session, position, stream), not a sequential generator: user u's
draws do not depend on which other users are simulated, in which order, or on how many threads run, so a
simulation is deterministic for a seed and two arms can share common random numbers. The hash is SplitMix64's
finaliser (Steele, Lea & Flood 2014) applied twice; the top 53 bits give a uniform in [0, 1).

The session model (one session = one slate of K items shown to one user):

* examination (position-based model, Craswell et al. 2008; the propensities of Joachims et al. 2017):
  P(E_k = 1) = e_k, given per position (see sessions.examination);
* click: C_k = E_k * A_k with A_k ~ Bernoulli(a(u, i_k)), so P(C_k = 1) = e_k * a(u, i_k);
* conversion given a click: P(V_k = 1 | C_k = 1) = conversion_scale * a(u, i_k);
* satisfaction of the session: S = sum_k C_k * a(u, i_k) / sum_k e_k, in [0, 1] (the true utility of the
  clicked items per unit of attention; E[S] = sum_k e_k a_k^2 / sum_k e_k);
* return: after each session the user comes back with probability min(1, return_base + return_gain * S), else
  churns (no later sessions). A user is *retained* when still active after the last session.
"""

from __future__ import annotations

import numba as nb
import numpy as np

_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S11 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11)
_INV53 = 1.0 / 9007199254740992.0  # 2**-53

STREAM_CLICK, STREAM_CONVERT, STREAM_RETURN, STREAM_EXPLORE, STREAM_PICK = 0, 1, 2, 3, 4


@nb.njit(inline="always")
def _mix(x):
    x = (x ^ (x >> _S30)) * _M1
    x = (x ^ (x >> _S27)) * _M2
    return x ^ (x >> _S31)


@nb.njit(inline="always")
def uniform(seed, user, session, position, stream):
    """U[0, 1) from the hash of the five non-negative integers (see the module docstring)."""
    h = _mix(np.uint64(seed) + _GAMMA)
    h = _mix(h ^ (np.uint64(user) * _GAMMA))
    h = _mix(h ^ (np.uint64(session) * _M1))
    h = _mix(h ^ (np.uint64(position * 8 + stream) * _M2))
    return np.float64(h >> _S11) * _INV53


@nb.njit(cache=True)
def uniforms(seed, users, session, position, stream):
    """The uniforms of ``uniform`` for an array of users (tests compare their distribution)."""
    out = np.empty(users.shape[0], dtype=np.float64)
    for r in range(users.shape[0]):
        out[r] = uniform(seed, users[r], session, position, stream)
    return out


@nb.njit(parallel=True, cache=True)
def session_kernel(slates, users, attract, exam, conversion_scale, return_base, return_gain, seed, first_session,
                   out_impressions, out_clicks, out_conversions, out_satisfaction, out_sessions, out_retained):
    """Simulate up to S sessions for each user row r (see the module docstring).

    slates (n, S, K) int32 item codes (-1 = empty position); users (n,) int64 user codes (rows of ``attract``
    and RNG keys); attract (n_users, n_items) float32 click attractiveness a(u, i); exam (K,) float64;
    ``first_session``: the session number of slate 0 in the RNG key (a pre-period uses another range).
    Outputs per row (filled): impressions, clicks, conversions (int64), the sum of session satisfactions
    (float64), sessions made (int64) and retained (uint8, active after the last session)."""
    n, n_sessions, k_max = slates.shape
    for r in nb.prange(n):
        u = users[r]
        imp, clk, conv, sat_sum, made = 0, 0, 0, 0.0, 0
        active = True
        for s in range(n_sessions):
            if not active:
                break
            key = first_session + s
            made += 1
            utility, attention = 0.0, 0.0
            for k in range(k_max):
                item = slates[r, s, k]
                if item < 0:
                    continue
                a = np.float64(attract[u, item])
                imp += 1
                attention += exam[k]
                if uniform(seed, u, key, k, STREAM_CLICK) < exam[k] * a:
                    clk += 1
                    utility += a
                    if uniform(seed, u, key, k, STREAM_CONVERT) < conversion_scale * a:
                        conv += 1
            sat = utility / attention if attention > 0 else 0.0
            sat_sum += sat
            active = uniform(seed, u, key, 0, STREAM_RETURN) < return_base + return_gain * sat
        out_impressions[r], out_clicks[r], out_conversions[r] = imp, clk, conv
        out_satisfaction[r], out_sessions[r], out_retained[r] = sat_sum, made, 1 if active else 0


@nb.njit(parallel=True, cache=True)
def epsilon_greedy_log_kernel(control, cand_indptr, cand_items, users, attract, exam, epsilon, seed, first_session,
                              out_items, out_propensity, out_clicks):
    """Log ``out_items.shape[1]`` sessions per user row under the epsilon-greedy version of a fixed control
    slate: at position k the control's item c_k with probability 1 - epsilon, else an item drawn uniformly from
    the user's candidates C_u (``cand_items[cand_indptr[r]:cand_indptr[r + 1]]``, which contain c_k). Positions
    are drawn independently (an item may repeat in a slate). The logged item's propensity at k is
    p_k(i) = (1 - epsilon) 1[i = c_k] + epsilon / |C_u|; clicks follow the position-based model
    (P = e_k a(u, i)). No churn: every user logs every session."""
    n, n_sessions, k_max = out_items.shape
    for r in nb.prange(n):
        u = users[r]
        lo, hi = cand_indptr[r], cand_indptr[r + 1]
        n_cand = hi - lo
        for s in range(n_sessions):
            key = first_session + s
            for k in range(k_max):
                item = control[r, k]
                if n_cand > 0 and uniform(seed, u, key, k, STREAM_EXPLORE) < epsilon:
                    j = min(int(uniform(seed, u, key, k, STREAM_PICK) * n_cand), n_cand - 1)
                    item = cand_items[lo + j]
                p = epsilon / n_cand if n_cand > 0 else 0.0
                if item == control[r, k]:
                    p += 1.0 - epsilon
                out_items[r, s, k] = item
                out_propensity[r, s, k] = p
                click = uniform(seed, u, key, k, STREAM_CLICK) < exam[k] * np.float64(attract[u, item])
                out_clicks[r, s, k] = 1 if click else 0
