"""The replay task's monitoring: drift between binned distributions, and alert rules over the window table.

Drift (p: the window's bin shares, q: the reference's; both smoothed as (x + eps) / sum(x + eps) so empty bins
stay finite):

* PSI, population stability index (Siddiqi 2006, "Credit Risk Scorecards", ch. 8; Yurdakul 2018):
  PSI(p, q) = sum_i (p_i - q_i) ln(p_i / q_i). Rule of thumb: < 0.1 stable, 0.1-0.25 some shift, > 0.25 a
  significant shift.
* KL divergence (Kullback & Leibler 1951): KL(p || q) = sum_i p_i ln(p_i / q_i) (nats). PSI = KL(p||q) + KL(q||p).
* Jensen-Shannon divergence (Lin 1991): JS(p, q) = 1/2 KL(p || m) + 1/2 KL(q || m), m = (p + q) / 2, in bits
  (log base 2), so 0 <= JS <= 1; scipy.spatial.distance.jensenshannon(p, q, base=2) is its square root.

Bins: quantiles of the reference sample (``quantile_edges``), so the reference spreads evenly over the bins;
values outside its range fall in the end bins.

Small windows: with no drift at all, n window values and m reference values in B bins give PSI of about
(B - 1) (1/n + 1/m) (its chi-square approximation), e.g. 0.09 for 100 values in 10 bins: a window needs many more
values than bins before a bound such as 0.25 means a shift (``alert_min_requests`` keeps tiny windows quiet).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from recux.errors import ConfigError

MEASURES = ("psi", "kl", "js")
REFERENCES = ("first_window", "validation")


def quantile_edges(reference: np.ndarray, n_bins: int) -> np.ndarray:
    """Inner bin edges at the 1/n .. (n-1)/n quantiles of ``reference`` (duplicates merged)."""
    if int(n_bins) < 2:
        raise ConfigError(f"task.drift.bins={n_bins} must be at least 2, e.g. 10.")
    if not len(reference):
        return np.zeros(0)
    return np.unique(np.quantile(np.asarray(reference, np.float64), np.linspace(0, 1, int(n_bins) + 1)[1:-1]))


def histogram(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts of ``values`` in the len(edges) + 1 bins (-inf, e_0), [e_0, e_1), ..., [e_last, inf)."""
    return np.bincount(np.searchsorted(edges, np.asarray(values, np.float64), side="right"),
                       minlength=len(edges) + 1).astype(np.float64)


def _shares(counts: np.ndarray, eps: float) -> np.ndarray:
    x = np.asarray(counts, np.float64) + eps
    total = x.sum()
    if total <= 0:
        raise ValueError("a distribution with no mass (no values and eps=0)")
    return x / total


def kl(p: np.ndarray, q: np.ndarray, eps: float = 0.0) -> float:
    """KL(p || q) in nats of two count or share vectors (smoothed by eps, then normalised)."""
    p, q = _shares(p, eps), _shares(q, eps)
    nz = p > 0
    return float(np.sum(p[nz] * np.log(p[nz] / q[nz])))


def psi(p: np.ndarray, q: np.ndarray, eps: float = 0.0) -> float:
    """Population stability index sum_i (p_i - q_i) ln(p_i / q_i) (smoothed by eps, then normalised)."""
    p, q = _shares(p, eps), _shares(q, eps)
    return float(np.sum((p - q) * np.log(p / q)))


def js(p: np.ndarray, q: np.ndarray, eps: float = 0.0) -> float:
    """Jensen-Shannon divergence in bits (smoothed by eps, then normalised)."""
    p, q = _shares(p, eps), _shares(q, eps)
    m = (p + q) / 2
    return (kl(p, m) + kl(q, m)) / 2 / math.log(2)


def drift(p: np.ndarray, q: np.ndarray, eps: float) -> dict[str, float]:
    """Every measure of p (window) against q (reference); NaN when the window has no values."""
    if np.sum(p) == 0:
        return dict.fromkeys(MEASURES, math.nan)
    return {"psi": psi(p, q, eps), "kl": kl(p, q, eps), "js": js(p, q, eps)}


# ---------------------------------------------------------------------------------------------------- alerts


@dataclass(frozen=True)
class Alert:
    """One rule over a column of the window table. Exactly one of: ``above`` (fires when value > above),
    ``below`` (value < below), ``drop`` (value < (1 - drop) * reference value, reference: the first window's
    value or the validation value: the same replay over the validation period). A NaN value never fires."""

    name: str
    column: str
    above: float | None = None
    below: float | None = None
    drop: float | None = None
    reference: str = "first_window"

    @classmethod
    def of(cls, name: str, node: Any) -> Alert:
        node = dict(node or {})
        unknown = set(node) - {"column", "above", "below", "drop", "reference"}
        rules = [k for k in ("above", "below", "drop") if node.get(k) is not None]
        where = f"task.alerts.{name}"
        if unknown or "column" not in node or len(rules) != 1:
            raise ConfigError(
                f"{where}={node} must have a column and exactly one of above, below or drop (and reference "
                "with drop), e.g. {column: ndcg@10, drop: 0.3, reference: first_window} or "
                "{column: latency_p99_ms, above: 100}" + (f"; unknown keys: {sorted(unknown)}" if unknown else "")
            )
        ref = str(node.get("reference") or "first_window")
        if ref not in REFERENCES:
            raise ConfigError(f"{where}.reference={ref!r} must be one of {', '.join(REFERENCES)}.")
        if node.get("drop") is not None and not 0 < float(node["drop"]) < 1:
            raise ConfigError(f"{where}.drop={node['drop']} is a relative drop in (0, 1), e.g. 0.3 (30% below "
                              "the reference).")
        vals = {k: None if node.get(k) is None else float(node[k]) for k in ("above", "below", "drop")}
        return cls(name, str(node["column"]), reference=ref, **vals)

    def threshold(self, references: dict[str, float | None]) -> float | None:
        """The bound the value is compared with (None: no reference value)."""
        if self.drop is None:
            return self.above if self.above is not None else self.below
        ref = references.get(self.reference)
        return None if ref is None or math.isnan(ref) else (1.0 - self.drop) * ref

    def fires(self, value: float, bound: float | None) -> bool:
        if bound is None or value is None or math.isnan(value):
            return False
        return value > bound if self.above is not None else value < bound

    def describe(self) -> str:
        if self.above is not None:
            return f"{self.column} > {self.above:g}"
        if self.below is not None:
            return f"{self.column} < {self.below:g}"
        return f"{self.column} < (1 - {self.drop:g}) x {self.reference} value"


def parse_alerts(node: Any) -> list[Alert]:
    if node is None:
        return []
    if not hasattr(node, "items"):
        raise ConfigError(f"task.alerts={node!r} must map alert names to rules, e.g. "
                          "{latency: {column: latency_p99_ms, above: 100}}.")
    return [Alert.of(str(name), rule) for name, rule in node.items() if rule is not None]


def apply_alerts(alerts: list[Alert], rows: list[dict[str, Any]], validation: dict[str, float],
                 min_requests: int = 0) -> tuple[list[dict[str, Any]], dict[str, list[float]]]:
    """Mark each window row (in place: ``alerts``, a comma-separated list of fired names, and ``alert``, whether
    any fired); return the fired events (window, alert, column, value, threshold) and the alerts'
    thresholds by column (for the plots). Windows with fewer than ``min_requests`` requests never fire (their
    values are mostly noise); the first window is the drop reference whatever its size."""
    fired, bounds = [], {}
    for row in rows:
        row["alerts"], row["alert"] = "", False
    for alert in alerts:
        refs = {"first_window": rows[0].get(alert.column) if rows else None,
                "validation": validation.get(alert.column)}
        bound = alert.threshold(refs)
        if bound is not None:
            bounds.setdefault(alert.column, []).append(bound)
        for row in rows:
            value = row.get(alert.column)
            if row.get("n_requests", min_requests) >= min_requests and alert.fires(value, bound):
                row["alerts"] = ",".join(filter(None, [row["alerts"], alert.name]))
                row["alert"] = True
                fired.append({"window": row["window"], "alert": alert.name, "column": alert.column,
                              "value": float(value), "threshold": float(bound), "rule": alert.describe()})
    return fired, bounds
