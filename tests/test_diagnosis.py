"""UX diagnosis: ``recux-diagnose`` on real tiny runs (its worst segment and its numbers against a direct computation
from the run's files with polars and scipy), the baseline comparison (same data only), the in-run report
(metrics.diagnose) and bad input (exit code 2 with a message)."""

from __future__ import annotations

import re

import numpy as np
import polars as pl
import pytest
from scipy import stats

from recux.cli.diagnose import main as diagnose_main
from recux.diagnosis import diagnose
from recux.diagnosis_report import load_run, rebuild_data
from recux.pipeline import run_experiment
from tests._compose import compose_cfg

FAST = ["dataset=synthetic", "dataset.n_users=400", "dataset.n_items=120", "logger=none"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("diag")
    run_experiment(compose_cfg(FAST + ["model=itemknn", "metrics.diagnose=[ndcg@10,recall@10]"]), root / "knn")
    run_experiment(compose_cfg(FAST + ["model=pop"]), root / "pop")
    run_experiment(compose_cfg(FAST + ["model=pop", "dataset.seed=5"]), root / "other")
    return root


def _holm(p):
    order = np.argsort(p, kind="stable")
    out, running = np.empty(len(p)), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p) - rank) * p[i]))
        out[i] = running
    return out


def _terciles(x):
    q1, q2 = np.quantile(x, [1 / 3, 2 / 3])
    return np.array(["low" if v <= q1 else "mid" if v <= q2 else "high" for v in x])


def _direct_segments(run_dir, metric):
    """Every segment's (name, n, gap, Welch p) from the run's own files: per-user values, the saved split (history
    lengths, training popularity) and the synthetic world's user features."""
    per_user = pl.read_parquet(run_dir / "per_user_metrics.parquet")
    train = pl.read_parquet(run_dir / "split" / "train.parquet")
    test = pl.read_parquet(run_dir / "split" / "test.parquet")
    hist = train.group_by("user_id").len("hist")
    pop = train.group_by("item_id").agg(pl.col("user_id").n_unique().alias("pop"))
    test_pop = test.join(pop, on="item_id", how="left").fill_null(0).group_by("user_id").agg(pl.col("pop").mean())
    data = rebuild_data(load_run(run_dir))
    feats = data.dataset.user_features
    t = (per_user.join(hist, on="user_id", how="left").join(test_pop, on="user_id", how="left")
         .join(feats, on="user_id", how="left").with_columns(pl.col("hist").fill_null(0)))
    families = {"favourite_genre": t["favourite_genre"].to_numpy().astype(str),
                "activity": _terciles(t["hist"].to_numpy()), "test_popularity": _terciles(t["pop"].to_numpy())}
    v = t[metric].to_numpy()
    out = []
    for fam, labels in families.items():
        for lv in np.unique(labels):
            inside = labels == lv
            p = stats.ttest_ind(v[inside], v[~inside], equal_var=False).pvalue
            out.append((f"{fam}={lv}", int(inside.sum()), v[inside].mean() - v.mean(), p))
    return out, v.mean()


def _listed(md: str) -> list[str]:
    section = md.split("## Worst-served segments", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^(?:\d+\.|-) \*\*(.+?)\*\* \((\S+), n = (\d+)\): .*? gap ([-+]\d\.\d{4}) .*"
                      r"p = (\S+), Holm p = (\S+)$", section, re.M)


def test_cli_worst_segment_matches_a_direct_computation(runs, tmp_path, capsys):
    out = tmp_path / "report"
    assert diagnose_main([str(runs / "knn"), "--out", str(out), "--no-wandb"]) == 0
    md = (out / "diagnosis.md").read_text()
    assert (out / "diagnosis_ndcg_at_10.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    segs, overall = _direct_segments(runs / "knn", "ndcg@10")
    holm = _holm(np.array([s[3] for s in segs]))
    shortfall = [-s[2] / overall for s in segs]
    significant = [i for i in range(len(segs)) if holm[i] <= 0.05 and shortfall[i] > 0]
    assert significant, "the fixture should give at least one significant shortfall"
    expect = sorted(significant, key=lambda i: -shortfall[i])
    listed = _listed(md)
    assert [x[0] for x in listed] == [segs[i][0] for i in expect]
    for (_, metric, n, gap, p, p_holm), i in zip(listed, expect, strict=True):
        assert (metric, int(n), float(gap)) == ("ndcg@10", segs[i][1], pytest.approx(segs[i][2], abs=5e-5))
        assert (float(p), float(p_holm)) == pytest.approx((segs[i][3], holm[i]), rel=0.06, abs=0)  # 2 digits printed
    assert f"1. {segs[expect[0]][0]}" in capsys.readouterr().out


def test_baseline_on_the_same_data_gives_paired_differences(runs):
    folder, base = load_run(runs / "knn"), load_run(runs / "pop")
    diag = diagnose(folder.per_user, rebuild_data(folder), ["ndcg@10"], folder.record.directions,
                    baseline=base.per_user, n_resamples=200)
    paired = folder.per_user.join(base.per_user, on="user_id", suffix="_b")
    feats = rebuild_data(base).dataset.user_features
    paired = paired.join(feats, on="user_id")
    row = next(r for r in diag.rows if r.family == "favourite_genre")
    sub = paired.filter(pl.col("favourite_genre") == row.level)
    d = sub["ndcg@10"].to_numpy() - sub["ndcg@10_b"].to_numpy()
    assert row.baseline.n == sub.height
    assert row.baseline.diff == pytest.approx(d.mean(), rel=1e-12)
    assert row.baseline.p == pytest.approx(stats.ttest_rel(sub["ndcg@10"], sub["ndcg@10_b"]).pvalue, rel=1e-9, abs=0)
    all_d = paired["ndcg@10"].to_numpy() - paired["ndcg@10_b"].to_numpy()
    assert diag.overall_baseline["ndcg@10"].diff == pytest.approx(all_d.mean(), rel=1e-12)


def test_cli_with_baseline_writes_the_comparison_and_refuses_other_data(runs, tmp_path, capsys):
    assert diagnose_main([str(runs / "knn"), "--baseline", str(runs / "pop"), "--out", str(tmp_path / "a"),
                          "--no-wandb"]) == 0
    assert "vs baseline Δ" in (tmp_path / "a" / "diagnosis.md").read_text()
    assert diagnose_main([str(runs / "knn"), "--baseline", str(runs / "other"), "--out", str(tmp_path / "b"),
                          "--no-wandb"]) == 2
    err = capsys.readouterr().err
    assert "ran on other data" in err and "data hash" in err
    assert not (tmp_path / "b" / "diagnosis.md").exists()


def test_in_run_report_is_the_cli_report(runs, tmp_path):
    """metrics.diagnose=[ndcg@10,recall@10] wrote diagnosis.md at the end of the run; the CLI on the finished
    folder writes the same file."""
    in_run = (runs / "knn" / "diagnosis.md").read_text()
    assert (runs / "knn" / "diagnosis_recall_at_10.png").is_file()
    assert diagnose_main([str(runs / "knn"), "--metric", "ndcg@10", "--metric", "recall@10", "--out",
                          str(tmp_path), "--no-wandb"]) == 0
    assert (tmp_path / "diagnosis.md").read_text() == in_run
    assert not (runs / "pop" / "diagnosis.md").exists()  # off by default


@pytest.mark.parametrize("args, message", [
    (["{runs}/nowhere"], "no such folder"),
    (["{runs}/knn", "--metric", "ndcg@11"], "choose from"),
    (["{runs}/knn", "--metric", "coverage@10"], "have no per-user values"),
])
def test_bad_input_exits_2_with_a_message(runs, tmp_path, capsys, args, message):
    argv = [a.format(runs=runs) for a in args] + ["--out", str(tmp_path), "--no-wandb"]
    assert diagnose_main(argv) == 2
    assert message in capsys.readouterr().err


def test_cold_start_run_gets_item_segments_paired_with_the_users_overall_value(tmp_path):
    run_experiment(compose_cfg(FAST + ["experiment=cold_start", "model=random"]), tmp_path / "cold")
    folder = load_run(tmp_path / "cold")
    diag = diagnose(folder.per_user, rebuild_data(folder), ["ndcg@10"], folder.record.directions)
    rows = {r.level: r for r in diag.rows if r.family == "items"}
    assert set(rows) == {"cold", "cold_in_catalogue", "warm"}
    t = folder.per_user.select("ndcg@10", "warm/ndcg@10").drop_nulls().drop_nans()
    d = t["warm/ndcg@10"].to_numpy() - t["ndcg@10"].to_numpy()
    assert (rows["warm"].n, rows["warm"].gap) == (t.height, pytest.approx(d.mean(), rel=1e-12))
    assert rows["warm"].p == pytest.approx(stats.ttest_rel(t["warm/ndcg@10"], t["ndcg@10"]).pvalue, rel=1e-9, abs=0)


def test_in_run_diagnosis_logs_its_segment_table_to_wandb(recorder, tmp_path):
    """With logger=wandb the segment table goes to the run's W&B run (a recording stand-in for the wandb
    module, as in test_wandb_logging), one row per segment row of diagnosis.md."""
    from recux.diagnosis_render import TABLE_COLUMNS
    run_experiment(compose_cfg(FAST[:-1] + ["logger=wandb", "model=pop", "metrics.diagnose=true"]), tmp_path / "r")
    (wb,) = recorder.runs
    (logged,) = [x["diagnosis/segments"] for x in wb.logged if "diagnosis/segments" in x]
    assert logged.columns == TABLE_COLUMNS
    md_rows = [ln for ln in (tmp_path / "r" / "diagnosis.md").read_text().splitlines()
               if ln.startswith("| ") and "=" in ln.split("|")[1]]
    assert [f"{r[1]}={r[2]}" for r in logged.data] == [ln.split("|")[1].strip() for ln in md_rows]
    assert all(v is None or v == v for row in logged.data for v in row)  # NaN cells sent as None


@pytest.mark.parametrize("value", ["[bogus@10]", "[ndcg@7]", "maybe"])
def test_a_bad_diagnose_setting_is_refused_before_the_run(tmp_path, value):
    from recux.errors import ConfigError

    with pytest.raises(ConfigError, match=r"metrics.diagnose=.* must be true, false or a list"):
        run_experiment(compose_cfg(FAST + ["model=pop", f"metrics.diagnose={value}"]), tmp_path / "r")
    assert not (tmp_path / "r" / "results.json").exists()
