"""Logged impressions of a stochastic version of the control policy, with their propensities: the data an
off-policy estimator (IPW, SNIPW, DR, ...) reads to estimate a treatment's CTR without a live test
(recux.simulation.kernels.epsilon_greedy_log_kernel has the policy and the propensities)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from recux.errors import ConfigError
from recux.simulation.kernels import epsilon_greedy_log_kernel
from recux.simulation.sessions import ClickModel

LOG_PERIOD = 2_000_000  # session numbers of logged sessions start here (their own random numbers)


@dataclass
class ImpressionLog:
    """(n_users, n_sessions, K) arrays: the item shown, its propensity under the logging policy, the click."""

    users: np.ndarray
    items: np.ndarray
    propensity: np.ndarray
    clicks: np.ndarray
    epsilon: float


def candidates(exclude: sp.csr_matrix, users: np.ndarray, n_items: int) -> tuple[np.ndarray, np.ndarray]:
    """CSR (indptr, items) of each user row's candidate items: every item not in ``exclude`` (users x items)."""
    allowed = np.ones((len(users), n_items), dtype=bool)
    rows = exclude[users].tocoo()
    allowed[rows.row, rows.col] = False
    r, c = np.nonzero(allowed)
    indptr = np.concatenate([[0], np.cumsum(np.bincount(r, minlength=len(users)))]).astype(np.int64)
    return indptr, c.astype(np.int32)


def log_control(control: np.ndarray, cand: tuple[np.ndarray, np.ndarray], users: np.ndarray, attract: np.ndarray,
                model: ClickModel, epsilon: float, n_sessions: int, seed: int) -> ImpressionLog:
    """Log ``n_sessions`` sessions of each user under the epsilon-greedy control (see the kernel)."""
    if not 0 < epsilon <= 1:
        raise ConfigError(f"epsilon={epsilon} must be in (0, 1]: without exploration no other policy has support")
    n, k = control.shape
    items = np.empty((n, n_sessions, k), np.int32)
    prop = np.empty((n, n_sessions, k), np.float64)
    clicks = np.empty((n, n_sessions, k), np.uint8)
    epsilon_greedy_log_kernel(np.ascontiguousarray(control, dtype=np.int32), cand[0], cand[1],
                              np.ascontiguousarray(users, dtype=np.int64), np.ascontiguousarray(attract,
                                                                                              dtype=np.float32),
                              model.exam[:k].copy(), float(epsilon), np.uint64(seed), np.int64(LOG_PERIOD),
                              items, prop, clicks)
    return ImpressionLog(np.asarray(users), items, prop, clicks, float(epsilon))
