"""Training from scratch: the network keeps its fresh initialisation and every parameter trains."""

from __future__ import annotations

from typing import Any

from recux.finetune import FineTuneStrategy
from recux.registry import register


@register("finetune", "scratch", baseline=True)
class Scratch(FineTuneStrategy):
    """Train from a fresh initialisation with all parameters trainable (the baseline strategy)."""

    name = "scratch"
    requires = frozenset()  # applies to every model

    def prepare(self, module: Any, ctx: Any = None) -> None:
        """Mark every parameter trainable (a module may arrive with some frozen) and keep its init (a model
        without torch parameters, such as EASE, never calls this)."""
        for p in module.parameters():
            p.requires_grad_(True)
