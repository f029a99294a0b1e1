"""UX diagnosis of one run: where is the experience bad, and for whom?

Input: the run's per-user table (``per_user_metrics.parquet``: ``user_id`` and one column per per-user value) and
its prepared data (recux.stages.PreparedData: user features, training and test matrices). Segments of the
evaluated users:

- user groups (recux.user_groups): every group the dataset offers (e.g. gender, age, occupation) and
  ``activity`` (terciles of the training-history length);
- ``test_popularity``: terciles of the mean training popularity (distinct training users) of the user's test
  items (niche vs mainstream tastes);
- ``items`` (only when the table has ``cold/``, ``cold_in_catalogue/``, ``warm/`` columns, i.e. a cold_start
  run): the user's metric on that part of their test items.

Statistics, for each segment S and metric m:

- mean of S with a 95% Student t interval (recux.unpaired.mean_ci);
- user segments: gap = mean(S) − mean(all users). Since the overall mean includes S, gap = (1 − f)(mean(S) −
  mean(C)) with C the other users and f = n_S / N; its CI is (1 − f) × the Welch interval of mean(S) − mean(C),
  and its p-value is Welch's test of S against C (different users: unpaired);
- item segments: gap = mean over S's users of (m on that part − m on all their test items), a paired
  difference (same users): t interval and paired t-test (recux.significance.paired_ttest);
- against a baseline run on the same data: the paired per-user difference run − baseline over S's users present
  in both, with a percentile bootstrap CI and the paired t-test p (recux.significance.paired_compare);
- p-values are Holm–Bonferroni adjusted across every (segment, metric) row (separately for the gap and for the
  baseline difference).

The worst-served segments: rows whose gap is a shortfall (below the overall mean for a higher-is-better metric,
above it for a lower-is-better one) with Holm-adjusted p <= alpha, ranked by the relative shortfall
|gap| / |overall mean| (so metrics of different scales rank together).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from recux.errors import DataError
from recux.significance import holm, paired_compare, paired_ttest
from recux.unpaired import mean_ci, welch
from recux.user_groups import Grouping, available_groups, grouping, tercile_grouping

ITEM_PARTS = ("cold", "cold_in_catalogue", "warm")  # a cold_start run's per-user column prefixes
ALPHA = 0.05
CI_LEVEL = 0.95


@dataclass
class BaselineDiff:
    """Run − baseline on the same users: n pairs, mean difference, bootstrap CI, paired t-test p."""

    n: int
    diff: float
    ci: tuple[float, float]
    p: float
    p_holm: float = math.nan


@dataclass
class SegmentRow:
    metric: str
    family: str
    level: str
    n: int
    mean: float
    ci: tuple[float, float]
    gap: float = math.nan
    gap_ci: tuple[float, float] = (math.nan, math.nan)
    p: float = math.nan
    p_holm: float = math.nan
    relative_shortfall: float = math.nan  # shortfall / |overall mean|; negative when the segment does better
    baseline: BaselineDiff | None = None

    @property
    def name(self) -> str:
        return f"{self.family}={self.level}"


@dataclass
class Diagnosis:
    metrics: list[str]
    directions: dict[str, bool]
    overall: dict[str, tuple[int, float, float, float]]  # metric -> (n, mean, low, high)
    rows: list[SegmentRow]
    definitions: dict[str, dict[str, str]]  # family -> level -> meaning
    alpha: float = ALPHA
    overall_baseline: dict[str, BaselineDiff] = field(default_factory=dict)

    def worst(self) -> list[SegmentRow]:
        """Significant shortfalls (Holm p <= alpha), largest relative shortfall first."""
        bad = [r for r in self.rows if r.p_holm <= self.alpha and r.relative_shortfall > 0]
        return sorted(bad, key=lambda r: -r.relative_shortfall)

    def largest_shortfalls(self, n: int = 3) -> list[SegmentRow]:
        """The n largest relative shortfalls, significant or not."""
        rows = [r for r in self.rows if r.relative_shortfall > 0]
        return sorted(rows, key=lambda r: -r.relative_shortfall)[:n]


def user_codes(per_user: pl.DataFrame, dataset: Any) -> np.ndarray:
    """The dataset's user code of each row's ``user_id`` (a DataError when one is not in the dataset)."""
    ids = per_user["user_id"].cast(pl.Utf8).to_numpy()
    lookup = {str(u): c for c, u in enumerate(dataset.user_ids.tolist())}
    missing = [u for u in ids if u not in lookup]
    if missing:
        raise DataError(f"{len(missing)} user_id(s) of the per-user table (e.g. {missing[0]!r}) are not users of "
                        f"the rebuilt dataset {dataset.name}: the run's data cannot be rebuilt from its config")
    return np.array([lookup[u] for u in ids], dtype=np.int64)


def test_popularity(data: Any, users: np.ndarray) -> np.ndarray:
    """Mean training popularity (distinct training users) of each user's test items."""
    pop = np.bincount(data.train_csr.indices, minlength=data.dataset.n_items).astype(np.float64)
    test = data.test_csr[users]
    counts = np.diff(test.indptr)
    sums = np.bincount(np.repeat(np.arange(len(users)), counts), weights=pop[test.indices], minlength=len(users))
    return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def user_segments(data: Any, users: np.ndarray) -> list[Grouping]:
    """Every user group the dataset offers, and test-item popularity terciles."""
    out = [grouping(g, users, data.dataset.user_features, data.train_csr)
           for g in available_groups(data.dataset.user_features)]
    return out + [tercile_grouping("test_popularity", test_popularity(data, users),
                                   "mean training popularity of the test items")]


def _user_row(metric: str, g: Grouping, level: str, values: np.ndarray, overall_mean: float) -> SegmentRow:
    inside = g.labels == level
    n, m, lo, hi = mean_ci(values[inside], CI_LEVEL)
    row = SegmentRow(metric, g.name, level, n, m, (lo, hi))
    rest = values[~inside]
    n_all = n + int(np.isfinite(rest).sum())
    if n and n_all > n:
        f = n / n_all
        w = welch(values[inside], rest, CI_LEVEL)
        row.gap, row.gap_ci, row.p = m - overall_mean, ((1 - f) * w.ci_low, (1 - f) * w.ci_high), w.p
    return row


def _item_row(metric: str, part: str, values: np.ndarray, overall: np.ndarray) -> SegmentRow:
    keep = np.isfinite(values) & np.isfinite(overall)
    n, m, lo, hi = mean_ci(values[keep], CI_LEVEL)
    row = SegmentRow(metric, "items", part, n, m, (lo, hi))
    d_n, d, d_lo, d_hi = mean_ci(values[keep] - overall[keep], CI_LEVEL)
    if d_n:
        row.gap, row.gap_ci, row.p = d, (d_lo, d_hi), paired_ttest(values[keep], overall[keep])
    return row


def _baseline_diff(run: np.ndarray, base: np.ndarray, n_resamples: int) -> BaselineDiff:
    keep = np.isfinite(run) & np.isfinite(base)
    t = paired_compare(run[keep], base[keep], n_resamples=n_resamples, level=CI_LEVEL)
    return BaselineDiff(t.n, t.mean_diff, (t.ci_low, t.ci_high), t.p_ttest)


def _column(per_user: pl.DataFrame, name: str) -> np.ndarray:
    return per_user[name].cast(pl.Float64).fill_null(np.nan).to_numpy()


def _aligned_baseline(per_user: pl.DataFrame, baseline: pl.DataFrame) -> pl.DataFrame:
    """The baseline's rows in the order of ``per_user`` (null where a user is missing from the baseline)."""
    keys = per_user.select(pl.col("user_id").cast(pl.Utf8))
    return keys.join(baseline.with_columns(pl.col("user_id").cast(pl.Utf8)), on="user_id", how="left",
                     maintain_order="left")


def _shortfall(row: SegmentRow, higher: bool, overall_mean: float) -> None:
    if math.isfinite(row.gap) and overall_mean:
        row.relative_shortfall = (-row.gap if higher else row.gap) / abs(overall_mean)


def diagnose(per_user: pl.DataFrame, data: Any, metrics: list[str], directions: dict[str, bool],
             baseline: pl.DataFrame | None = None, alpha: float = ALPHA, n_resamples: int = 10_000) -> Diagnosis:
    """The segment table of ``metrics`` (columns of ``per_user``) and, with ``baseline`` (another run's per-user
    table on the same data), the paired differences. See the module docstring for the statistics."""
    users = user_codes(per_user, data.dataset)
    groupings = user_segments(data, users)
    base = None if baseline is None else _aligned_baseline(per_user, baseline)
    parts = [p for p in ITEM_PARTS if all(f"{p}/{m}" in per_user.columns for m in metrics)]
    rows: list[SegmentRow] = []
    overall: dict[str, tuple[int, float, float, float]] = {}
    overall_base: dict[str, BaselineDiff] = {}
    for m in metrics:
        values = _column(per_user, m)
        overall[m] = mean_ci(values, CI_LEVEL)
        if base is not None:
            overall_base[m] = _baseline_diff(values, _column(base, m), n_resamples)
        for g in groupings:
            for level in g.levels:
                row = _user_row(m, g, level, values, overall[m][1])
                if base is not None:
                    inside = g.labels == level
                    row.baseline = _baseline_diff(values[inside], _column(base, m)[inside], n_resamples)
                rows.append(row)
        for part in parts:
            col = f"{part}/{m}"
            row = _item_row(m, part, _column(per_user, col), values)
            if base is not None:
                row.baseline = _baseline_diff(_column(per_user, col), _column(base, col), n_resamples)
            rows.append(row)
        for row in rows:
            if row.metric == m:
                _shortfall(row, directions.get(m, True), overall[m][1])
    _holm(rows)
    defs = {g.name: g.definitions for g in groupings if g.definitions}
    if parts:
        defs["items"] = {p: f"the user's {p}/ metric (test items of that part); gap: paired vs the same users' "
                            "overall value" for p in parts}
    return Diagnosis(list(metrics), {m: directions.get(m, True) for m in metrics}, overall, rows, defs, alpha,
                     overall_base)


def _holm(rows: list[SegmentRow]) -> None:
    for row, p in zip(rows, holm([r.p for r in rows]), strict=True):
        row.p_holm = float(p)
    with_base = [r for r in rows if r.baseline is not None]
    for row, p in zip(with_base, holm([r.baseline.p for r in with_base]), strict=True):  # type: ignore[union-attr]
        row.baseline.p_holm = float(p)  # type: ignore[union-attr]
