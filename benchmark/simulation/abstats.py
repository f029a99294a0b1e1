"""A/B statistics over per-user values (the user is the unit of randomisation, so each user contributes one
value per metric: their own mean, and users are the independent observations).

* lift: Welch's t-test of mean(treatment) - mean(control) (recux.unpaired.welch: CI and two-sided p-value), and
  the relative lift r = m_t / m_c - 1 with a delta-method standard error
  se_r = sqrt(v_t / m_c^2 + m_t^2 v_c / m_c^4), v = s^2 / n (normal interval);
* power and minimum detectable effect of a two-sided two-sample test at level alpha with standard error
  se = sqrt(sd_c^2 / n_c + sd_t^2 / n_t) (normal approximation):
  power(delta) = Phi(|delta| / se - z_{1-alpha/2}) + Phi(-|delta| / se - z_{1-alpha/2}),
  MDE = (z_{1-alpha/2} + z_{power}) * se;
* CUPED (Deng, Xu, Kohavi & Walker 2013): with a pre-period covariate X per user (independent of the
  assignment), theta = cov(Y, X) / var(X) over both arms pooled, Y_cv = Y - theta (X - mean(X)); the Welch test
  on Y_cv estimates the same difference with variance reduced by the factor 1 - corr(Y, X)^2.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from recux.errors import ConfigError
from recux.unpaired import welch


def check_alpha(alpha: float, power: float = 0.8) -> None:
    if not 0 < alpha < 1:
        raise ConfigError(f"task.alpha={alpha} must be a level in (0, 1), e.g. 0.05")
    if not 0 < power < 1:
        raise ConfigError(f"task.power={power} must be in (0, 1), e.g. 0.8")


@dataclass(frozen=True)
class Lift:
    """One metric's comparison of a treatment arm with the control arm."""

    control: float
    treatment: float
    diff: float
    ci_low: float
    ci_high: float
    p: float
    relative: float
    relative_ci_low: float
    relative_ci_high: float
    n_control: int
    n_treatment: int

    def to_dict(self) -> dict:
        return asdict(self)


def lift(control, treatment, alpha: float = 0.05) -> Lift:
    """Welch test and relative lift of per-user values (see the module docstring)."""
    from scipy import stats

    c, t = np.asarray(control, np.float64), np.asarray(treatment, np.float64)
    w = welch(t, c, level=1 - alpha)
    mc, mt = float(c.mean()), float(t.mean())
    vc, vt = float(c.var(ddof=1)) / c.size, float(t.var(ddof=1)) / t.size
    if mc != 0:
        rel = mt / mc - 1
        se = math.sqrt(vt / mc**2 + mt**2 * vc / mc**4)
        half = float(stats.norm.ppf(1 - alpha / 2)) * se
    else:
        rel, half = math.nan, math.nan
    return Lift(mc, mt, w.diff, w.ci_low, w.ci_high, w.p, rel, rel - half, rel + half, int(c.size), int(t.size))


def standard_error(sd_c: float, sd_t: float, n_c: int, n_t: int) -> float:
    return math.sqrt(sd_c**2 / n_c + sd_t**2 / n_t)


def power(delta: float, se: float, alpha: float = 0.05) -> float:
    """Power of the two-sided test at level alpha to detect a true difference ``delta`` (normal approx.)."""
    from scipy import stats

    z = float(stats.norm.ppf(1 - alpha / 2))
    d = abs(delta) / se
    return float(stats.norm.cdf(d - z) + stats.norm.cdf(-d - z))


def mde(se: float, alpha: float = 0.05, target_power: float = 0.8) -> float:
    """The smallest true difference detected with probability ``target_power`` (normal approx.)."""
    from scipy import stats

    return float((stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(target_power)) * se)


def cuped(y_control, y_treatment, x_control, x_treatment) -> tuple[np.ndarray, np.ndarray, float]:
    """CUPED-adjusted per-user values of both arms and theta (see the module docstring). theta is 0 when the
    covariate is constant."""
    y = np.concatenate([y_control, y_treatment]).astype(np.float64)
    x = np.concatenate([x_control, x_treatment]).astype(np.float64)
    vx = float(x.var(ddof=1))
    theta = float(np.cov(y, x, ddof=1)[0, 1] / vx) if vx > 0 else 0.0
    mx = float(x.mean())
    adj_c = np.asarray(y_control, np.float64) - theta * (np.asarray(x_control, np.float64) - mx)
    adj_t = np.asarray(y_treatment, np.float64) - theta * (np.asarray(x_treatment, np.float64) - mx)
    return adj_c, adj_t, theta
