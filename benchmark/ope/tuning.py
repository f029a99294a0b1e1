"""Data-driven choice of an estimator's hyper-parameter lambda (Switch-DR's threshold, DRos' shrinkage), as OBP.

OBP 0.5 (obp/ope/estimators_tuning.py, ``tuning_method="slope"`` by default, ``delta=0.1``) tunes with SLOPE
(Su, Srinath & Krishnamurthy, "Adaptive Estimator Selection for Off-Policy Evaluation", ICML 2020; in the
variant of Tucker & Lee, "Improved Estimator Selection for Off-Policy Evaluation", 2021):
  - candidates sorted by decreasing lambda (OBP sorts ``lambdas`` in place, reverse=True);
  - for each, theta = estimate, cnf = t_{n-1}(1 - delta) * sqrt(var(round rewards) / (n - 1)) (var with ddof=0:
    the Student-t half width of ``estimate_student_t_lower_bound``);
  - visit the candidates by decreasing cnf (``np.argsort(cnf)[::-1]``); keep adding while
    |theta_j - theta_i| <= cnf_i + (sqrt(6) - 1) cnf_j for every kept j; at the first violation return the
    previously visited candidate; if none is violated, return the last.
The alternative ``"mse"`` picks the lambda minimising var(round rewards)/n + bias^2, with the bias bounded as in
OBP's ``estimate_high_probability_upper_bound_bias`` (``use_bias_upper_bound=True``) or its plug-in estimate.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache

import numpy as np
from scipy.special import stdtrit

from recux.errors import ConfigError
from recux.ope.estimators import DR, OPEInputs

TUNING_METHODS = ("slope", "mse")
SLOPE_C = np.sqrt(6) - 1


def sorted_lambdas(lambdas: Sequence[float]) -> list[float]:
    if not lambdas:
        raise ConfigError("lambdas must not be empty; e.g. [10, 50, 100, 500, 1000, 5000, 10000, .inf]")
    if any(not (lam >= 0) for lam in lambdas):
        raise ConfigError(f"lambdas must be >= 0 (inf allowed), got {list(lambdas)}")
    return sorted((float(lam) for lam in lambdas), reverse=True)


@lru_cache(maxsize=64)
def _t_quantile(df: int, q: float) -> float:
    return float(stdtrit(df, q))  # the Student-t quantile (what scipy.stats.t(df).ppf computes)


def student_t_half_width(x: np.ndarray, delta: float) -> float:
    """t_{n-1}(1 - delta) sqrt(var(x) / (n - 1)) (Thomas, Theocharous & Ghavamzadeh 2015, section 2.4)."""
    n = len(x)
    return float(np.sqrt(np.var(x) / (n - 1)) * _t_quantile(n - 1, 1.0 - delta))


def slope(make: Callable[[float], DR], lambdas: Sequence[float], inp: OPEInputs, delta: float = 0.1) -> float:
    lams = sorted_lambdas(lambdas)
    theta, cnf = [], []
    for lam in lams:
        rr = make(lam).round_rewards(inp)
        theta.append(rr.mean())
        cnf.append(student_t_half_width(rr, delta))
    order = np.argsort(cnf)[::-1]
    kept_theta: list[float] = []
    kept_cnf: list[float] = []
    for i, idx in enumerate(order):
        if kept_theta and not (np.abs(np.array(kept_theta) - theta[idx]) <= cnf[idx] + SLOPE_C * np.array(kept_cnf)).all():
            return lams[order[i - 1]]
        kept_theta.append(theta[idx])
        kept_cnf.append(cnf[idx])
    return lams[order[-1]]


def mse_score(est: DR, inp: OPEInputs, use_bias_upper_bound: bool = True, delta: float = 0.1) -> float:
    """var(round rewards)/n + bias^2, bias = |mean((w - w_hat)(r - q))| (+ high-probability terms)."""
    n = len(inp.reward)
    w = inp.iw
    bias = abs(((w - est.shrunk_weights(w)) * (inp.reward - inp.q_factual)).mean())
    if use_bias_upper_bound:
        bias += np.sqrt(2 * (w**2).mean() * np.log(2 / delta) / n) + 2 * w.max() * np.log(2 / delta) / (3 * n)
    return float(np.var(est.round_rewards(inp)) / n + bias**2)


def mse(make: Callable[[float], DR], lambdas: Sequence[float], inp: OPEInputs, delta: float = 0.1,
        use_bias_upper_bound: bool = True) -> float:
    lams = sorted_lambdas(lambdas)
    scores = [mse_score(make(lam), inp, use_bias_upper_bound, delta) for lam in lams]
    return lams[int(np.argmin(scores))]  # first minimum, as OBP's min over the dict in the same order


def tune(make: Callable[[float], DR], lambdas: Sequence[float], inp: OPEInputs, method: str = "slope",
         delta: float = 0.1, use_bias_upper_bound: bool = True) -> float:
    if method == "slope":
        return slope(make, lambdas, inp, delta)
    if method == "mse":
        return mse(make, lambdas, inp, delta, use_bias_upper_bound)
    raise ConfigError(f"tuning method must be one of {TUNING_METHODS}, got {method!r}")


class Tuned:
    """An estimator whose lambda is chosen on the data it estimates from (OBP's ``...Tuning`` classes).

    ``base``: SwitchDR or DRos (or DR: clipping). The lambda is tuned on each call (OBP's objects keep the first
    tuned value for later calls; recux tunes per dataset, e.g. per bootstrap run). ``last_lambda`` records it.
    """

    needs_reward_model = True

    def __init__(self, base: type[DR], lambdas: Sequence[float], method: str = "slope", delta: float = 0.1,
                 use_bias_upper_bound: bool = True, name: str | None = None) -> None:
        if method not in TUNING_METHODS:
            raise ConfigError(f"tuning method must be one of {TUNING_METHODS}, got {method!r}")
        self.base, self.lambdas = base, sorted_lambdas(lambdas)
        self.method, self.delta, self.use_bias_upper_bound = method, float(delta), bool(use_bias_upper_bound)
        self.name = name or base().name
        self.last_lambda: float | None = None

    def _make(self, lam: float) -> DR:
        return self.base(lambda_=lam)

    def tuned(self, inp: OPEInputs) -> DR:
        self.last_lambda = tune(self._make, self.lambdas, inp, self.method, self.delta, self.use_bias_upper_bound)
        return self._make(self.last_lambda)

    def round_rewards(self, inp: OPEInputs) -> np.ndarray:
        return self.tuned(inp).round_rewards(inp)

    def estimate(self, inp: OPEInputs) -> float:
        return float(self.round_rewards(inp).mean())
