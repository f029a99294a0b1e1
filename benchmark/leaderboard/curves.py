"""Learning curves: accuracy against the training-data fraction (``data.train_fraction``, recux.subsample).

Runs at different fractions are different sections (the fraction is part of the data hash); sections whose data
settings agree except for the fraction form one *curve family*, and a variant (same variant hash: the fraction is
not part of it) present at two or more fractions is one line. Per fraction and metric a point is the mean over
seeds with a 95% t-interval over seeds (mean ± t_{0.975, n-1} s / sqrt(n); none with one seed) and the relative
loss against the same variant's 100% point, 1 - mean_f / mean_1, mean_1 over the seeds the fraction's point has
(all of the 100% seeds when they share none).

Significance at each fraction: every pair of lines present at that fraction, paired per user on the runs of the
same seed (recux.leaderboard.pairing.paired_values: one pair per user, the user's mean over the shared seeds),
tested with recux.significance.paired_compare, p-values Holm-corrected over the pairs of that fraction (one
family of comparisons per fraction and metric, as the main table corrects over its rows).

Loss comparison ("does A lose less than B?"): at each fraction f < 1, every pair of lines with a 100% point, per
user the drop from 100% to f of each (value at 100% - value at f, on the seeds all four rows share, averaged per
user), compared paired per user (mean of drop_A - drop_B < 0: A loses less), Holm-corrected per fraction. It
compares absolute drops, not the relative loss of the table.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import combinations

import numpy as np

from recux.leaderboard.aggregate import Leaderboard, Row
from recux.leaderboard.collect import _seed_key
from recux.leaderboard.pairing import CI_LEVEL, SIGNIFICANCE_SEED, _PerUserCache, paired_values
from recux.results import config_hash
from recux.significance import N_RESAMPLES, PairedTest, holm, paired_compare


def fraction_of(board: Leaderboard) -> float:
    """The section's training fraction (1.0 when its data settings name none)."""
    return float((board.data_settings.get("data") or {}).get("train_fraction", 1.0))


def family_key(board: Leaderboard) -> tuple[str, str, str]:
    """(dataset, protocol, hash of the data settings without the fraction): sections of one curve."""
    rest = {k: v for k, v in board.data_settings.items() if k != "data"}
    keep = (board.data_settings.get("data") or {}).get("train_keep", "random")  # 100% joins the random family
    return board.dataset, board.protocol, config_hash(rest) + ("" if keep == "random" else f"/{keep}")


@dataclass(frozen=True)
class Point:
    fraction: float
    mean: float
    std: float
    n: int
    ci_low: float
    ci_high: float
    rel_loss: float  # 1 - mean / mean at fraction 1.0 (NaN without a 1.0 point)
    row: Row = field(repr=False, compare=False)


@dataclass(frozen=True)
class Comparison:
    fraction: float
    a: str
    b: str
    test: PairedTest | None
    n_seeds: int
    p_permutation_holm: float = math.nan
    p_ttest_holm: float = math.nan
    note: str = ""


@dataclass
class Curve:
    """One metric of one curve family: a line per variant (display name -> fraction -> Point)."""

    dataset: str
    protocol: str
    key: str
    metric: str
    higher_is_better: bool
    settings: dict
    lines: dict[str, dict[float, Point]]
    comparisons: list[Comparison] = field(default_factory=list)
    drop_comparisons: list[Comparison] = field(default_factory=list)  # A's vs B's per-user drop from 100%

    @property
    def fractions(self) -> list[float]:
        return sorted({f for line in self.lines.values() for f in line})


def t_interval(values: Sequence[float], level: float = CI_LEVEL) -> tuple[float, float]:
    """mean ± t_{(1+level)/2, n-1} * s / sqrt(n) over seeds (Student 1908); (NaN, NaN) with fewer than 2."""
    from scipy import stats

    v = np.asarray([x for x in values if x is not None and math.isfinite(x)], dtype=np.float64)
    if v.size < 2:
        return math.nan, math.nan
    half = float(stats.t.ppf((1 + level) / 2, v.size - 1) * v.std(ddof=1) / math.sqrt(v.size))
    return float(v.mean()) - half, float(v.mean()) + half


def _point(fraction: float, row: Row, metric: str) -> Point | None:
    values = [r.metrics.get(metric) for r in row.runs]
    values = [v for v in values if v is not None and math.isfinite(v)]
    if not values:
        return None
    lo, hi = t_interval(values)
    std = float(np.std(values, ddof=1)) if len(values) > 1 else math.nan
    return Point(fraction, float(np.mean(values)), std, len(values), lo, hi, math.nan, row)


def _full_mean(full: Point, seeds: list, metric: str) -> float:
    """The 100% point's mean over the seeds the other point has (all of its seeds when it shares none)."""
    values = [r.metrics.get(metric) for r in full.row.runs if r.seed in seeds] or [full.mean]
    values = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(values)) if values else full.mean


def _with_loss(line: dict[float, Point], metric: str) -> dict[float, Point]:
    full = line.get(1.0)
    out = {}
    for f, p in sorted(line.items()):
        base = _full_mean(full, p.row.seeds, metric) if full is not None else math.nan
        loss = 1.0 - p.mean / base if base and math.isfinite(base) else math.nan
        out[f] = Point(p.fraction, p.mean, p.std, p.n, p.ci_low, p.ci_high, loss, p.row)
    return out


def curve_metrics(boards: Sequence[Leaderboard]) -> list[str]:
    """The primary metric, then its item-group versions (cold_start: cold/, cold_in_catalogue/, warm/)."""
    primary = boards[0].primary
    present = {m for b in boards for m in b.all_metrics}
    groups = sorted(m for m in present if m.endswith(f"/{primary}") and not m.startswith("fairness/"))
    return [primary, *groups]


def _lines(boards: Sequence[Leaderboard], metric: str) -> dict[str, dict[float, Point]]:
    """Per variant hash (named by its display at the largest fraction) its points; variants at >= 2 fractions."""
    by_variant: dict[str, dict[float, Point]] = {}
    names: dict[str, tuple[float, str]] = {}
    for b in boards:
        f = fraction_of(b)
        for row in b.rows:
            p = _point(f, row, metric)
            if p is not None:
                by_variant.setdefault(row.variant_hash, {})[f] = p
                names[row.variant_hash] = max(names.get(row.variant_hash, (-1.0, "")), (f, row.display))
    return {names[h][1]: _with_loss(line, metric) for h, line in by_variant.items() if len(line) >= 2}


def _holm_compared(fraction: float, candidates: list, pairs_of, n_resamples: int, seed: int) -> list[Comparison]:
    """Every pair of ``candidates`` ((name, rows...) tuples) compared per user by ``pairs_of(rows_a, rows_b)``
    (``(x, y, n_seeds)`` or a string saying why not), with Holm-corrected permutation and t-test p-values."""
    found = []
    for (na, *ra), (nb, *rb) in combinations(candidates, 2):
        pairs = pairs_of(ra, rb)
        if isinstance(pairs, str):
            found.append(Comparison(fraction, na, nb, None, 0, note=pairs))
            continue
        x, y, n_seeds = pairs
        found.append(Comparison(fraction, na, nb, paired_compare(x, y, n_resamples, CI_LEVEL, seed), n_seeds))
    p_perm = holm([c.test.p_permutation if c.test else math.nan for c in found])
    p_t = holm([c.test.p_ttest if c.test else math.nan for c in found])
    return [Comparison(c.fraction, c.a, c.b, c.test, c.n_seeds, float(pp), float(pt), c.note)
            for c, pp, pt in zip(found, p_perm, p_t, strict=True)]


def _compare(curve: Curve, n_resamples: int, seed: int, cache: _PerUserCache) -> None:
    for f in curve.fractions:
        here = [(name, line[f]) for name, line in curve.lines.items() if f in line]
        curve.comparisons += _holm_compared(
            f, here, lambda a, b: paired_values(a[0].row, b[0].row, curve.metric, cache), n_resamples, seed)


def _per_user(cache: _PerUserCache, run, metric: str, name: str):
    got = cache.get(run, metric)
    return got if isinstance(got, str) else got.rename({"v": name})


def drop_pairs(a_f: Row, a_1: Row, b_f: Row, b_1: Row, metric: str, cache: _PerUserCache | None = None):
    """Per user the drops from 100% to the fraction, ``(drop_a, drop_b, n_seeds)`` with drop = value at 100% -
    value at f, each the user's mean over the seeds all four rows share (users with a value in all four); or a
    string saying why there are none."""
    import polars as pl

    cache = cache or _PerUserCache()
    by_seed = [{_seed_key(r.seed): r for r in row.runs} for row in (a_f, a_1, b_f, b_1)]
    shared = sorted(set.intersection(*(set(m) for m in by_seed)))
    if not shared:
        return "no seed shared by both variants at both fractions"
    frames = []
    for seed in shared:
        parts = [_per_user(cache, m[seed], metric, n) for m, n in zip(by_seed, ("af", "a1", "bf", "b1"), strict=True)]
        for part in parts:
            if isinstance(part, str):
                return part
        joined = parts[0]
        for part in parts[1:]:
            joined = joined.join(part, on="user_id", how="inner")
        frames.append(joined.drop_nulls().filter(pl.all_horizontal(pl.col("af", "a1", "bf", "b1").is_not_nan())))
    per_user = pl.concat(frames).group_by("user_id").agg(pl.col("af", "a1", "bf", "b1").mean()).sort("user_id")
    if per_user.height == 0:
        return "no test user with values in all four runs"
    drop_a = (per_user["a1"] - per_user["af"]).to_numpy()
    return drop_a, (per_user["b1"] - per_user["bf"]).to_numpy(), len(shared)


def _compare_drops(curve: Curve, n_resamples: int, seed: int, cache: _PerUserCache) -> None:
    """At each fraction below 1: does A lose less than B? Paired per user, drop_A vs drop_B (Holm per fraction)."""
    for f in [x for x in curve.fractions if x != 1.0]:
        here = [(n, line[f], line[1.0]) for n, line in curve.lines.items() if f in line and 1.0 in line]
        curve.drop_comparisons += _holm_compared(
            f, here, lambda a, b: drop_pairs(a[0].row, a[1].row, b[0].row, b[1].row, curve.metric, cache),
            n_resamples, seed)


def learning_curves(boards: Sequence[Leaderboard], significance: bool = True,
                    n_resamples: int = N_RESAMPLES, seed: int = SIGNIFICANCE_SEED) -> list[Curve]:
    """Every curve family with at least two fractions and one line, per metric (see the module docstring)."""
    families: dict[tuple[str, str, str], list[Leaderboard]] = {}
    for b in boards:
        if b.rows:
            families.setdefault(family_key(b), []).append(b)
    cache, out = _PerUserCache(), []
    for (dataset, protocol, key), fboards in sorted(families.items()):
        if len({fraction_of(b) for b in fboards}) < 2:
            continue
        settings = {k: v for k, v in fboards[0].data_settings.items() if k != "data"}
        for metric in curve_metrics(fboards):
            lines = _lines(fboards, metric)
            if not lines:
                continue
            curve = Curve(dataset, protocol, key, metric, fboards[0].higher_is_better(metric), settings, lines)
            if significance:
                _compare(curve, n_resamples, seed, cache)
                _compare_drops(curve, n_resamples, seed, cache)
            out.append(curve)
    return out
