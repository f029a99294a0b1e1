"""Run a set of estimators on one log: estimates, bootstrap CIs, and the relative error vs a ground truth.

Relative estimation error (OBP's ``metric="relative-ee"``): |V_hat - V| / V, V the evaluation policy's
on-policy value (the mean reward in its own log).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from recux.bandit import BanditFeedback
from recux.errors import ConfigError
from recux.ope.estimators import DM, DR, IPW, SNDR, SNIPW, DRos, Estimator, OPEInputs, SwitchDR
from recux.ope.interval import bootstrap_ci
from recux.ope.tuning import Tuned

# OBP's example grid for Switch-DR and DRos (examples/obd/evaluate_off_policy_estimators.py).
OBP_LAMBDAS = (10, 50, 100, 500, 1000, 5000, 10000, np.inf)
ESTIMATOR_NAMES = ("dm", "ipw", "snipw", "dr", "sndr", "switch-dr", "dr-os")


def make_estimators(names: Sequence[str] = ESTIMATOR_NAMES, lambdas: Sequence[float] = OBP_LAMBDAS,
                    tuning_method: str = "slope", delta: float = 0.1) -> list[Estimator | Tuned]:
    table: dict[str, Any] = {
        "dm": DM, "ipw": IPW, "snipw": SNIPW, "dr": DR, "sndr": SNDR,
        "switch-dr": lambda: Tuned(SwitchDR, lambdas, tuning_method, delta),
        "dr-os": lambda: Tuned(DRos, lambdas, tuning_method, delta),
    }
    unknown = [n for n in names if n not in table]
    if unknown:
        raise ConfigError(f"unknown estimator(s) {unknown}; choose from {list(table)}")
    return [table[n]() for n in names]


def ope_inputs(data: BanditFeedback, action_dist: np.ndarray, q_hat: np.ndarray | None) -> OPEInputs:
    """``action_dist`` may be (n_actions, len_list) for a context-free policy: broadcast over rounds."""
    if action_dist.ndim == 2:
        action_dist = np.broadcast_to(action_dist, (data.n_rounds, *action_dist.shape))
    return OPEInputs(data.reward, data.action, data.position, data.pscore, action_dist, q_hat)


def relative_error(estimate: float, truth: float) -> float:
    if truth == 0:
        raise ConfigError("the ground-truth policy value is 0: relative error is undefined")
    return abs(estimate - truth) / truth


def evaluate(estimators: Sequence[Estimator | Tuned], inp: OPEInputs, truth: float | None = None,
             ci: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """Per estimator: estimate, tuned lambda (if any), relative error (if ``truth``) and CI (if ``ci`` kwargs)."""
    out: dict[str, dict[str, Any]] = {}
    for est in estimators:
        if est.needs_reward_model and inp.q_hat is None:
            raise ConfigError(f"estimator {est.name} needs a reward model; set ope.reward_model")
        rr = est.round_rewards(inp)
        row: dict[str, Any] = {"estimate": float(rr.mean())}
        if isinstance(est, Tuned):
            row["lambda"] = est.last_lambda
        if truth is not None:
            row["relative_error"] = relative_error(row["estimate"], truth)
        if ci is not None:
            row["ci"] = bootstrap_ci(rr, **ci)
        out[est.name] = row
    return out
