"""OBP's protocol for evaluating off-policy estimators on real A/B logs (Saito et al. 2021, section 5; st-tech/zr-obp
examples/obd/evaluate_off_policy_estimators.py).

Two policies ran side by side on the same traffic. The behaviour policy's log is the input; the evaluation
policy's own log gives the ground truth V = its mean reward (on-policy). Run b (b = 0 .. n_runs-1) resamples the
behaviour log with replacement (``RandomState(b).choice(n, n)``, OBP's ``sample_bootstrap_bandit_feedback``),
fits the reward model on the resample (cross-fitted), runs every estimator and records |V_hat - V| / V.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from recux.bandit import BanditFeedback, BanditLogs
from recux.errors import ConfigError
from recux.ope.bts import bts_action_dist, cached_bts_action_dist
from recux.ope.estimators import Estimator
from recux.ope.evaluate import evaluate, ope_inputs
from recux.ope.tuning import Tuned

RewardModel = Callable[[BanditFeedback], np.ndarray]


def policy_action_dist(policy: str, logs: BanditLogs, n_actions: int, len_list: int, n_sim: int = 1_000_000,
                       random_state: int = 12345, cache: bool = False) -> np.ndarray:
    """(n_actions, len_list) action distribution of a logged context-free policy: uniform random, or Bernoulli
    TS from the prior the data publishes for it (``logs.priors[policy]``); ``cache``: keep/read the BTS result in
    $RECUX_DATA/ope (recux.ope.bts.cached_bts_action_dist)."""
    if policy == "random":
        return np.full((n_actions, len_list), 1.0 / n_actions)
    prior = logs.priors.get(policy)
    if prior is None or "alpha" not in prior:
        raise ConfigError(f"no Beta prior for policy {policy!r} in the data; evaluation policies here are "
                          f"'random' or one of {sorted(logs.priors)}")
    if cache:
        return cached_bts_action_dist(prior["alpha"], prior["beta"], len_list, n_sim, random_state)
    return bts_action_dist(prior["alpha"], prior["beta"], len_list, n_sim=n_sim, random_state=random_state)


@dataclass
class ProtocolResult:
    truth: float
    errors: dict[str, list[float]] = field(default_factory=dict)
    estimates: dict[str, list[float]] = field(default_factory=dict)
    lambdas: dict[str, list[float]] = field(default_factory=dict)
    times: dict[str, float] = field(default_factory=dict)

    def summary(self) -> dict[str, dict[str, float]]:
        """Per estimator: mean and std (ddof=1, as pandas' describe in OBP's script) of the relative error."""
        return {name: {"mean": float(np.mean(v)), "std": float(np.std(v, ddof=1)) if len(v) > 1 else 0.0}
                for name, v in self.errors.items()}


def bootstrap_runs(data: BanditFeedback, action_dist: np.ndarray, truth: float, n_runs: int,
                   reward_model: RewardModel | None, make_estimators: Callable[[], Sequence[Estimator | Tuned]],
                   workers: int = 1) -> ProtocolResult:
    """``workers`` threads run the runs (resample, reward model, estimators) side by side; each run depends only
    on its index, and results are kept in run order, so the result does not depend on ``workers``. The
    reward model's Newton iterations run without the GIL, so two threads use two cores."""
    if n_runs < 1:
        raise ConfigError(f"n_runs must be >= 1, got {n_runs}")
    if workers < 1:
        raise ConfigError(f"workers must be >= 1, got {workers}")
    out = ProtocolResult(truth=truth, times={"reward_model_s": 0.0, "estimators_s": 0.0})

    def one_run(b: int) -> tuple[dict[str, dict[str, Any]], float, float]:
        boot = data.take(np.random.RandomState(b).choice(np.arange(data.n_rounds), size=data.n_rounds))
        t0 = time.perf_counter()
        q_hat = reward_model(boot) if reward_model is not None else None
        t1 = time.perf_counter()
        rows = evaluate(make_estimators(), ope_inputs(boot, action_dist, q_hat), truth)
        return rows, t1 - t0, time.perf_counter() - t1

    if workers == 1:
        results = map(one_run, range(n_runs))
    else:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="recux-ope-run") as pool:
            results = list(pool.map(one_run, range(n_runs)))
    for rows, rm_s, est_s in results:
        out.times["reward_model_s"] += rm_s
        out.times["estimators_s"] += est_s
        for name, row in rows.items():
            out.errors.setdefault(name, []).append(row["relative_error"])
            out.estimates.setdefault(name, []).append(row["estimate"])
            if "lambda" in row:
                out.lambdas.setdefault(name, []).append(row["lambda"])
    return out
