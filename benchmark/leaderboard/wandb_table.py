"""Weights & Biases: log every leaderboard as a wandb.Table in one (offline by default) run, with all W&B folders
kept under the given folder."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from recux.leaderboard.aggregate import Leaderboard
from recux.leaderboard.render import board_records, sanitize_filename

WANDB_DIR_VARS = ("WANDB_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR", "WANDB_CONFIG_DIR", "WANDB_ARTIFACT_DIR")


def log_to_wandb(
    boards: Sequence[Leaderboard], wandb_dir: str | os.PathLike, config: dict | None = None
) -> Path:
    """Log every leaderboard as a wandb.Table in one run (project "recux", job_type "leaderboard"; offline unless
    WANDB_MODE says otherwise). All W&B folders (run, cache, staging, settings) go under ``wandb_dir``, never
    the home folder; the environment is restored afterwards. Returns the run's local folder."""
    wandb_dir = Path(wandb_dir).resolve()
    wandb_dir.mkdir(parents=True, exist_ok=True)
    saved = {k: os.environ.get(k) for k in WANDB_DIR_VARS}
    os.environ["WANDB_DIR"] = str(wandb_dir)
    for k, sub in zip(WANDB_DIR_VARS[1:], ("cache", "data", "config", "artifacts"), strict=True):
        os.environ[k] = str(wandb_dir / sub)
    try:
        import wandb

        mode = os.environ.get("WANDB_MODE") or "offline"
        run = wandb.init(
            project="recux",
            job_type="leaderboard",
            mode=mode,
            dir=str(wandb_dir),
            config=config or {},
            settings=wandb.Settings(silent=True, console="off", x_disable_stats=True, save_code=False),
        )
        try:
            for b in boards:
                records = board_records(b)
                keys: list[str] = []
                for rec in records:
                    keys += [k for k in rec if k not in keys]
                table = wandb.Table(columns=keys, data=[[rec.get(k) for k in keys] for rec in records])
                run.log(
                    {f"leaderboard/{sanitize_filename(b.dataset)}/{sanitize_filename(b.protocol)}/{b.data_hash[:8]}": table}
                )
            run_dir = Path(run.dir).parent if run.dir else wandb_dir
        finally:
            run.finish()
        return run_dir
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
