"""trainer=ddp without code changes: two CPU processes train, rank 0 alone evaluates every test user and writes
one set of results (no per-rank metric shards, no second W&B run), equal to a single-process run of the same seed
within DDP_TOLERANCE; the ranks' batches together are the single-process batches (recux.batches)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import polars as pl
import pytest

# DDP averages the ranks' gradients in another summation order than one process's batch mean: float32
# rounding differences that can flip near-tied items in a top-k. Stated tolerance for every metric.
DDP_TOLERANCE = 0.01


def _run(tmp_path, name: str, extra: list[str]) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "recux.cli.run", "dataset=synthetic", "model=bpr", "model.max_epochs=2",
           "trainer.enable_progress_bar=false", "seed=3", f"hydra.run.dir={tmp_path / name}", *extra]
    env = {**os.environ, "WANDB_MODE": "offline", "OMP_NUM_THREADS": "1"}
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return out


@pytest.mark.slow
def test_ddp_on_two_cpu_processes_writes_one_complete_result_equal_to_one_process(tmp_path):
    run_dir = tmp_path / "run"
    out = _run(tmp_path, "run", ["trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2", "logger=wandb"])
    assert "Starting with 2 processes" in out.stdout + out.stderr
    results = json.loads((run_dir / "results.json").read_text())
    test_users = pl.read_parquet(run_dir / "split/test.parquet")["user_id"].n_unique()
    assert results["users"]["evaluated"] == test_users
    assert pl.read_parquet(run_dir / "recommendations.parquet")["user_id"].n_unique() == test_users
    assert not [p for p in run_dir.iterdir() if p.name.startswith(".staging-")]
    assert len(list((run_dir / ".wandb").rglob("*.wandb"))) == 1
    _run(tmp_path, "single", ["logger=none"])  # the same seed and global batch on one process
    single = json.loads((tmp_path / "single" / "results.json").read_text())["metrics"]
    diffs = {m: abs(results["metrics"][m] - v) for m, v in single.items()}
    assert max(diffs.values()) <= DDP_TOLERANCE, diffs


@pytest.mark.parametrize("world", [2, 3])
def test_rank_shards_of_each_step_together_are_the_single_process_batch(monkeypatch, world):
    """What makes a W-process run follow the single-process run: the W ranks' batches of step t, put
    together, are exactly the single-process batch t (users, positives and negatives), and every rank runs
    the same number of steps."""
    import numpy as np
    import torch

    from recux.training import PairBatches

    rng = np.random.default_rng(0)
    users, items = rng.integers(0, 30, 203), rng.integers(0, 40, 203)

    def epochs(rank: int | None) -> list:
        if rank is None:
            monkeypatch.delenv("RANK", raising=False)
            monkeypatch.delenv("WORLD_SIZE", raising=False)
        else:
            monkeypatch.setenv("RANK", str(rank))
            monkeypatch.setenv("WORLD_SIZE", str(world))
        batches = PairBatches(users, items, 40, batch_size=32, num_negatives=2, seed=5)
        return [list(batches) for _ in range(2)], len(batches)

    single, n_single = epochs(None)
    shards = [epochs(r) for r in range(world)]
    assert len({n for _, n in shards}) == 1
    for e in range(2):
        n_steps = len(shards[0][0][e])
        assert n_steps == shards[0][1] and all(len(s[0][e]) == n_steps for s in shards)
        for t in range(n_steps):
            for part in range(3):  # users, positives, negatives: rank r holds rows r, r + W, ...
                want = single[e][t][part]
                got = torch.empty_like(want)
                for r, s in enumerate(shards):
                    got[r::world] = s[0][e][t][part]
                assert torch.equal(got, want)
        # the dropped tail (if any) is a last batch with fewer rows than ranks
        assert n_single - n_steps in (0, 1)
