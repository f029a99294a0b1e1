"""Learning curves (recux.leaderboard.curves): from real runs at two training fractions and two seeds, every
point, CI, relative loss and paired comparison equals a plain recomputation from the runs' results.json and
per-user files (numpy/scipy); the leaderboard gains the section and its files only when such runs exist; the
script writes the same tables."""

from __future__ import annotations

import json
import math

import numpy as np
import polars as pl
import pytest
from scipy import stats

from recux.leaderboard import build_leaderboards, find_results, load_runs, render_files
from recux.leaderboard.curves import learning_curves
from recux.leaderboard.curves_render import curve_records
from recux.pipeline import run_experiment
from tests._compose import compose_cfg

FAST = ["dataset=synthetic", "dataset.n_users=120", "dataset.n_items=80", "logger=none", "metrics.ks=[5,10]",
        "eval.efficiency=false"]
MODELS, FRACTIONS, SEEDS = ("pop", "itemknn"), (0.25, 1.0), (0, 1)


@pytest.fixture(scope="module")
def runs_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("curves")
    for m in MODELS:
        for f in FRACTIONS:
            for s in SEEDS:
                overrides = [f"model={m}", f"data.train_fraction={f}", f"seed={s}"]
                run_experiment(compose_cfg([*FAST, *overrides]), root / f"{m}_{f}_{s}", overrides=overrides)
    return root


def _results(root, model, fraction):
    return [json.loads((root / f"{model}_{fraction}_{s}" / "results.json").read_text()) for s in SEEDS]


def _curve(root, metric="ndcg@10"):
    runs, _ = load_runs(find_results([root]))
    curves = learning_curves(build_leaderboards(runs, significance=False), n_resamples=2000)
    return next(c for c in curves if c.metric == metric)


def test_points_equal_a_plain_recomputation(runs_root):
    curve = _curve(runs_root)
    assert set(curve.lines) == set(MODELS) and curve.fractions == list(FRACTIONS)
    for m in MODELS:
        full = np.mean([r["metrics"]["ndcg@10"] for r in _results(runs_root, m, 1.0)])
        for f in FRACTIONS:
            values = [r["metrics"]["ndcg@10"] for r in _results(runs_root, m, f)]
            p = curve.lines[m][f]
            assert p.mean == pytest.approx(np.mean(values), abs=1e-12) and p.n == len(SEEDS)
            lo, hi = stats.t.interval(0.95, len(values) - 1, loc=np.mean(values), scale=stats.sem(values))
            assert (p.ci_low, p.ci_high) == (pytest.approx(lo, abs=1e-12), pytest.approx(hi, abs=1e-12))
            assert p.rel_loss == pytest.approx(1 - np.mean(values) / full, abs=1e-12)
    runs, _ = load_runs(find_results([runs_root / "pop_0.25_0", *(runs_root / f"pop_1.0_{s}" for s in SEEDS)]))
    one_seed = next(c for c in learning_curves(build_leaderboards(runs, significance=False), significance=False)
                    if c.metric == "ndcg@10").lines["pop"][0.25]
    seed0 = [r["metrics"]["ndcg@10"] for r in _results(runs_root, "pop", 0.25)[:1] + _results(runs_root, "pop", 1.0)[:1]]
    assert one_seed.rel_loss == pytest.approx(1 - seed0[0] / seed0[1], abs=1e-12)  # 100% over the same seed
    rec = {(r["variant"], r["train_fraction"]): r for r in curve_records([curve])}
    assert rec[("pop", 0.25)]["mean"] == curve.lines["pop"][0.25].mean


def _per_user_means(root, fraction):
    """Per user, the mean over seeds of itemknn's and pop's NDCG@10 (pairs joined within each seed)."""
    frames = []
    for s in SEEDS:
        a = pl.read_parquet(root / f"itemknn_{fraction}_{s}" / "per_user_metrics.parquet")
        b = pl.read_parquet(root / f"pop_{fraction}_{s}" / "per_user_metrics.parquet")
        frames.append(a.select("user_id", pl.col("ndcg@10").alias("a")).join(
            b.select("user_id", pl.col("ndcg@10").alias("b")), on="user_id"))
    both = pl.concat(frames).group_by("user_id").agg(pl.col("a").mean(), pl.col("b").mean()).sort("user_id")
    return both["a"].to_numpy(), both["b"].to_numpy()


def test_comparisons_equal_a_plain_paired_test(runs_root):
    curve = _curve(runs_root)
    assert sorted(c.fraction for c in curve.comparisons) == list(FRACTIONS)  # one pair per fraction
    for c in curve.comparisons:
        a, b = _per_user_means(runs_root, c.fraction)
        sign = 1.0 if (c.a, c.b) == ("itemknn", "pop") else -1.0
        assert {c.a, c.b} == set(MODELS) and c.n_seeds == len(SEEDS) and c.test.n == len(a)
        assert c.test.mean_diff == pytest.approx(sign * float(np.mean(a - b)), abs=1e-12)
        assert c.p_ttest_holm == pytest.approx(stats.ttest_rel(a, b).pvalue, rel=1e-9)  # one test: Holm = raw
        assert 0 < c.p_permutation_holm <= 1


def test_loss_comparisons_equal_a_plain_recomputation(runs_root):
    curve = _curve(runs_root)
    (c,) = curve.drop_comparisons  # one fraction below 1, one pair
    drops = {}
    for m in MODELS:  # per user: mean over seeds of (value at 100% - value at 25%) = mean(1.0) - mean(0.25)
        frames = []
        for s in SEEDS:
            f = pl.read_parquet(runs_root / f"{m}_0.25_{s}" / "per_user_metrics.parquet").select("user_id", "ndcg@10")
            one = pl.read_parquet(runs_root / f"{m}_1.0_{s}" / "per_user_metrics.parquet").select("user_id", "ndcg@10")
            frames.append(one.join(f, on="user_id").select("user_id", (pl.col("ndcg@10") - pl.col("ndcg@10_right"))
                                                           .alias("d")))
        drops[m] = pl.concat(frames).group_by("user_id").agg(pl.col("d").mean()).sort("user_id")["d"].to_numpy()
    a, b = drops[c.a], drops[c.b]
    assert c.test.n == len(a) and c.n_seeds == len(SEEDS)
    assert c.test.mean_diff == pytest.approx(float(np.mean(a - b)), abs=1e-12)
    assert c.p_ttest_holm == pytest.approx(stats.ttest_rel(a, b).pvalue, rel=1e-9)


def test_leaderboard_gets_the_section_only_with_several_fractions(runs_root, tmp_path):
    runs, _ = load_runs(find_results([runs_root]))
    boards = build_leaderboards(runs, significance=False)
    (d,) = render_files(boards, "test", plots=True)
    md = d.files[f"{d.stem}.md"].decode()
    assert "## Learning curves" in md
    assert f"{_curve(runs_root).lines['pop'][0.25].mean:.4f}" in md
    pngs = [n for n in d.files if "_curve_" in n]
    assert pngs and all(d.files[n].startswith(b"\x89PNG") for n in pngs)
    csv = pl.read_csv(d.files[f"{d.stem}_curves.csv"])
    assert csv.height == len(MODELS) * len(FRACTIONS)  # one metric: offline_ranking has no item groups
    full_only = [r for r in runs if "data" not in r.record.data_settings]  # the 100% runs only
    assert len(full_only) == len(MODELS) * len(SEEDS)
    (plain,) = render_files(build_leaderboards(full_only, significance=False), "test", plots=True)
    assert "Learning curves" not in plain.files[f"{plain.stem}.md"].decode()
    assert not [n for n in plain.files if "curve" in n]


def test_script_writes_the_tables(runs_root, tmp_path):
    from tests._scripts import load_script

    script = load_script("learning_curves")
    assert script.main([str(runs_root), "--out", str(tmp_path), "--no-plots"]) == 0
    md = next(tmp_path.glob("*_curves.md")).read_text()
    curve = _curve(runs_root)
    for m in MODELS:
        for f in FRACTIONS:
            assert f"{curve.lines[m][f].mean:.4f}" in md
    assert not math.isnan(curve.lines["pop"][0.25].rel_loss)
    assert script.main([str(tmp_path / "nothing"), "--out", str(tmp_path / "o")]) == 1
