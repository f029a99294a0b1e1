"""recux-rescore: metrics added from a run's saved lists equal what a run computing them from the start
records; a run whose lists no longer reproduce its metrics is refused and nothing is written; the original
folder is never changed."""

from __future__ import annotations

import json

import polars as pl
import pytest
import yaml

from recux.cli.rescore import main
from recux.pipeline import run_experiment
from tests._compose import compose_cfg

WORLD = ["dataset=synthetic", "dataset.n_users=120", "dataset.n_items=80", "logger=none", "model=itemknn"]
EXTRA = [{"name": "aplt"}, {"name": "pop_lift"}, {"name": "personalisation"}]


def _metric_file(tmp_path):
    base = yaml.safe_load(_default_yaml())
    base["plugins"] = base["plugins"] + EXTRA
    path = tmp_path / "more.yaml"
    path.write_text(yaml.safe_dump(base))
    return path, base


def _default_yaml():
    from importlib.resources import files

    return (files("recux.conf") / "metrics" / "default.yaml").read_text()


def _run(path, overrides):
    run_experiment(compose_cfg(WORLD + overrides), path, WORLD + overrides)
    return json.loads((path / "results.json").read_text())


def test_rescored_metrics_equal_a_run_that_computed_them(tmp_path):
    metric_file, base = _metric_file(tmp_path)
    plain = _run(tmp_path / "runs" / "plain", [])
    before = (tmp_path / "runs" / "plain" / "results.json").read_bytes()
    ks = ",".join(map(str, base["ks"]))
    direct = _run(tmp_path / "direct", [f"metrics.ks=[{ks}]",
                                         "metrics.plugins=" + json.dumps(base["plugins"]).replace('"', "")])
    assert main([str(tmp_path / "runs"), "--metrics", str(metric_file), "--out", str(tmp_path / "out")]) == 0
    got = json.loads((tmp_path / "out" / "plain" / "results.json").read_text())
    for name in direct["metrics"]:
        assert got["metrics"][name] == pytest.approx(direct["metrics"][name], rel=0, abs=1e-12), name
    assert {"aplt@10", "pop_lift@10", "personalisation@10"} <= set(got["metrics"]) - set(plain["metrics"])
    per_user = pl.read_parquet(tmp_path / "out" / "plain" / "per_user_metrics.parquet")
    assert "aplt@10" in per_user.columns and per_user.height == plain["users"]["evaluated"]
    assert got["rescored"]["metrics"] == str(metric_file)
    assert (tmp_path / "runs" / "plain" / "results.json").read_bytes() == before  # the original is untouched


def test_lists_that_no_longer_reproduce_the_run_are_refused(tmp_path):
    metric_file, _ = _metric_file(tmp_path)
    _run(tmp_path / "runs" / "r", [])
    recs = tmp_path / "runs" / "r" / "recommendations.parquet"
    df = pl.read_parquet(recs)
    swapped = pl.when(pl.col("rank") == 1).then(2).when(pl.col("rank") == 2).then(1).otherwise(pl.col("rank"))
    df.with_columns(swapped.cast(df["rank"].dtype).alias("rank")).write_parquet(recs)  # each list's top two swapped
    assert main([str(tmp_path / "runs"), "--metrics", str(metric_file), "--out", str(tmp_path / "out")]) == 3
    assert not (tmp_path / "out" / "r").exists()
