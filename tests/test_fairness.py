"""User-group fairness: group means, gaps and ratios against a polars group-by, the unpaired tests against scipy,
Holm against a plain implementation, activity terciles and age bands against direct computations, and the run
settings (unknown group, fairness_k) refused with a clear message."""

from __future__ import annotations

import json
import math

import numpy as np
import polars as pl
import pytest
from scipy import stats

from recux import stages
from recux.errors import ConfigError
from recux.fairness import FairnessSettings, gap_tests
from recux.pipeline import run_experiment
from recux.unpaired import kruskal, mean_ci, welch
from recux.user_groups import AGE, Grouping, available_groups, check_groups, grouping, terciles
from tests._compose import compose_cfg

FAST = ["dataset=synthetic", "dataset.n_users=200", "dataset.n_items=90", "logger=none", "model=pop"]


def _plain_holm(p):
    """Holm (1979) step-down: sort ascending, adjusted_(i) = max_{j<=i} min(1, (m - j) p_(j))."""
    order = sorted(range(len(p)), key=lambda i: p[i])
    out, running = [0.0] * len(p), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p) - rank) * p[i]))
        out[i] = running
    return out


def _random_table(rng, n=400):
    labels = rng.choice(["a", "b", "c", "d"], size=n, p=[0.4, 0.3, 0.2, 0.1]).astype(object)
    shift = {"a": 0.0, "b": 0.1, "c": -0.15, "d": 0.05}
    hi = np.array([shift[x] for x in labels]) + rng.random(n)
    lo = rng.gamma(2.0, 1.0, n) - np.array([shift[x] for x in labels])
    hi[rng.random(n) < 0.05] = np.nan  # undefined for some users
    return pl.DataFrame({"user": np.arange(n), "hi@10": hi, "lo@10": lo}), Grouping("g", labels, ("a", "b", "c",
                                                                                              "d"), {})


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_group_means_gap_and_ratio_match_a_polars_group_by(seed):
    rng = np.random.default_rng(seed)
    table, g = _random_table(rng)
    directions = {"hi@10": True, "lo@10": False}
    tests = gap_tests(table, [g], ["hi@10", "lo@10"], directions)
    for t in tests:
        ref = (table.with_columns(pl.Series("g", g.labels.astype(str)), pl.col(t.metric).fill_nan(None))
               .group_by("g").agg(pl.col(t.metric).mean().alias("mean"), pl.col(t.metric).count().alias("n"))
               .sort("g"))
        got = {s.level: s for s in t.levels}
        for row in ref.iter_rows(named=True):
            assert got[row["g"]].n == row["n"]
            assert got[row["g"]].mean == pytest.approx(row["mean"], rel=1e-12)
        by_mean = ref.sort("mean", descending=directions[t.metric])
        best, worst = by_mean["g"][0], by_mean["g"][-1]
        assert (t.best, t.worst) == (best, worst)
        b, w = by_mean["mean"][0], by_mean["mean"][-1]
        assert t.gap == pytest.approx(abs(b - w)) and t.gap >= 0
        assert t.ratio == pytest.approx(min(b, w) / max(b, w)) and 0 <= t.ratio <= 1


def test_gap_tests_p_values_are_scipys_and_holm_is_the_plain_step_down():
    rng = np.random.default_rng(7)
    table, g = _random_table(rng)
    g2 = Grouping("h", rng.choice(["x", "y"], table.height).astype(object), ("x", "y"), {})
    tests = gap_tests(table, [g, g2], ["hi@10", "lo@10"], {"hi@10": True, "lo@10": False})
    for t in tests:
        labels = (g if t.group == "g" else g2).labels
        v = table[t.metric].to_numpy()
        parts = {lv: v[(labels == lv) & np.isfinite(v)] for lv in set(labels)}
        assert t.p_welch == pytest.approx(stats.ttest_ind(parts[t.best], parts[t.worst], equal_var=False).pvalue,
                                          rel=1e-9, abs=0)
        assert t.p_kruskal == pytest.approx(stats.kruskal(*parts.values()).pvalue, rel=1e-9, abs=0)
    for name in ("p_welch", "p_kruskal"):
        expect = _plain_holm([getattr(t, name) for t in tests])
        assert [getattr(t, f"{name}_holm") for t in tests] == pytest.approx(expect, rel=1e-12, abs=0)


@pytest.mark.parametrize("sizes", [(5, 7), (30, 200), (2, 2), (50, 3)])
def test_welch_matches_scipy_p_value_and_interval(sizes):
    rng = np.random.default_rng(sum(sizes))
    a, b = rng.normal(0.2, 1.0, sizes[0]), rng.normal(0.0, 3.0, sizes[1])
    ours = welch(a, b)
    ref = stats.ttest_ind(a, b, equal_var=False)
    lo, hi = ref.confidence_interval(0.95)
    assert (ours.p, ours.t, ours.df) == pytest.approx((ref.pvalue, ref.statistic, ref.df), rel=1e-9, abs=0)
    assert (ours.ci_low, ours.ci_high) == pytest.approx((lo, hi), rel=1e-9, abs=0)


def test_kruskal_matches_scipy_with_ties_and_mean_ci_matches_the_t_interval():
    rng = np.random.default_rng(3)
    groups = [rng.integers(0, 5, n).astype(float) for n in (10, 25, 4, 60)]  # many ties
    assert kruskal(groups) == pytest.approx(stats.kruskal(*groups).pvalue, rel=1e-9, abs=0)
    assert math.isnan(kruskal([groups[0]]))
    x = rng.normal(size=40)
    n, m, lo, hi = mean_ci(x)
    assert (n, m) == (40, pytest.approx(x.mean()))
    assert (lo, hi) == pytest.approx(stats.t.interval(0.95, 39, loc=x.mean(), scale=stats.sem(x)), rel=1e-12)


@pytest.mark.parametrize("values", [np.random.default_rng(0).integers(1, 300, 500),
                                    np.array([1, 1, 1, 2, 2, 2, 2, 3, 3, 9]), np.arange(10)])
def test_activity_terciles_are_cut_at_numpy_quantiles_with_ties_going_down(values):
    labels, (q1, q2) = terciles(values)
    e1, e2 = np.quantile(values, [1 / 3, 2 / 3])
    assert (q1, q2) == (e1, e2)
    expect = ["low" if v <= e1 else "mid" if v <= e2 else "high" for v in values]
    assert list(labels) == expect


def test_age_bands_and_activity_from_the_dataset():
    import scipy.sparse as sp

    ages = [7, 24, 25, 34, 35, 44, 45, 73, None]
    feats = pl.DataFrame({"user_id": range(9), "age": ages, "gender": list("MFMFMFMFM"),
                          "zip": [str(i) for i in range(9)]}, schema_overrides={"age": pl.Int32})
    train = sp.csr_matrix(np.triu(np.ones((9, 12)))[:, :12])
    users = np.array([8, 0, 3, 6])
    g = grouping(AGE, users, feats, train)
    ref = {None: "(missing)", 7: "<25", 34: "25-34", 45: "45+"}
    assert list(g.labels) == [ref[ages[u]] for u in users]
    act = grouping("activity", users, feats, train)
    assert list(act.labels) == list(terciles(np.diff(train.indptr)[users])[0])
    assert available_groups(feats) == ["gender", "zip", "age", "activity"]


def test_unknown_group_is_refused_naming_the_available_ones():
    feats = pl.DataFrame({"user_id": [1, 2], "favourite_genre": ["Drama", "Comedy"]})
    with pytest.raises(ConfigError, match=r"unknown user group\(s\) age.*available: favourite_genre, activity"):
        check_groups(["activity", "age"], feats)
    with pytest.raises(ConfigError, match="list of group names"):
        check_groups("gender", feats)


def test_a_run_refuses_an_unknown_group_before_fitting_and_a_fairness_k_outside_ks(tmp_path):
    with pytest.raises(ConfigError, match="available: favourite_genre, activity"):
        run_experiment(compose_cfg(FAST + ["metrics.groups=[gender]"]), tmp_path / "a")
    assert not (tmp_path / "a" / "results.json").exists()
    spec = stages.RunSpec.from_config(compose_cfg(FAST + ["metrics.groups=[activity]", "metrics.fairness_k=7"]))
    with pytest.raises(ConfigError, match=r"metrics.fairness_k=7 must be one of metrics.ks=\[5, 10, 20\]"):
        FairnessSettings.of(spec, stages.prepare_data(spec))


def test_a_run_records_gaps_and_ratios_that_match_its_per_user_file(tmp_path):
    """End to end: results.json's flat fairness values recomputed from per_user_metrics.parquet and the
    dataset's user features with a polars group-by."""
    rec = run_experiment(compose_cfg(FAST + ["metrics.groups=[favourite_genre,activity]"]), tmp_path / "r")
    saved = json.loads((tmp_path / "r" / "results.json").read_text())
    per_user = pl.read_parquet(tmp_path / "r" / "per_user_metrics.parquet")
    spec = stages.RunSpec.from_config(compose_cfg(FAST))
    data = stages.prepare_data(spec)
    feats = data.dataset.user_features.select(pl.col("user_id"), pl.col("favourite_genre"))
    joined = per_user.join(feats, on="user_id", how="left")
    assert saved["fairness"]["k"] == 10
    for metric in ("ndcg@10", "recall@10", "arp@10"):
        higher = saved["directions"][metric]
        means = joined.group_by("favourite_genre").agg(pl.col(metric).mean(), pl.len()).filter(pl.col("len") >= 2)
        best, worst = (means[metric].max(), means[metric].min()) if higher else (means[metric].min(),
                                                                                means[metric].max())
        key = f"fairness/favourite_genre/gap/{metric}"
        assert rec["metrics"][key] == pytest.approx(abs(best - worst), rel=1e-9, abs=0)
        assert saved["metrics"][key] == pytest.approx(abs(best - worst), rel=1e-9, abs=0)
        assert saved["directions"][key] is False
        assert saved["directions"][f"fairness/favourite_genre/ratio/{metric}"] is True
        assert f"fairness/activity/gap/{metric}" in saved["metrics"]
    assert "fairness/favourite_genre/gap/coverage@10" not in saved["metrics"]  # corpus-level: no per-user values
    assert not any(k.startswith("fairness/") and "@5" in k for k in saved["metrics"])  # only fairness_k
    table = saved["fairness"]["groups"]["activity"]["metrics"]["ndcg@10"]
    assert sum(lv["n"] for lv in table["levels"]) == saved["users"]["evaluated"]
