"""User-group fairness of one run: for each user group (recux.user_groups) and each per-user metric at one
cut-off (``metrics.fairness_k``, default 10), every level's mean with n and a 95% t interval, the best and the
worst level by the metric's direction, and a test of the gap.

- gap = |best − worst| (>= 0; lower is better), recorded as ``fairness/<group>/gap/<metric>``;
- ratio = the smaller of the two means over the larger (worst/best for a higher-is-better metric, best/worst for
  a lower-is-better one, so it lies in [0, 1] for non-negative metrics; 1 = parity, higher is better), recorded as
  ``fairness/<group>/ratio/<metric>``; NaN when the larger mean is 0 or either is negative;
- p_welch: Welch's t-test of best vs worst level (recux.unpaired.welch; groups are different users). The pair is
  chosen after looking at the means, so with many levels this p is optimistic: read it with p_kruskal;
- p_kruskal: Kruskal–Wallis test over all levels (the omnibus test: are the groups' distributions the same?);
- p_*_holm: Holm–Bonferroni adjusted across every (group, metric) tested in the run (recux.significance.holm).

Only levels with at least ``MIN_N`` users with a value are ranked best/worst (Welch's test needs two per side); all
levels are listed. A per-user NaN (a value undefined for that user) is left out of that metric's means.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import polars as pl

from recux.errors import ConfigError
from recux.significance import holm
from recux.unpaired import kruskal, mean_ci, welch
from recux.user_groups import Grouping, check_groups, grouping

DEFAULT_K = 10
MIN_N = 2
CI_LEVEL = 0.95


@dataclass
class LevelStat:
    level: str
    n: int
    mean: float
    ci: list[float]


@dataclass
class GapTest:
    """One (group, metric): its levels, best/worst, gap, ratio and p-values (raw and Holm-adjusted)."""

    group: str
    metric: str
    higher_is_better: bool
    levels: list[LevelStat]
    best: str | None = None
    worst: str | None = None
    gap: float = math.nan
    ratio: float = math.nan
    p_welch: float = math.nan
    p_kruskal: float = math.nan
    p_welch_holm: float = math.nan
    p_kruskal_holm: float = math.nan
    definitions: dict[str, str] = field(default_factory=dict)


def ratio(best: float, worst: float) -> float:
    """The smaller mean over the larger (1 = parity); NaN when the larger is 0 or either is negative."""
    lo, hi = min(best, worst), max(best, worst)
    return math.nan if hi <= 0 or lo < 0 else lo / hi


def gap_test(values: np.ndarray, g: Grouping, metric: str, higher: bool) -> GapTest:
    """Levels, best and worst level (by the metric's direction), gap, ratio and both tests for one metric."""
    samples = {lv: values[g.labels == lv] for lv in g.levels}
    stats = {lv: mean_ci(x, CI_LEVEL) for lv, x in samples.items()}
    out = GapTest(g.name, metric, higher, [LevelStat(lv, s[0], s[1], [s[2], s[3]]) for lv, s in stats.items()],
                  definitions=dict(g.definitions))
    ranked = sorted((lv for lv, s in stats.items() if s[0] >= MIN_N), key=lambda lv: stats[lv][1],
                    reverse=higher)
    if len(ranked) < 2:
        return out
    out.best, out.worst = ranked[0], ranked[-1]
    b, w = stats[out.best][1], stats[out.worst][1]
    out.gap, out.ratio = abs(b - w), ratio(b, w)
    out.p_welch = welch(samples[out.best], samples[out.worst]).p
    out.p_kruskal = kruskal(list(samples.values()))
    return out


def fairness_metrics(per_user: pl.DataFrame, directions: dict[str, bool], k: int) -> list[str]:
    """The run's overall per-user metrics at cut-off k (no ``<group>/`` columns of a task's item groups)."""
    return [c for c in per_user.columns if c.endswith(f"@{k}") and "/" not in c and c in directions]


def gap_tests(per_user: pl.DataFrame, groupings: list[Grouping], metrics: list[str],
              directions: dict[str, bool]) -> list[GapTest]:
    """Every (group, metric) test, Holm-corrected across all of them (each test's p separately)."""
    tests = [gap_test(per_user[m].to_numpy().astype(np.float64), g, m, directions[m])
             for g in groupings for m in metrics]
    for name in ("p_welch", "p_kruskal"):
        for t, p in zip(tests, holm([getattr(t, name) for t in tests]), strict=True):
            setattr(t, f"{name}_holm", float(p))
    return tests


@dataclass(frozen=True)
class FairnessSettings:
    groups: list[str]
    k: int

    @classmethod
    def of(cls, spec: Any, data: Any) -> FairnessSettings:
        """metrics.groups and metrics.fairness_k, checked against the dataset and metrics.ks before fitting."""
        node = spec.resolved.get("metrics") or {}
        groups = check_groups(node.get("groups") or [], data.dataset.user_features, data.dataset.name)
        k = node.get("fairness_k", DEFAULT_K)
        if groups and (isinstance(k, bool) or not isinstance(k, int) or k not in spec.ks):
            raise ConfigError(f"metrics.fairness_k={k!r} must be one of metrics.ks={list(spec.ks)}: the cut-off "
                              "whose metrics are compared across user groups (e.g. metrics.fairness_k=10)")
        return cls(groups, int(k) if groups else DEFAULT_K)


def add_fairness(record: Any, report: Any, data: Any, settings: FairnessSettings) -> list[GapTest]:
    """Compute the fairness table of a run's overall report and add it to the results record: flat gaps and
    ratios (with directions) to ``record.metrics``, the full table to ``record.extra["fairness"]``."""
    if not settings.groups:
        return []
    users = report.per_user["user"].to_numpy()
    groupings = [grouping(g, users, data.dataset.user_features, data.train_csr) for g in settings.groups]
    tests = gap_tests(report.per_user, groupings, fairness_metrics(report.per_user, report.directions,
                                                                   settings.k), report.directions)
    for t in tests:
        for kind, value, higher in (("gap", t.gap, False), ("ratio", t.ratio, True)):
            name = f"fairness/{t.group}/{kind}/{t.metric}"
            record.metrics[name] = value
            record.directions[name] = higher
    record.extra["fairness"] = fairness_extra(tests, settings.k)
    return tests


def fairness_extra(tests: list[GapTest], k: int) -> dict[str, Any]:
    """The JSON section: settings, then ``groups[group][metric]`` = the GapTest's fields."""
    groups: dict[str, dict[str, Any]] = {}
    for t in tests:
        row = {k_: v for k_, v in asdict(t).items() if k_ not in ("group", "metric", "definitions")}
        groups.setdefault(t.group, {"definitions": t.definitions, "metrics": {}})["metrics"][t.metric] = row
    return {"k": k, "ci_level": CI_LEVEL, "ci": "Student t interval of each level's mean",
            "tests": "p_welch: Welch t-test best vs worst level; p_kruskal: Kruskal-Wallis over all levels; "
                     "*_holm: Holm-Bonferroni across all groups x metrics of the run",
            "min_n_ranked": MIN_N, "groups": groups}
