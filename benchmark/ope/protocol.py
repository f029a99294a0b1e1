"""OBP's protocol for evaluating off-policy estimators on real A/B logs (Saito et al. 2021, section 5; st-tech/zr-obp
examples/obd/evaluate_off_policy_estimators.py).

Two policies ran side by side on the same traffic. The behaviour policy's log is the input; the evaluation
policy's own log gives the ground truth V = its mean reward (on-policy). Run b (b = 0 .. n_runs-1) resamples the
behaviour log with replacement (``RandomState(b).choice(n, n)``, OBP's ``sample_bootstrap_bandit_feedback``),
fits the reward model on the resample (cross-fitted), runs every estimator and records |V_hat - V| / V.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
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


def start_action_dist(*args, **kwargs) -> Future:
    """``policy_action_dist(*args, **kwargs)`` on a worker thread. The BTS simulation runs without the GIL, so
    reward models can be fitted meanwhile (``bootstrap_runs`` takes the Future). ``future.seconds`` holds the
    computation's own wall time once it is done."""
    seconds: dict[str, float] = {}

    def job() -> np.ndarray:
        t0 = time.perf_counter()
        try:
            return policy_action_dist(*args, **kwargs)
        finally:
            seconds["action_dist_s"] = time.perf_counter() - t0

    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="recux-action-dist")
    try:
        future = pool.submit(job)
    finally:
        pool.shutdown(wait=False)
    future.seconds = seconds  # type: ignore[attr-defined]
    return future


def _ready(dist: np.ndarray | Future) -> bool:
    return not isinstance(dist, Future) or dist.done()


def _value(dist: np.ndarray | Future) -> np.ndarray:
    return dist.result() if isinstance(dist, Future) else dist


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


def bootstrap_runs(data: BanditFeedback, action_dist: np.ndarray | Future, truth: float, n_runs: int,
                   reward_model: RewardModel | None, make_estimators: Callable[[], Sequence[Estimator | Tuned]],
                   ahead_bytes: int = 1 << 30) -> ProtocolResult:
    """``action_dist`` may be a Future (``start_action_dist``): while it is computed, a worker thread at lower
    priority fits the runs' reward models ahead, keeping at most ``ahead_bytes`` of fitted q_hat waiting. Runs
    are evaluated in order either way, so the result does not depend on the timing."""
    if n_runs < 1:
        raise ConfigError(f"n_runs must be >= 1, got {n_runs}")
    out = ProtocolResult(truth=truth, times={"reward_model_s": 0.0, "estimators_s": 0.0})

    def fitted_runs() -> Iterator[tuple[BanditFeedback, np.ndarray | None]]:
        for b in range(n_runs):
            boot = data.take(np.random.RandomState(b).choice(np.arange(data.n_rounds), size=data.n_rounds))
            t0 = time.perf_counter()
            q_hat = reward_model(boot) if reward_model is not None else None
            out.times["reward_model_s"] += time.perf_counter() - t0
            yield boot, q_hat

    runs = fitted_runs()
    if isinstance(action_dist, Future) and not action_dist.done():
        q_bytes = 8 * data.n_rounds * data.n_actions * data.len_list if reward_model is not None else 0
        runs = _ahead(runs, max(1, ahead_bytes // max(q_bytes, 1)))
    for boot, q_hat in runs:
        _evaluate_run(out, boot, q_hat, _value(action_dist), truth, make_estimators)
    return out


def _ahead(items: Iterator[Any], size: int) -> Iterator[Any]:
    """``items`` produced on a worker thread at lower priority, up to ``size`` ahead of the consumer (a worker's
    exception is raised here)."""
    buffer: queue.Queue = queue.Queue(maxsize=size)
    done = object()

    def produce() -> None:
        lower_thread_priority()
        try:
            for item in items:
                buffer.put((None, item))
            buffer.put((None, done))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            buffer.put((exc, None))

    threading.Thread(target=produce, name="recux-ahead", daemon=True).start()
    while True:
        exc, item = buffer.get()
        if exc is not None:
            raise exc
        if item is done:
            return
        yield item


def lower_thread_priority(increment: int = 10) -> None:
    """Renice the calling thread only (Linux: setpriority on its thread id), so that work it does in the
    background yields the cores to the critical path; elsewhere a no-op."""
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + increment))
    except (AttributeError, OSError):
        pass


def _evaluate_run(out: ProtocolResult, boot: BanditFeedback, q_hat: np.ndarray | None, action_dist: np.ndarray,
                  truth: float, make_estimators: Callable[[], Sequence[Estimator | Tuned]]) -> None:
    t0 = time.perf_counter()
    rows = evaluate(make_estimators(), ope_inputs(boot, action_dist, q_hat), truth)
    out.times["estimators_s"] += time.perf_counter() - t0
    for name, row in rows.items():
        out.errors.setdefault(name, []).append(row["relative_error"])
        out.estimates.setdefault(name, []).append(row["estimate"])
        if "lambda" in row:
            out.lambdas.setdefault(name, []).append(row["lambda"])
