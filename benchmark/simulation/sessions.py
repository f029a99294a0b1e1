"""The click model's settings and the vectorised simulation of many users' sessions (recux.simulation.kernels
has the formulae)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from recux.errors import ConfigError
from recux.simulation.kernels import session_kernel

PRE_PERIOD = 1_000_000  # session numbers of pre-period sessions start here (their own random numbers)


def examination(slate_size: int, eta: float) -> np.ndarray:
    """Position-based examination e_k = 1 / k^eta for k = 1..K (Joachims et al. 2017, section 6; eta = 0: every
    position is examined)."""
    return 1.0 / np.arange(1, int(slate_size) + 1, dtype=np.float64) ** float(eta)


@dataclass(frozen=True)
class ClickModel:
    """Settings of the session model."""

    slate_size: int = 10
    examination_eta: float = 1.0
    conversion_scale: float = 0.3
    n_sessions: int = 5
    return_base: float = 0.7
    return_gain: float = 3.0

    def __post_init__(self) -> None:
        checks = [
            (self.slate_size >= 1, "task.slate_size", "a positive number of positions, e.g. 10"),
            (self.examination_eta >= 0, "task.examination_eta", ">= 0 (e_k = 1/k^eta; 1 is the usual choice)"),
            (0 <= self.conversion_scale <= 1, "task.conversion_scale", "in [0, 1] (P(convert | click) = scale * a)"),
            (self.n_sessions >= 1, "task.n_sessions", "a positive number of sessions per user, e.g. 5"),
            (0 <= self.return_base <= 1, "task.return_base", "a probability in [0, 1]"),
            (self.return_gain >= 0, "task.return_gain", ">= 0 (return probability rises with satisfaction)"),
        ]
        for ok, name, need in checks:
            if not ok:
                raise ConfigError(f"{name}={getattr(self, name.split('.')[1])!r} must be {need}.")

    @property
    def exam(self) -> np.ndarray:
        return examination(self.slate_size, self.examination_eta)

    def describe(self) -> dict:
        return {**asdict(self), "examination": "e_k = 1/k^eta (position-based model)",
                "click": "P(click_k) = e_k * a(u, i_k)", "conversion": "P(convert | click) = conversion_scale * a",
                "satisfaction": "S = sum_k click_k * a(u, i_k) / sum_k e_k",
                "return": "P(return after a session) = min(1, return_base + return_gain * S)",
                "retained": "active after the last of n_sessions sessions"}


@dataclass
class UserOutcomes:
    """Per simulated user: counts over their sessions, and the per-user metrics the A/B test compares."""

    users: np.ndarray
    impressions: np.ndarray
    clicks: np.ndarray
    conversions: np.ndarray
    satisfaction_sum: np.ndarray
    sessions: np.ndarray
    retained: np.ndarray

    def metric(self, name: str) -> np.ndarray:
        """Per-user values: ctr = clicks / impressions, conversion = conversions / impressions, satisfaction =
        mean session satisfaction, retention = retained (0/1), sessions = sessions made."""
        imp = np.maximum(self.impressions, 1)
        values = {"ctr": lambda: self.clicks / imp, "conversion": lambda: self.conversions / imp,
                  "satisfaction": lambda: self.satisfaction_sum / np.maximum(self.sessions, 1),
                  "retention": lambda: self.retained.astype(np.float64),
                  "sessions": lambda: self.sessions.astype(np.float64)}
        if name not in values:
            raise ConfigError(f"unknown A/B metric {name!r}; one of {', '.join(METRICS)}")
        return values[name]()


METRICS = ("ctr", "conversion", "satisfaction", "retention", "sessions")


def simulate(slates: np.ndarray, users: np.ndarray, attract: np.ndarray, model: ClickModel, seed: int,
             n_sessions: int | None = None, first_session: int = 0) -> UserOutcomes:
    """Simulate ``n_sessions`` (default the model's) sessions of each user. ``slates``: (n, K) int item codes,
    the same list every session (a fixed policy), or (n, S, K) one slate per session."""
    n_sessions = model.n_sessions if n_sessions is None else int(n_sessions)
    slates = np.asarray(slates, dtype=np.int32)
    if slates.ndim == 2:
        slates = np.repeat(slates[:, None, :], n_sessions, axis=1)
    users = np.ascontiguousarray(users, dtype=np.int64)
    if slates.shape[:2] != (len(users), n_sessions) or slates.shape[2] > model.slate_size:
        raise ValueError(f"slates of shape {slates.shape} do not fit {len(users)} users x {n_sessions} sessions "
                         f"x at most {model.slate_size} positions")
    n = len(users)
    out = UserOutcomes(users, np.zeros(n, np.int64), np.zeros(n, np.int64), np.zeros(n, np.int64),
                       np.zeros(n, np.float64), np.zeros(n, np.int64), np.zeros(n, np.uint8))
    session_kernel(np.ascontiguousarray(slates), users, np.ascontiguousarray(attract, dtype=np.float32),
                   model.exam[: slates.shape[2]].copy(), float(model.conversion_scale), float(model.return_base),
                   float(model.return_gain), np.uint64(seed), np.int64(first_session), out.impressions, out.clicks,
                   out.conversions, out.satisfaction_sum, out.sessions, out.retained)
    return out


def random_slates(n_users: int, n_items: int, slate_size: int, n_sessions: int, seed: int) -> np.ndarray:
    """(n_users, n_sessions, K) uniformly random slates, K distinct items each (seeded)."""
    if slate_size > n_items:
        raise ConfigError(f"task.slate_size={slate_size} exceeds the catalogue ({n_items} items)")
    rng = np.random.default_rng([int(seed), 0x51A7E])
    keys = rng.random((n_users * n_sessions, n_items))
    top = np.argpartition(keys, slate_size - 1, axis=1)[:, :slate_size]
    return top.reshape(n_users, n_sessions, slate_size).astype(np.int32)
