"""Weights & Biases: log every leaderboard as a wandb.Table in one (offline by default) run (with the UX view's
table and Pareto plot of each section that has them), with all W&B folders kept under the given folder."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from recux.leaderboard.aggregate import Leaderboard
from recux.leaderboard.render import board_records, sanitize_filename, ux_records
from recux.leaderboard.ux import UxConfig, has_ux_view

WANDB_DIR_VARS = ("WANDB_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR", "WANDB_CONFIG_DIR", "WANDB_ARTIFACT_DIR")


def _table(wandb, records: Sequence[dict[str, Any]]):
    keys: list[str] = []
    for rec in records:
        keys += [k for k in rec if k not in keys]
    return wandb.Table(columns=keys, data=[[rec.get(k) for k in keys] for rec in records])


def log_to_wandb(
    boards: Sequence[Leaderboard],
    wandb_dir: str | os.PathLike,
    config: dict | None = None,
    ux: UxConfig | None = None,
    ux_plots: Mapping[tuple[str, str, str], str | os.PathLike] | None = None,
) -> Path:
    """Log every leaderboard as a wandb.Table in one run (project "recux", job_type "leaderboard"; offline unless
    WANDB_MODE says otherwise); with ``ux``, each section's UX view as a table under ``leaderboard_ux/...`` and
    its Pareto plot (``ux_plots``: (dataset, protocol, data hash) -> PNG path) as an image beside it. All W&B
    folders (run, cache, staging, settings) go under ``wandb_dir``, never the home folder; the environment is
    restored afterwards. Returns the run's local folder."""
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
                key = f"{sanitize_filename(b.dataset)}/{sanitize_filename(b.protocol)}/{b.data_hash[:8]}"
                logged = {f"leaderboard/{key}": _table(wandb, board_records(b))}
                if ux is not None and has_ux_view(b, ux):
                    logged[f"leaderboard_ux/{key}"] = _table(wandb, ux_records(b, ux))
                    plot = (ux_plots or {}).get((b.dataset, b.protocol, b.data_hash))
                    if plot is not None:
                        logged[f"leaderboard_ux/{key}/pareto"] = wandb.Image(str(plot))
                run.log(logged)
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
