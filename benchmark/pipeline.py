"""One experiment, end to end: the config names a task plugin (``task=offline_ranking`` by default) that chains
the stages of recux.stages (load -> preprocess -> split -> fit -> rank -> evaluate -> write). The Hydra CLI, the
tests and the scripts all call ``run_experiment``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from recux import registry
from recux.stages import RunSpec, build_label, concat, global_rank, seed_everything

__all__ = ["run_experiment", "build_label", "global_rank", "seed_everything", "_concat"]
_concat = concat  # kept for callers of the old name


def run_experiment(cfg: DictConfig, run_dir: str | Path, overrides: list[str] | None = None) -> dict[str, Any]:
    """Run the experiment a composed config describes and write its artefacts into ``run_dir``; returns the
    results record as a dict (see recux.record.ResultsRecord)."""
    spec = RunSpec.from_config(cfg, overrides)
    from recux.compression import check_task

    check_task(spec.resolved, registry.get("task", spec.task.name))  # compress=int8 on a task that ignores it
    task = registry.build("task", spec.task.name, spec.task.params)
    return task.run(spec, Path(run_dir))
