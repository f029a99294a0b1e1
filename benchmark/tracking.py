"""Weights & Biases tracking for one run: config, training curves (through Lightning's WandbLogger) and final
metrics in the run summary. Offline by default; all wandb files stay inside the run folder."""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def wandb_env(folder: str | Path) -> None:
    """Point every wandb folder variable into ``folder`` so nothing lands in the home folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for var, sub in (("WANDB_DIR", ""), ("WANDB_CACHE_DIR", "cache"), ("WANDB_DATA_DIR", "data"),
                     ("WANDB_CONFIG_DIR", "config"), ("WANDB_ARTIFACT_DIR", "artifacts")):
        path = folder / sub if sub else folder
        path.mkdir(parents=True, exist_ok=True)
        os.environ[var] = str(path)
    os.environ.setdefault("WANDB_SILENT", "true")


def wandb_api() -> Any:
    """The external W&B client API (the ``wandb`` module), imported on first use. ``WandbTracker`` takes it as
    ``api`` (this by default), so a test can hand it a recording stand-in and see exactly what recux logs."""
    import wandb

    return wandb


class Tracker:
    """A no-op tracker (logger=none); ``WandbTracker`` overrides it."""

    def lightning_logger(self) -> Any:
        return None

    def log(self, values: Mapping[str, Any], step: int | None = None) -> None:
        pass

    def summary(self, values: Mapping[str, Any]) -> None:
        pass

    def log_table(self, key: str, columns: list[str], rows: list[list[Any]]) -> None:
        pass

    def finish(self, exit_code: int = 0) -> None:
        pass


class WandbTracker(Tracker):
    def __init__(self, run_dir: Path, config: Mapping[str, Any], project: str = "recux", mode: str = "offline",
                 entity: str | None = None, name: str | None = None, group: str | None = None,
                 tags: list[str] | None = None, job_type: str = "train", api: Any = None):
        wandb_env(run_dir / ".wandb")
        mode = os.environ.get("WANDB_MODE", mode)
        wandb = api if api is not None else wandb_api()
        self._wandb = wandb
        self.run = wandb.init(
            project=project, entity=entity, mode=mode, dir=os.environ["WANDB_DIR"], config=dict(config),
            name=name, group=group, tags=tags, job_type=job_type, reinit="finish_previous",
            settings=wandb.Settings(console="off", x_disable_stats=True, silent=True),
        )
        self._pl_logger = None

    def lightning_logger(self) -> Any:
        if self._pl_logger is None:
            from pytorch_lightning.loggers import WandbLogger

            self._pl_logger = WandbLogger(experiment=self.run)
        return self._pl_logger

    def log(self, values: Mapping[str, Any], step: int | None = None) -> None:
        self.run.log(dict(values), step=step)

    def summary(self, values: Mapping[str, Any]) -> None:
        for k, v in values.items():
            self.run.summary[k] = v

    def log_table(self, key: str, columns: list[str], rows: list[list[Any]]) -> None:
        """A wandb.Table (NaN cells as None)."""
        clean = [[None if isinstance(v, float) and v != v else v for v in row] for row in rows]
        self.run.log({key: self._wandb.Table(columns=list(columns), data=clean)})

    def finish(self, exit_code: int = 0) -> None:
        try:
            self.run.finish(exit_code=exit_code)
        except Exception as exc:  # the run's own files are the record; never fail a run over logging
            warnings.warn(f"wandb finish failed: {exc}", stacklevel=2)


def make_tracker(logger_cfg: Mapping[str, Any] | None, run_dir: Path, config: Mapping[str, Any],
                 name: str, group: str, tags: list[str]) -> Tracker:
    """Build the tracker named by the ``logger`` config group (``wandb`` or ``none``)."""
    if not logger_cfg or logger_cfg.get("name", "none") == "none":
        return Tracker()
    if logger_cfg["name"] != "wandb":
        from recux.errors import ConfigError

        raise ConfigError(f"unknown logger '{logger_cfg['name']}'; use logger=wandb or logger=none")
    params = {k: v for k, v in logger_cfg.items() if k in ("project", "mode", "entity", "job_type")}
    return WandbTracker(run_dir, config, name=name, group=group, tags=tags, **params)
