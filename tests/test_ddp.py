"""trainer=ddp without code changes: two CPU processes train, rank 0 alone evaluates every test user and writes
one set of results (no per-rank metric shards, no second W&B run)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import polars as pl
import pytest


@pytest.mark.slow
def test_ddp_on_two_cpu_processes_writes_one_complete_result(tmp_path):
    run_dir = tmp_path / "run"
    cmd = [sys.executable, "-m", "recux.cli.run", "dataset=synthetic", "model=bpr", "model.max_epochs=2",
           "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2", "trainer.enable_progress_bar=false",
           "logger=wandb", f"hydra.run.dir={run_dir}"]
    env = {**os.environ, "WANDB_MODE": "offline", "OMP_NUM_THREADS": "1"}
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "Starting with 2 processes" in out.stdout + out.stderr
    results = json.loads((run_dir / "results.json").read_text())
    test_users = pl.read_parquet(run_dir / "split/test.parquet")["user_id"].n_unique()
    assert results["users"]["evaluated"] == test_users
    assert pl.read_parquet(run_dir / "recommendations.parquet")["user_id"].n_unique() == test_users
    assert not [p for p in run_dir.iterdir() if p.name.startswith(".staging-")]
    assert len(list((run_dir / ".wandb").rglob("*.wandb"))) == 1
