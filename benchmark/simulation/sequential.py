"""Sequential looks at an A/B test: why peeking at a fixed-horizon t-test inflates false positives, and an
always-valid alternative.

Users arrive in a random order (their assignment order); at each of ``n_looks`` equally spaced looks the test
is run on the users so far.

* naive peeking: a Welch t-test at every look, stopping at the first p < alpha. Each look has level alpha, but
  the chance that *some* look rejects under the null is larger (about 0.19 at 10 looks with alpha = 0.05;
  Armitage, McPherson & Rowe 1969): the false-positive rate is not alpha.
* mSPRT (Johari, Koomen, Pekelis & Walsh 2017, "Peeking at A/B tests", eq. 11 for normal data with a normal
  mixture): with the difference estimate D_n, its variance V_n = s_t^2/n_t + s_c^2/n_c at the look and a
  mixing variance tau^2,
      Lambda_n = sqrt(V_n / (V_n + tau^2)) * exp(tau^2 D_n^2 / (2 V_n (V_n + tau^2))),
  the always-valid p-value p_n = min(p_{n-1}, 1 / Lambda_n); rejecting when p_n <= alpha at any look keeps
  the false-positive rate at most alpha (asymptotically, with V_n plugged in).
"""

from __future__ import annotations

import math

import numpy as np

from recux.errors import ConfigError
from recux.unpaired import welch

PEEKING_WARNING = (
    "naive_p are fixed-horizon Welch p-values at interim looks, shown to demonstrate peeking: stopping at the first "
    "naive_p < alpha inflates the false-positive rate (about 0.19 at 10 looks with alpha = 0.05; "
    "scripts/ab_validation.py measures it). Decide on the final look's p-value, or on msprt_p (always valid) when "
    "you look early.")


def look_sizes(n: int, n_looks: int) -> np.ndarray:
    """The numbers of users (in arrival order) at each of ``n_looks`` equally spaced looks, the last = n."""
    if n_looks < 1:
        raise ConfigError(f"task.n_looks={n_looks} must be a positive number of interim looks, e.g. 10")
    return np.unique(np.ceil(np.arange(1, n_looks + 1) * n / n_looks).astype(np.int64))


def msprt_lambda(diff: float, var: float, tau: float) -> float:
    """The mixture likelihood ratio Lambda_n (see the module docstring); 1 when the variance is 0."""
    if not var > 0:
        return 1.0
    t2 = tau * tau
    log_l = 0.5 * math.log(var / (var + t2)) + t2 * diff * diff / (2 * var * (var + t2))
    return math.exp(min(log_l, 700.0))


def looks(control, treatment, arrival_c, arrival_t, n_looks: int, tau: float) -> dict:
    """At each look (by total users arrived): the naive Welch p-value and the always-valid mSPRT p-value.
    ``arrival_*``: each user's arrival rank (0..n-1 over both arms)."""
    if not tau > 0:
        raise ConfigError(f"task.msprt_tau={tau} must be positive: the sd of the effects the test expects")
    c, t = np.asarray(control, np.float64), np.asarray(treatment, np.float64)
    sizes = look_sizes(len(c) + len(t), n_looks)
    naive, always, p_av = [], [], 1.0
    for n in sizes:
        cc, tt = c[arrival_c < n], t[arrival_t < n]
        if cc.size < 2 or tt.size < 2:
            naive.append(1.0)
            always.append(p_av)
            continue
        w = welch(tt, cc)
        var = float(tt.var(ddof=1)) / tt.size + float(cc.var(ddof=1)) / cc.size
        p_av = min(p_av, 1.0 / msprt_lambda(w.diff, var, tau))
        naive.append(1.0 if math.isnan(w.p) else w.p)
        always.append(p_av)
    return {"users": sizes.tolist(), "naive_p": naive, "msprt_p": always}


def rejects(trajectory: dict, alpha: float) -> dict:
    """Whether each procedure rejects: naive at any look, naive at the final look only, mSPRT at any look."""
    return {"naive_any_look": bool(min(trajectory["naive_p"]) < alpha),
            "fixed_horizon": bool(trajectory["naive_p"][-1] < alpha),
            "msprt": bool(min(trajectory["msprt_p"]) <= alpha)}
