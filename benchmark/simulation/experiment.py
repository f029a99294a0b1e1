"""One simulated A/B test: assign users to arms, simulate a pre-period and the experiment, compare each
treatment arm with the control arm on per-user metrics.

* assignment: a seeded random permutation of the users; the j-th user in it joins arm j mod n_arms (balanced
  arms) and arrives j-th (the order of the sequential looks);
* pre-period: before the test every user gets the control policy for ``n_sessions`` sessions (their own random
  numbers); a user's pre-period value of a metric is its CUPED covariate and the pre-period spread gives the
  power and MDE known before the test;
* per metric and treatment: the plain Welch lift, the CUPED lift, power to detect ``planted`` (when given) and
  the MDE at the arm sizes; on the primary metric the sequential looks (naive peeking and mSPRT).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from recux.errors import ConfigError
from recux.simulation import abstats, sequential
from recux.simulation.sessions import METRICS, PRE_PERIOD, ClickModel, UserOutcomes, simulate
from recux.unpaired import mean_ci

TEST_METRICS = ("ctr", "conversion", "satisfaction", "retention")


@dataclass(frozen=True)
class ABSettings:
    alpha: float = 0.05
    power: float = 0.8
    cuped: bool = True
    n_looks: int = 10
    msprt_tau: float | None = None  # null: the primary metric's MDE (from the pre-period)
    primary: str = "ctr"
    metrics: tuple[str, ...] = TEST_METRICS

    def __post_init__(self) -> None:
        abstats.check_alpha(self.alpha, self.power)
        sequential.look_sizes(2, self.n_looks)
        unknown = [m for m in (self.primary, *self.metrics) if m not in METRICS]
        if unknown:
            raise ConfigError(f"task.metrics / task.primary name {unknown}; the simulator reports "
                              f"{', '.join(METRICS)}")
        if self.msprt_tau is not None and not self.msprt_tau > 0:
            raise ConfigError(f"task.msprt_tau={self.msprt_tau} must be positive or null (the primary metric's MDE)")


@dataclass
class Assignment:
    arm: np.ndarray  # (n_users,) arm index of each user row
    arrival: np.ndarray  # (n_users,) arrival rank 0..n-1


def assign(n_users: int, n_arms: int, seed: int) -> Assignment:
    if n_users < 2 * n_arms:
        raise ConfigError(f"{n_users} users cannot fill {n_arms} arms with at least two users each; use a larger "
                          "dataset or fewer treatments")
    perm = np.random.default_rng([int(seed), 0xAB]).permutation(n_users)
    arm, arrival = np.empty(n_users, np.int64), np.empty(n_users, np.int64)
    arm[perm] = np.arange(n_users) % n_arms
    arrival[perm] = np.arange(n_users)
    return Assignment(arm, arrival)


@dataclass
class ABResult:
    arms: list[str]
    sizes: list[int]
    arm_means: dict[str, dict[str, float]]
    comparisons: dict[str, dict[str, Any]]  # treatment -> metric -> {plain, cuped, power, mde, ...}
    sequential: dict[str, Any] = field(default_factory=dict)  # treatment -> looks on the primary metric
    arm_ci: dict[str, dict[str, list[float]]] = field(default_factory=dict)  # t interval of each arm mean

    def to_dict(self) -> dict[str, Any]:
        return {"arms": self.arms, "sizes": self.sizes, "arm_means": self.arm_means, "arm_ci": self.arm_ci,
                "comparisons": self.comparisons, "sequential": self.sequential}


def run_ab(arms: dict[str, np.ndarray], users: np.ndarray, attract: np.ndarray, model: ClickModel, seed: int,
           settings: ABSettings, planted: dict[str, float] | None = None) -> ABResult:
    """``arms``: name -> slates (n_users, K) or (n_users, S, K) for *every* user row, the control first (users in
    other arms never see them); the control's slates also serve the pre-period."""
    names = list(arms)
    users = np.asarray(users, dtype=np.int64)
    asg = assign(len(users), len(names), seed)
    pre = simulate(arms[names[0]], users, attract, model, seed, first_session=PRE_PERIOD)
    outs = {}
    for a, name in enumerate(names):
        rows = np.flatnonzero(asg.arm == a)
        outs[name] = (rows, simulate(np.asarray(arms[name])[rows], users[rows], attract, model, seed))
    result = ABResult(names, [len(outs[n][0]) for n in names],
                      {n: {m: float(outs[n][1].metric(m).mean()) for m in settings.metrics} for n in names}, {},
                      arm_ci={n: {m: list(mean_ci(outs[n][1].metric(m), 1 - settings.alpha)[2:])
                                  for m in settings.metrics} for n in names})
    c_rows, c_out = outs[names[0]]
    for name in names[1:]:
        t_rows, t_out = outs[name]
        result.comparisons[name] = {
            m: _compare(m, c_out, t_out, pre, c_rows, t_rows, settings, (planted or {}).get(m))
            for m in settings.metrics}
        tau = settings.msprt_tau or result.comparisons[name][settings.primary]["mde_pre"]
        traj = sequential.looks(c_out.metric(settings.primary), t_out.metric(settings.primary),
                                asg.arrival[c_rows], asg.arrival[t_rows], settings.n_looks, tau)
        result.sequential[name] = {**traj, "tau": tau, "metric": settings.primary,
                                   "rejects": sequential.rejects(traj, settings.alpha),
                                   "warning": sequential.PEEKING_WARNING}
    return result


def _compare(metric: str, c_out: UserOutcomes, t_out: UserOutcomes, pre: UserOutcomes, c_rows: np.ndarray,
             t_rows: np.ndarray, settings: ABSettings, planted: float | None) -> dict[str, Any]:
    yc, yt = c_out.metric(metric), t_out.metric(metric)
    x = pre.metric(metric)
    plain = abstats.lift(yc, yt, settings.alpha)
    se_pre = abstats.standard_error(float(x.std(ddof=1)), float(x.std(ddof=1)), len(yc), len(yt))
    out: dict[str, Any] = {
        "plain": plain.to_dict(),
        "mde_pre": abstats.mde(se_pre, settings.alpha, settings.power),
        "mde_observed": abstats.mde(abstats.standard_error(float(yc.std(ddof=1)), float(yt.std(ddof=1)),
                                                           len(yc), len(yt)), settings.alpha, settings.power),
        "significant": bool(plain.p < settings.alpha),
    }
    if settings.cuped:
        ac, at, theta = abstats.cuped(yc, yt, x[c_rows], x[t_rows])
        adjusted = abstats.lift(ac, at, settings.alpha)
        out["cuped"] = {**adjusted.to_dict(), "theta": theta,
                        "ci_width_ratio": _ratio(adjusted.ci_high - adjusted.ci_low, plain.ci_high - plain.ci_low),
                        "significant": bool(adjusted.p < settings.alpha)}
    if planted is not None:
        se = abstats.standard_error(float(yc.std(ddof=1)), float(yt.std(ddof=1)), len(yc), len(yt))
        out["power_at_planted"] = abstats.power(planted, se, settings.alpha)
    return out


def _ratio(a: float, b: float) -> float:
    return float(a / b) if b > 0 else float("nan")
