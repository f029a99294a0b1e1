"""Significance: pair per-user values of each row with the best row's (one pair per user, averaged over shared
seeds) and attach paired tests with Holm–Bonferroni-corrected p-values (``paired_values``, ``add_significance``)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from recux.leaderboard.collect import Run, _seed_key
from recux.significance import N_RESAMPLES, holm, paired_compare

if TYPE_CHECKING:  # the aggregate module imports this one (build_leaderboards -> add_significance)
    from recux.leaderboard.aggregate import Leaderboard, Row

CI_LEVEL = 0.95  # confidence level of the bootstrap CI of the mean difference vs the best row
SIGNIFICANCE_SEED = 0  # seed of the bootstrap and randomization draws (tables are repeatable)


class _PerUserCache:
    """Reads (user_id, metric) from per-user parquet files once each."""

    def __init__(self) -> None:
        self._cache: dict[tuple[Path, str], Any] = {}

    def get(self, run: Run, metric: str):
        """The polars frame (user_id as string, value) or a string saying why it is unavailable."""
        import polars as pl

        path = run.per_user_path
        key = (path, metric)
        if key not in self._cache:
            if not path.is_file():
                self._cache[key] = f"missing {path}"
            else:
                try:
                    names = pl.read_parquet_schema(path)
                    if "user_id" not in names or metric not in names:
                        self._cache[key] = f"no 'user_id'/'{metric}' column in {path}"
                    else:
                        df = pl.read_parquet(path, columns=["user_id", metric])
                        self._cache[key] = df.select(
                            pl.col("user_id").cast(pl.Utf8), pl.col(metric).cast(pl.Float64).alias("v")
                        )
                except Exception as e:  # noqa: BLE001 - a corrupt file must not stop the leaderboard
                    self._cache[key] = f"unreadable {path} ({type(e).__name__}: {e})"
        return self._cache[key]


def paired_values(row: Row, best: Row, metric: str, cache: _PerUserCache | None = None):
    """One pair per user: ``(x, y, n_seeds)`` with x[i], y[i] the user's mean value in ``row`` and ``best``
    over the ``n_seeds`` seeds both variants have, users sorted by id; or a string saying why they cannot be
    paired (a missing file makes the comparison n/a).

    Why per-user means: a user appears once per seed, and those values are not independent (same user, same
    tastes), so pooling (seed, user) pairs would count one user several times and make p-values too small.
    Averaging first gives one independent pair per user (the unit the tests and the bootstrap resample). A user
    missing from a seed in either variant (or with a NaN value there) is averaged over the shared seeds where
    it has a value in both, so both sides of a pair always average over the same seeds; a user with no such
    seed is left out."""
    import polars as pl

    cache = cache or _PerUserCache()
    best_by_seed = {_seed_key(r.seed): r for r in best.runs}
    common = [r for r in row.runs if _seed_key(r.seed) in best_by_seed]
    if not common:
        return "no seed in common with the best row"
    joined = []
    for r in common:
        a, b = cache.get(r, metric), cache.get(best_by_seed[_seed_key(r.seed)], metric)
        for side in (a, b):
            if isinstance(side, str):
                return side
        joined.append(a.join(b, on="user_id", how="inner", suffix="_best"))
    valid = pl.col("v").is_not_null() & pl.col("v_best").is_not_null()
    valid = valid & pl.col("v").is_not_nan() & pl.col("v_best").is_not_nan()
    per_user = (
        pl.concat(joined)
        .filter(valid)
        .group_by("user_id")
        .agg(pl.col("v").mean(), pl.col("v_best").mean())
        .sort("user_id")
    )
    if per_user.height == 0:
        return "no test user in common with the best row"
    return per_user["v"].to_numpy(), per_user["v_best"].to_numpy(), len(common)


def add_significance(
    board: Leaderboard, n_resamples: int = N_RESAMPLES, seed: int = SIGNIFICANCE_SEED
) -> None:
    """Test every row against the best row on per-user values of the primary metric (paired t-test, Wilcoxon
    and Fisher randomization, with a bootstrap CI of the mean difference; see ``paired_values`` for the
    pairing), then Holm–Bonferroni-correct each test's p-values across the rows of the board."""
    best = board.best
    for row in board.rows:
        row.test, row.p_ttest_holm, row.p_wilcoxon_holm, row.significance_note = None, math.nan, math.nan, ""
        row.p_permutation_holm, row.n_paired_seeds = math.nan, 0
    if best is None:
        for row in board.rows:
            row.significance_note = f"no best row ({board.primary} missing)"
        return
    cache = _PerUserCache()
    others = [r for r in board.rows if r is not best]
    for row in others:
        pairs = paired_values(row, best, board.primary, cache)
        if isinstance(pairs, str):
            row.significance_note = pairs
        else:
            x, y, row.n_paired_seeds = pairs
            row.test = paired_compare(x, y, n_resamples=n_resamples, level=CI_LEVEL, seed=seed)
    p_t = holm([r.test.p_ttest if r.test else math.nan for r in others])
    p_w = holm([r.test.p_wilcoxon if r.test else math.nan for r in others])
    p_p = holm([r.test.p_permutation if r.test else math.nan for r in others])
    for row, pt, pw, pp in zip(others, p_t, p_w, p_p, strict=True):
        row.p_ttest_holm, row.p_wilcoxon_holm, row.p_permutation_holm = float(pt), float(pw), float(pp)
