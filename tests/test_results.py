"""Run artefacts: atomic publication, nothing half-written on failure, stable config hashes."""

from __future__ import annotations

import json

import pytest

from recux.results import RESULTS_FILE, RunArtifacts, config_hash, write_json_atomic


def test_artifacts_appear_only_after_success(tmp_path):
    with RunArtifacts(tmp_path) as art:
        art.path("split/train.parquet").write_text("t")
        art.path("per_user_metrics.parquet").write_text("p")
        art.set_results({"status": "ok", "x": 1})
        assert not (tmp_path / RESULTS_FILE).exists()
        assert not (tmp_path / "per_user_metrics.parquet").exists()
    assert json.loads((tmp_path / RESULTS_FILE).read_text()) == {"status": "ok", "x": 1}
    assert (tmp_path / "split" / "train.parquet").read_text() == "t"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".staging-")]


def test_failed_run_leaves_no_files_and_keeps_earlier_results(tmp_path):
    write_json_atomic(tmp_path / RESULTS_FILE, {"status": "ok", "earlier": True})
    with pytest.raises(RuntimeError, match="boom"):
        with RunArtifacts(tmp_path) as art:
            art.path("recommendations.parquet").write_text("partial")
            raise RuntimeError("boom")
    assert sorted(p.name for p in tmp_path.iterdir()) == [RESULTS_FILE]
    assert json.loads((tmp_path / RESULTS_FILE).read_text())["earlier"] is True


def test_atomic_json_write_failure_keeps_old_file(tmp_path):
    target = tmp_path / "r.json"
    write_json_atomic(target, {"a": 1})

    class Unserialisable:
        def __repr__(self):
            raise ValueError("cannot serialise")

    with pytest.raises(ValueError):
        write_json_atomic(target, {"a": Unserialisable()})
    assert json.loads(target.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_config_hash_ignores_dropped_keys_and_key_order():
    a = {"seed": 0, "model": {"name": "bpr", "dim": 64}, "logger": {"name": "wandb"}}
    b = {"logger": {"name": "none"}, "model": {"dim": 64, "name": "bpr"}, "seed": 7}
    drop = ("seed", "logger")
    assert config_hash(a, drop) == config_hash(b, drop)
    assert config_hash(a) != config_hash(b)
    c = {"seed": 0, "model": {"name": "bpr", "dim": 128}}
    assert config_hash(a, drop) != config_hash(c, drop)
