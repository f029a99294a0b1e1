"""The task contract: one kind of experiment (offline ranking, an online A/B simulation, off-policy estimation,
...). A task is a plugin (``@register("task", name)``) configured by ``conf/task/<name>.yaml`` and chosen with
``recux task=<name>``; it chains the stages of recux.stages and returns the results record it wrote."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

from recux.stages import RunSpec


class Task(ABC):
    """Base class of task plugins. Subclasses take their settings (the task YAML minus ``name``) as
    constructor arguments."""

    @abstractmethod
    def run(self, spec: RunSpec, run_dir: Path) -> dict[str, Any]:
        """Run the experiment described by ``spec``, write its artefacts into ``run_dir`` and return the
        results record as a dict (``{"status": ...}`` without results on a non-zero DDP rank)."""
