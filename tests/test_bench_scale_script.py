"""scripts/bench_scale.py at tiny scale: every stage runs in its own process and reports time and peak memory,
and the evaluated metrics equal the normal pipeline's (run_experiment, one BPR epoch) on the same data."""

from __future__ import annotations

import json

import pytest

from tests._scripts import load_script

TINY = ["--users", "300", "--items", "60", "--interactions", "4500", "--dim", "8", "--batch-size", "512"]


@pytest.fixture(scope="module")
def bench():
    return load_script("bench_scale")


def test_stages_report_time_and_memory_and_metrics_equal_the_pipelines(bench, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("WANDB_MODE", "offline")
    out = tmp_path / "scale.json"
    assert bench.main([*TINY, "--workdir", str(tmp_path / "w"), "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    rows = {r["stage"]: r for r in result["stages"]}
    assert list(rows) == list(bench.STAGES)
    for r in rows.values():
        assert r["seconds"] >= 0 and r["peak_rss_mb"] >= r["rss_before_mb"] > 0
    assert rows["load"]["n_users"] == 300 and rows["bpr_epoch"]["pairs"] == rows["split"]["n_train"]
    assert "evaluate" in capsys.readouterr().out

    from hydra import compose, initialize_config_module

    from recux.pipeline import run_experiment

    args = bench.parse(TINY)
    ov = [*bench.overrides(args), "model.max_epochs=1"]
    with initialize_config_module(config_module="recux.conf", version_base="1.3"):
        cfg = compose("config", overrides=ov)
    pipeline = run_experiment(cfg, tmp_path / "run", ov)
    assert rows["evaluate"]["users"] == pipeline["users"]["evaluated"]
    assert rows["evaluate"]["metrics"] == pipeline["metrics"]  # same ranking, same values, exactly


def test_bad_sizes_and_stage_names_are_refused(bench):
    with pytest.raises(SystemExit):
        bench.parse(["--users", "10", "--items", "5", "--interactions", "100"])  # more than users x items
    with pytest.raises(SystemExit):
        bench.parse(["--stages", "load,train"])
