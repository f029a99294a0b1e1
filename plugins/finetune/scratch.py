"""Training from scratch: the network keeps its fresh initialisation and every parameter trains."""

from __future__ import annotations

from typing import Any

from recux.finetune import FineTuneStrategy
from recux.registry import register


@register("finetune", "scratch", baseline=True)
class Scratch(FineTuneStrategy):
    """Train from a fresh initialisation with all parameters trainable (the baseline strategy)."""

    name = "scratch"

    def prepare(self, module: Any, ctx: Any = None) -> Any:
        """Mark every parameter trainable (a module may arrive with some frozen) and keep its init."""
        for p in module.parameters():
            p.requires_grad_(True)
        return module
