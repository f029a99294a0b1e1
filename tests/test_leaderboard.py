"""recux-leaderboard on synthetic run folders: aggregation over seeds, grouping, duplicates, paired significance
(one pair per user, averaged over shared seeds),
bolding, CSV round trip, missing per-user files, the no-results error and where W&B writes."""

from __future__ import annotations

import json
import math
import os
import re
import uuid

import numpy as np
import polars as pl
import pytest
from scipy import stats

from recux.cli.leaderboard import main
from recux.leaderboard import sanitize_filename
from recux.significance import bootstrap_ci, holm, permutation_test

DIRECTIONS = {"ndcg@10": True, "recall@10": True, "coverage@10": True, "arp@10": False}


def write_run(root, dataset="toy", protocol="random", label="pop", vhash="pop000000000", seed=0, metrics=None,
              per_user=None, created="2026-11-28T02:00:00+00:00", status="ok", timing=None, finetune="scratch",
              config=None):  # fmt: skip
    """A (schema-1) run folder as the runner wrote it; per_user maps user_id -> ndcg@10 (None: no per-user
    file); with ``config`` the record's data and variant hashes are derived from it."""
    folder = root / dataset.replace("/", "_") / protocol / f"{vhash}-{seed}-{uuid.uuid4().hex[:8]}"
    folder.mkdir(parents=True)
    if per_user is not None:
        users = list(per_user)
        pl.DataFrame({"user_id": users, "ndcg@10": [float(per_user[u]) for u in users]}).write_parquet(
            folder / "per_user_metrics.parquet"
        )
    res = {
        "schema": 1, "run_id": f"{vhash}-{seed}-{created}", "created": created, "status": status, "label": label,
        "variant_hash": vhash, "config_hash": f"{vhash}{seed}", "seed": seed,
        "dataset": {"name": dataset, "n_users": 10, "n_items": 10}, "protocol": protocol,
        "finetune": {"name": finetune}, "metrics": metrics or {}, "directions": DIRECTIONS,
        "timing": timing or {"fit_seconds": 1.0, "seconds_per_epoch": None},
        "files": {"per_user_metrics": "per_user_metrics.parquet"},
    }  # fmt: skip
    if config is not None:
        res["config"] = config
    (folder / "results.json").write_text(json.dumps(res))
    return folder


def run_cli(tmp_path, *args, roots=("runs",)):
    out = tmp_path / "lb"
    old = os.getcwd()
    os.chdir(tmp_path)
    try:
        code = main([*roots, "--out", str(out), "--no-wandb", "--no-plots", *args])
    finally:
        os.chdir(old)
    return code, out


def table_rows(md: str, protocol: str | None = None) -> list[list[str]]:
    """Data rows of the (first, or the given protocol's) Markdown table as lists of cells."""
    if protocol is not None:
        md = md.split(f"protocol `{protocol}`", 1)[1]
    lines = [ln for ln in md.splitlines() if ln.startswith("| ")]
    header, rows = lines[0], []
    for ln in lines[1:]:
        if ln.startswith("| #"):
            break
        rows.append([c.strip() for c in ln.strip("|").split(" | ")])
    return [[c.strip() for c in header.strip("|").split(" | ")], *rows]


def test_aggregates_equal_numpy_over_seeds_and_csv_round_trips(tmp_path):
    rng = np.random.default_rng(0)
    expected = {}
    for label, base in (("pop", 0.1), ("itemknn", 0.3), ("bpr", 0.2)):
        vals = {m: rng.uniform(0, 1, 3) + base for m in ("ndcg@10", "recall@10", "arp@10")}
        fit = rng.uniform(1, 5, 3)
        for seed in range(3):
            write_run(tmp_path / "runs", label=label, vhash=f"{label:0<12}", seed=seed,
                      metrics={m: float(v[seed]) for m, v in vals.items()},
                      timing={"fit_seconds": float(fit[seed]), "seconds_per_epoch": None})  # fmt: skip
        expected[label] = (vals, fit)
    code, out = run_cli(tmp_path)
    assert code == 0
    df = pl.read_csv(out / "toy.csv")
    assert df["variant"].to_list() == sorted(expected, key=lambda k: -expected[k][0]["ndcg@10"].mean())
    for row in df.iter_rows(named=True):
        vals, fit = expected[row["variant"]]
        for m, v in vals.items():
            assert row[f"{m}_mean"] == pytest.approx(np.mean(v), rel=1e-12)
            assert row[f"{m}_std"] == pytest.approx(np.std(v, ddof=1), rel=1e-12)
            assert row[f"{m}_n"] == 3
        assert row["fit_seconds_mean"] == pytest.approx(fit.mean(), rel=1e-12)
        assert row["n_seeds"] == 3 and row["seeds"] == "0;1;2"
        assert row["seconds_per_epoch_mean"] is None
    # a lower-is-better primary metric sorts ascending
    code, out = run_cli(tmp_path, "--metric", "arp@10")
    df = pl.read_csv(out / "toy.csv")
    assert df["variant"].to_list() == sorted(expected, key=lambda k: expected[k][0]["arp@10"].mean())


def test_groups_by_dataset_and_protocol_with_safe_file_names(tmp_path):
    for ds in ("ml-100k", "weird/name: x"):
        for proto, n_variants in (("random", 2), ("temporal", 3)):
            for v in range(n_variants):
                write_run(tmp_path / "runs", dataset=ds, protocol=proto, label=f"m{v}", vhash=f"h{v:011d}",
                          metrics={"ndcg@10": 0.1 * v})  # fmt: skip
    code, out = run_cli(tmp_path)
    assert code == 0
    assert sanitize_filename("weird/name: x") == "weird_name_x"
    assert sorted(p.name for p in out.iterdir()) == [
        "ml-100k.csv",
        "ml-100k.manifest.json",
        "ml-100k.md",
        "weird_name_x.csv",
        "weird_name_x.manifest.json",
        "weird_name_x.md",
    ]
    for stem, ds in (("ml-100k", "ml-100k"), ("weird_name_x", "weird/name: x")):
        df = pl.read_csv(out / f"{stem}.csv")
        assert set(df["dataset"]) == {ds}
        assert df.group_by("protocol").len().sort("protocol").rows() == [("random", 2), ("temporal", 3)]
        md = (out / f"{stem}.md").read_text()
        assert len(table_rows(md, "random")) == 1 + 2 and len(table_rows(md, "temporal")) == 1 + 3
        assert md.count("## ") == 2


def test_duplicate_runs_keep_the_newest_and_say_so(tmp_path):
    old = write_run(tmp_path / "runs", seed=0, metrics={"ndcg@10": 0.9}, created="2026-11-01T10:00:00+00:00")
    write_run(tmp_path / "runs", seed=0, metrics={"ndcg@10": 0.2}, created="2026-11-02T10:00:00+00:00")
    write_run(tmp_path / "runs", seed=1, metrics={"ndcg@10": 0.4})
    code, out = run_cli(tmp_path)
    assert code == 0
    row = pl.read_csv(out / "toy.csv").row(0, named=True)
    assert row["ndcg@10_n"] == 2 and row["n_seeds"] == 2
    assert row["ndcg@10_mean"] == pytest.approx(0.3)
    md = (out / "toy.md").read_text()
    assert "kept the newest" in md and str((old / "results.json").relative_to(tmp_path)) in md


def _per_user(rng, users, base):
    return {u: float(np.clip(base + rng.normal(0, 0.2), 0, 1)) for u in users}


def _user_means(per_user, label, best, seeds):
    """Pairs (label, best) per user, each side averaged over the given seeds where the user has a non-NaN
    value in both; users sorted by id. Plain dict loops, independent of the leaderboard's polars code."""
    sums: dict[str, list[float]] = {}
    for s in seeds:
        for u, v in per_user[label, s].items():
            w = per_user[best, s].get(u)
            if w is None or math.isnan(v) or math.isnan(w):
                continue
            acc = sums.setdefault(u, [0.0, 0.0, 0])
            acc[0], acc[1], acc[2] = acc[0] + v, acc[1] + w, acc[2] + 1
    users = sorted(sums)
    return [sums[u][0] / sums[u][2] for u in users], [sums[u][1] / sums[u][2] for u in users]


def test_significance_pairs_each_user_on_its_mean_over_shared_seeds_with_holm(tmp_path):
    rng = np.random.default_rng(7)
    users = [f"u{i}" for i in range(60)]
    per_user = {}  # (label, seed) -> {user: value}
    for label, base, seeds in (("best", 0.5, (0, 1)), ("near", 0.48, (0, 1, 2)), ("far", 0.3, (1,))):
        for seed in seeds:
            pu = _per_user(rng, users, base)
            if (label, seed) in (("near", 0), ("best", 1)):
                pu.pop("u5")  # u5 has a pair in no seed for near; for far (seed 1 only) no pair at all
            if (label, seed) == ("near", 1):
                pu.pop("u7")  # u7 is averaged over seed 0 only
                pu["u8"] = math.nan  # a NaN value counts as missing
            shuffled = dict(sorted(pu.items(), key=lambda kv: rng.random()))  # files need not share row order
            per_user[label, seed] = pu
            write_run(tmp_path / "runs", label=label, vhash=f"{label:0<12}", seed=seed, per_user=shuffled,
                      metrics={"ndcg@10": base})  # fmt: skip
    code, out = run_cli(tmp_path)
    assert code == 0
    df = pl.read_csv(out / "toy.csv")
    assert df["variant"].to_list() == ["best", "near", "far"]
    raw, md_rows = {}, {r[1]: r for r in table_rows((out / "toy.md").read_text())[1:]}
    for label, seeds in (("near", (0, 1)), ("far", (1,))):  # only seeds both variants have
        x, y = _user_means(per_user, label, "best", seeds)
        row = df.filter(pl.col("variant") == label).row(0, named=True)
        assert row["n_pairs"] == len(x) == 59  # one pair per user, not per (seed, user)
        assert row["n_paired_seeds"] == len(seeds)
        d = np.subtract(x, y)
        assert row["mean_diff_vs_best"] == pytest.approx(d.mean(), rel=1e-12)
        assert row["p_ttest"] == pytest.approx(stats.ttest_rel(x, y).pvalue, rel=1e-9)
        assert row["p_wilcoxon"] == pytest.approx(stats.wilcoxon(x, y, zero_method="wilcox").pvalue, rel=1e-9)
        # the resampling estimators (checked against scipy in test_significance) get these pairs, seed 0
        assert row["p_permutation"] == pytest.approx(permutation_test(x, y, seed=0), rel=1e-12)
        lo, hi = bootstrap_ci(d, level=0.95, seed=0)
        assert (row["diff_ci_low"], row["diff_ci_high"]) == pytest.approx((lo, hi), rel=1e-12)
        assert md_rows[label][-2] == f"{d.mean():+.4f} [{lo:+.4f}, {hi:+.4f}]"
        raw[label] = [row[f"p_{t}"] for t in ("ttest", "wilcoxon", "permutation")]
        raw[label] += [row[f"p_{t}_holm"] for t in ("ttest", "wilcoxon", "permutation")]
    for k in (0, 1, 2):
        adj = holm([raw["near"][k], raw["far"][k]])
        assert [raw["near"][k + 3], raw["far"][k + 3]] == pytest.approx(list(adj), rel=1e-12)
    best_row = df.filter(pl.col("variant") == "best").row(0, named=True)
    assert best_row["is_best"] and best_row["p_ttest"] is None and best_row["diff_ci_low"] is None
    # Markdown: † ‡ § exactly where the Holm-adjusted t / Wilcoxon / permutation p-value is >= 0.05
    for label in ("near", "far"):
        for mark, p_holm in zip("†‡§", raw[label][3:], strict=True):
            assert (mark in md_rows[label][2]) == (p_holm >= 0.05)
        assert md_rows[label][-1] == " / ".join(f"{p:.3g}" for p in raw[label][3:])
    assert md_rows["best"][-2:] == ["—", "best"]
    again = run_cli(tmp_path)[1]  # seeded resampling: the same table twice
    assert (
        pl.read_csv(again / "toy.csv")
        .drop(pl.selectors.contains("seconds"))
        .equals(df.drop(pl.selectors.contains("seconds")))
    )


def test_repeating_a_seed_does_not_shrink_p_values(tmp_path):
    """Three seeds with the same per-user values carry no more evidence than one: pooling (seed, user) pairs
    would treat them as 3x the users and shrink every p-value; the per-user mean leaves them unchanged."""
    rng = np.random.default_rng(9)
    users = [f"u{i}" for i in range(80)]
    a = _per_user(rng, users, 0.5)
    b = {u: v - 0.08 + rng.normal(0, 0.15) for u, v in a.items()}
    pvals = {}
    for n_seeds in (1, 3):
        root = tmp_path / f"s{n_seeds}"
        for seed in range(n_seeds):
            write_run(
                root / "runs", label="a", vhash="a" * 12, seed=seed, per_user=a, metrics={"ndcg@10": 0.5}
            )
            write_run(
                root / "runs", label="b", vhash="b" * 12, seed=seed, per_user=b, metrics={"ndcg@10": 0.4}
            )
        code, out = run_cli(root)
        assert code == 0
        row = pl.read_csv(out / "toy.csv").filter(pl.col("variant") == "b").row(0, named=True)
        pvals[n_seeds] = [
            row[k] for k in ("n_pairs", "p_ttest", "p_wilcoxon", "p_permutation", "diff_ci_low")
        ]
    assert pvals[3] == pytest.approx(pvals[1], rel=1e-12)
    pooled = stats.ttest_rel(list(b.values()) * 3, list(a.values()) * 3).pvalue
    assert pvals[1][1] > 1e-3 and pooled < pvals[1][1] / 100  # what the old pooling reported on the same data


def test_missing_per_user_file_gives_na_not_a_crash(tmp_path):
    rng = np.random.default_rng(8)
    users = [f"u{i}" for i in range(20)]
    write_run(tmp_path / "runs", label="a", vhash="a" * 12, per_user=_per_user(rng, users, 0.5),
              metrics={"ndcg@10": 0.5})  # fmt: skip
    write_run(tmp_path / "runs", label="b", vhash="b" * 12, per_user=None, metrics={"ndcg@10": 0.4})
    write_run(tmp_path / "runs", label="c", vhash="c" * 12, per_user=_per_user(rng, users, 0.3),
              metrics={"ndcg@10": 0.3})  # fmt: skip
    code, out = run_cli(tmp_path)
    assert code == 0
    df = pl.read_csv(out / "toy.csv")
    b = df.filter(pl.col("variant") == "b").row(0, named=True)
    c = df.filter(pl.col("variant") == "c").row(0, named=True)
    assert b["p_ttest"] is None and b["p_ttest_holm"] is None and "missing" in b["significance_note"]
    assert c["p_ttest"] is not None and c["p_ttest_holm"] == pytest.approx(c["p_ttest"])  # only one test
    rows = {r[1]: r for r in table_rows((out / "toy.md").read_text())[1:]}
    assert rows["b"][-2:] == ["n/a", "n/a / n/a / n/a"] and "†" not in rows["b"][2]
    assert "significance n/a" in (out / "toy.md").read_text()


def test_best_value_of_each_column_is_bold_and_single_seed_std_is_dash(tmp_path):
    metrics = {
        "x": {"ndcg@10": 0.30, "recall@10": 0.10, "arp@10": 50.0, "coverage@10": 0.2},
        "y": {"ndcg@10": 0.20, "recall@10": 0.40, "arp@10": 20.0, "coverage@10": 0.1},
        "z": {"ndcg@10": 0.10, "recall@10": 0.20, "arp@10": 90.0, "coverage@10": 0.2},
    }
    for label, m in metrics.items():
        write_run(tmp_path / "runs", label=label, vhash=f"{label:0<12}", metrics=m,
                  timing={"fit_seconds": {"x": 3.0, "y": 2.0, "z": 1.0}[label], "seconds_per_epoch": None})  # fmt: skip
    code, out = run_cli(tmp_path)
    assert code == 0
    header, *rows = table_rows((out / "toy.md").read_text())
    assert [r[1] for r in rows] == ["x", "y", "z"]
    for col in ("ndcg@10", "recall@10", "coverage@10", "arp@10"):
        j = next(i for i, h in enumerate(header) if h.startswith(col + " "))
        values = {r[1]: metrics[r[1]][col] for r in rows}
        target = (min if col == "arp@10" else max)(values.values())
        for r in rows:
            assert r[j].startswith("**") == (values[r[1]] == target), (col, r)
            assert "± —" in r[j]  # one seed: no standard deviation
    j = header.index("fit s")
    assert [r[j].startswith("**") for r in rows] == [False, False, True]
    assert pl.read_csv(out / "toy.csv")["ndcg@10_std"].is_null().all()


def test_no_results_exits_2_naming_roots_and_how_to_make_runs(tmp_path, capsys):
    code, out = run_cli(tmp_path, roots=())
    assert code == 2
    err = capsys.readouterr().err
    assert str(tmp_path / "outputs") in err and str(tmp_path / "multirun") in err
    assert "recux -m model=" in err
    assert not out.exists()


def test_bad_and_failed_runs_are_skipped_with_a_warning(tmp_path, caplog):
    bad = tmp_path / "runs" / "broken"
    bad.mkdir(parents=True)
    (bad / "results.json").write_text("{not json")
    write_run(tmp_path / "runs", label="failed", vhash="f" * 12, status="failed", metrics={"ndcg@10": 1.0})
    code, _ = run_cli(tmp_path)
    assert code == 2
    assert os.path.join("runs", "broken", "results.json") in caplog.text and "'failed'" in caplog.text
    write_run(tmp_path / "runs", label="ok", vhash="o" * 12, metrics={"ndcg@10": 0.5})
    code, out = run_cli(tmp_path)
    assert code == 0
    assert pl.read_csv(out / "toy.csv")["variant"].to_list() == ["ok"]


def test_plots_are_pngs(tmp_path):
    for v in range(2):
        for seed in range(2):
            write_run(tmp_path / "runs", label=f"m{v}", vhash=f"h{v:011d}", seed=seed,
                      metrics={"ndcg@10": 0.1 * v + 0.01 * seed, "arp@10": 10.0 * v})  # fmt: skip
    out = tmp_path / "lb"
    assert main([str(tmp_path / "runs"), "--out", str(out), "--no-wandb"]) == 0
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert pngs == ["toy_ndcg@10.png", "toy_ndcg@10_vs_arp@10.png"]
    assert all((out / p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


def test_wandb_table_run_stays_in_output_folder(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("WANDB_MODE", "offline")
    for var in ("XDG_CACHE_HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "WANDB_DIR", "WANDB_CACHE_DIR",
                "WANDB_DATA_DIR", "WANDB_CONFIG_DIR", "WANDB_ARTIFACT_DIR"):  # fmt: skip
        monkeypatch.delenv(var, raising=False)
    write_run(tmp_path / "runs", label="a", vhash="a" * 12, metrics={"ndcg@10": 0.5})
    write_run(tmp_path / "runs", label="b", vhash="b" * 12, metrics={"ndcg@10": 0.4})
    out = tmp_path / "lb"
    assert main([str(tmp_path / "runs"), "--out", str(out), "--no-plots"]) == 0
    assert list(home.rglob("*")) == []
    runs = list((out / ".wandb").rglob("run-*.wandb"))
    assert len(runs) == 1
    tables = list(runs[0].parent.rglob("*.table.json"))
    assert len(tables) == 1
    logged = json.loads(tables[0].read_text())
    assert [r[logged["columns"].index("variant")] for r in logged["data"]] == ["a", "b"]
    assert "WANDB_DIR" not in os.environ  # restored after the run
    assert re.search(r"offline-run-", str(runs[0]))
    assert math.isclose(pl.read_csv(out / "toy.csv")["ndcg@10_mean"][0], 0.5)


def _synthetic_config(n_users: int, model: str, seed: int) -> dict:
    return {"dataset": {"name": "synthetic", "n_users": n_users, "n_items": 300, "seed": 0},
            "preprocess": {"_target_": "recux.preprocess.Preprocess", "rating_threshold": None},
            "split": {"_target_": "recux.splitting.RandomSplit", "ratios": [0.8, 0.1, 0.1]},
            "model": {"name": model}, "finetune": {"name": "scratch"}, "seed": seed,
            "eval": {"exclude_valid": True}}  # fmt: skip


def test_runs_on_different_data_get_separate_sections_and_are_never_paired(tmp_path):
    """Two synthetic worlds (300 and 600 users) with the same models and seed: one section each, listing its
    data settings; each row is tested only against the best row of its own world (its users, its count)."""
    rng = np.random.default_rng(0)
    users_of = {300: [f"u{i}" for i in range(10)], 600: [f"u{i}" for i in range(25)]}
    for n_users, users in users_of.items():
        for model, base in (("pop", 0.2), ("ease", 0.3)):
            write_run(tmp_path / "runs", dataset="synthetic", protocol="random_80_10_10", label=model,
                      vhash=f"old{model}{n_users}", seed=0, metrics={"ndcg@10": base + n_users / 1e4},
                      per_user={u: base + rng.normal(0, 0.05) for u in users},
                      config=_synthetic_config(n_users, model, 0))  # fmt: skip
    code, out = run_cli(tmp_path)
    assert code == 0
    df = pl.read_csv(out / "synthetic.csv")
    assert df["data_hash"].n_unique() == 2 and df.height == 4
    # schema-1 variant hashes are re-derived from the config: the same model has one hash across worlds
    assert df.group_by("label").agg(pl.col("variant_hash").n_unique())["variant_hash"].to_list() == [1, 1]
    for _dhash, section in df.group_by("data_hash"):
        assert sorted(section["label"]) == ["ease", "pop"]
        n_users = round((section["ndcg@10_mean"].min() - 0.2) * 1e4)  # pop's value encodes its world
        assert section.filter(pl.col("label") == "ease")["ndcg@10_mean"].item() == pytest.approx(0.3 + n_users / 1e4)
        assert section.filter(~pl.col("is_best"))["n_pairs"].to_list() == [len(users_of[n_users])]
    md = (out / "synthetic.md").read_text()
    headings = [ln for ln in md.splitlines() if ln.startswith("## ")]
    assert len(headings) == 2 and len(set(headings)) == 2
    assert all(h.startswith("## synthetic — protocol `random_80_10_10` — data `") for h in headings)
    first, second = md.split("\n## ")[1:]
    assert ("n_users=300" in first) != ("n_users=300" in second)
    assert ("n_users=600" in first) != ("n_users=600" in second)
    assert "eval: exclude_valid=true" in first


def test_tradeoff_plot_follows_the_primary_metric(tmp_path):
    for v in range(2):
        write_run(tmp_path / "runs", label=f"m{v}", vhash=f"h{v:011d}",
                  metrics={"ndcg@10": 0.1 * v, "arp@10": 10.0 * v, "recall@20": 0.2 * v, "arp@20": 5.0 * v})
    out = tmp_path / "lb"
    assert main([str(tmp_path / "runs"), "--out", str(out), "--no-wandb", "--metric", "recall@20"]) == 0
    assert sorted(p.name for p in out.glob("*.png")) == ["toy_recall@20.png", "toy_recall@20_vs_arp@20.png"]


def test_trainable_parameters_column_appears_only_where_models_report_them(tmp_path):
    """Text models report model.describe.params.trainable: the section gets a column with each row's value (the
    same for every seed), "—" for models that report none; a section without such models has no column."""
    for seed in (0, 1):
        folder = write_run(tmp_path / "runs", label="lm+lora", vhash="lm0000000000", seed=seed,
                           metrics={"ndcg@10": 0.2 + seed / 100})
        rec = json.loads((folder / "results.json").read_text())
        rec["model"] = {"name": "lm", "describe": {"params": {"trainable": 309376, "total": 23022592}}}
        (folder / "results.json").write_text(json.dumps(rec))
        write_run(tmp_path / "runs", seed=seed, metrics={"ndcg@10": 0.1})
    write_run(tmp_path / "runs", dataset="other", metrics={"ndcg@10": 0.1})
    code, out = run_cli(tmp_path)
    assert code == 0
    md = (out / "toy.md").read_text()
    header = next(line for line in md.splitlines() if line.startswith("| # |"))
    cols = [c.strip() for c in header.split("|")]
    at = cols.index("trainable params")
    rows = {line.split("|")[2].strip(): line.split("|")[at].strip()
            for line in md.splitlines() if line.startswith("| 1 ") or line.startswith("| 2 ")}
    assert rows["lm+lora"] == f"{309376:,}" and rows["pop"] == "—"
    assert "trainable params" not in (out / "other.md").read_text()
