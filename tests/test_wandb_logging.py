"""W&B: a run logs its config, training curves and final test metrics, offline, inside the run folder."""

from __future__ import annotations

import json

import pytest

from tests._wandb_log import summarize
from tests.test_pipeline import run


@pytest.mark.slow
def test_offline_run_logs_config_curves_and_summary_inside_the_run_folder(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("WANDB_MODE", "offline")
    for var in ("WANDB_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR", "WANDB_CONFIG_DIR", "WANDB_ARTIFACT_DIR"):
        monkeypatch.delenv(var, raising=False)
    results, run_dir = run(tmp_path, ["dataset=synthetic", "model=bpr", "model.max_epochs=3", "logger=wandb",
                                      "trainer.enable_progress_bar=false"])
    logs = list((run_dir / ".wandb").rglob("*.wandb"))
    assert len(logs) == 1, "expected one offline W&B run log inside the run folder"
    s = summarize(logs[0])
    assert {"train/loss", "val/ndcg@10"} <= s["history"]
    assert json.loads(s["summary"]["test/ndcg@10"]) == pytest.approx(results["metrics"]["ndcg@10"])
    assert json.loads(s["summary"]["users/evaluated"]) == results["users"]["evaluated"]
    assert json.loads(s["config"]["model"])["name"] == "bpr"
    in_home = [p for p in home.rglob("*") if "wandb" in str(p).lower()]
    assert in_home == [], f"W&B wrote into HOME: {in_home[:5]}"
