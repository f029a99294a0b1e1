"""OBP's protocol for evaluating off-policy estimators on real A/B logs (Saito et al. 2021, section 5; st-tech/zr-obp
examples/obd/evaluate_off_policy_estimators.py).

Two policies ran side by side on the same traffic. The behaviour policy's log is the input; the evaluation
policy's own log gives the ground truth V = its mean reward (on-policy). Run b (b = 0 .. n_runs-1) resamples the
behaviour log with replacement (``RandomState(b).choice(n, n)``, OBP's ``sample_bootstrap_bandit_feedback``),
fits the reward model on the resample (cross-fitted), runs every estimator and records |V_hat - V| / V.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from recux.bandit import BanditFeedback, BanditLogs
from recux.errors import ConfigError
from recux.ope.bts import bts_action_dist, cached_bts_action_dist
from recux.ope.estimators import Estimator
from recux.ope.evaluate import evaluate, ope_inputs
from recux.ope.tuning import Tuned


class RewardModel(Protocol):
    """Cross-fitted reward model: ``predict_folds(data).fill(out)`` writes q_hat (n_rounds, n_actions, len_list)."""

    def predict_folds(self, data: BanditFeedback) -> Any: ...


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


def start_action_dist(*args: Any, **kwargs: Any) -> Future:
    """``policy_action_dist(*args, **kwargs)`` on a worker thread. The BTS simulation runs without the GIL, so
    ``bootstrap_runs`` fits reward models meanwhile (pass it the Future). ``future.seconds`` holds the
    computation's own wall time once it is done."""
    seconds: dict[str, float] = {}

    def job() -> np.ndarray:
        t0 = time.perf_counter()
        try:
            return policy_action_dist(*args, **kwargs)
        finally:  # before the Future completes
            seconds["action_dist_s"] = time.perf_counter() - t0

    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="recux-action-dist")
    try:
        future = pool.submit(job)
    finally:
        pool.shutdown(wait=False)
    future.seconds = seconds  # type: ignore[attr-defined]
    return future


def bootstrap_runs(data: BanditFeedback, action_dist: np.ndarray | Future, truth: float, n_runs: int,
                   reward_model: RewardModel | None, make_estimators: Callable[[], Sequence[Estimator | Tuned]],
                   workers: int = 1) -> ProtocolResult:
    """Run b: resample the log with ``RandomState(b)``, fit the reward model (cross-fitted), run the estimators.
    ``workers`` threads run the runs side by side. ``action_dist`` may be a Future (``start_action_dist``):
    while it is computed, a lower-priority thread fits the runs' reward models ahead, keeping only their small
    fold factors (``predict_folds``); each run's q_hat is written into its thread's reused buffer when
    evaluated. Every run depends only on its index and results are kept in run order, so the result does not
    depend on ``workers`` or on the timing."""
    if n_runs < 1:
        raise ConfigError(f"n_runs must be >= 1, got {n_runs}")
    if workers < 1:
        raise ConfigError(f"workers must be >= 1, got {workers}")
    out = ProtocolResult(truth=truth, times={"reward_model_s": 0.0, "estimators_s": 0.0})
    fits = _Fits(data, n_runs, reward_model, out.times)
    if isinstance(action_dist, Future) and not action_dist.done():
        # each parallel step of the BTS simulation takes the GIL for a moment, and a thread running Python code
        # holds it for up to the switch interval (5 ms) before handing it over: 0.1 ms while both run (measured:
        # a GIL-holding neighbour made the parallel steps up to 4x slower at 5 ms, 1.05x at 0.1 ms)
        interval = sys.getswitchinterval()
        sys.setswitchinterval(min(interval, 1e-4))
        try:
            fits.ahead_until(action_dist.done)
            action_dist.exception()  # wait for it
        finally:
            sys.setswitchinterval(interval)
    dist = action_dist.result() if isinstance(action_dist, Future) else action_dist
    buffers = threading.local()

    def one_run(b: int) -> dict[str, dict[str, Any]]:
        boot, prediction = fits.get(b)
        q_hat = None
        if prediction is not None:
            if getattr(buffers, "q_hat", None) is None or buffers.q_hat.shape != prediction.shape:
                buffers.q_hat = np.empty(prediction.shape)
            q_hat = prediction.fill(buffers.q_hat)
        t0 = time.perf_counter()
        rows = evaluate(make_estimators(), ope_inputs(boot, dist, q_hat), truth)
        fits.add_time("estimators_s", time.perf_counter() - t0)
        return rows

    if workers == 1:
        results = list(map(one_run, range(n_runs)))
    else:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="recux-ope-run") as pool:
            results = list(pool.map(one_run, range(n_runs)))
    for rows in results:
        for name, row in rows.items():
            out.errors.setdefault(name, []).append(row["relative_error"])
            out.estimates.setdefault(name, []).append(row["estimate"])
            if "lambda" in row:
                out.lambdas.setdefault(name, []).append(row["lambda"])
    return out


class _Fits:
    """The runs' resamples and reward-model fits, each made once: by a background thread ahead of time
    (``ahead_until``) or by whichever thread asks first (``get``)."""

    def __init__(self, data: BanditFeedback, n_runs: int, reward_model: RewardModel | None,
                 times: dict[str, float]) -> None:
        self.data, self.reward_model, self.times = data, reward_model, times
        self.lock = threading.Lock()
        self.claimed = [False] * n_runs
        self.done = [threading.Event() for _ in range(n_runs)]
        self.results: list[Any] = [None] * n_runs

    def resample(self, b: int) -> BanditFeedback:
        n = self.data.n_rounds
        return self.data.take(np.random.RandomState(b).choice(np.arange(n), size=n))

    def add_time(self, key: str, seconds: float) -> None:
        with self.lock:
            self.times[key] += seconds

    def _claim(self, b: int) -> bool:
        with self.lock:
            mine, self.claimed[b] = not self.claimed[b], True
        return mine

    def _fit(self, b: int) -> BanditFeedback:
        boot = self.resample(b)
        try:
            t0 = time.perf_counter()
            pred = self.reward_model.predict_folds(boot) if self.reward_model is not None else None
            self.add_time("reward_model_s", time.perf_counter() - t0)
            self.results[b] = pred
        except BaseException as exc:  # noqa: BLE001 - raised by get() in the thread that needs the run
            self.results[b] = exc
        self.done[b].set()
        return boot

    def ahead_until(self, stop: Callable[[], bool]) -> None:
        """Fit runs 0, 1, ... on a lower-priority thread until ``stop()`` (the action distribution is done)."""

        def loop() -> None:
            lower_thread_priority()
            for b in range(len(self.claimed)):
                if stop() or not self._claim(b):
                    return
                self._fit(b)

        threading.Thread(target=loop, name="recux-ope-fits", daemon=True).start()

    def get(self, b: int) -> tuple[BanditFeedback, Any]:
        """Run b's resample and fitted predictions. A run fitted ahead is resampled again here (the same rows:
        the resample depends only on b) rather than kept, so waiting runs hold only their small fold factors."""
        boot = self._fit(b) if self._claim(b) else None
        self.done[b].wait()
        if isinstance(self.results[b], BaseException):
            raise self.results[b]
        return (boot if boot is not None else self.resample(b)), self.results[b]


def lower_thread_priority(increment: int = 10) -> None:
    """Renice the calling thread only (Linux: setpriority on its thread id), so that the work it does in the
    background yields the cores to the critical path (the BTS simulation); elsewhere a no-op."""
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + increment))
    except (AttributeError, OSError):
        pass
