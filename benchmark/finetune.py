"""The fine-tuning strategy contract: where a trainable model's weights start and which of them train.

Models call ``prepare`` once their network exists and train only ``trainable_parameters``; a strategy
(scratch, full fine-tuning, frozen encoder, LoRA, incremental updates) changes those two answers without
any change to the model."""

from __future__ import annotations

from typing import Any


class FineTuneStrategy:
    """Base class of fine-tuning plugins. The default behaviour is training from scratch."""

    name: str = "base"

    def prepare(self, module: Any, ctx: Any = None) -> Any:
        """Called with a freshly initialised torch module; returns the module to train (maybe wrapped)."""
        return module

    def trainable_parameters(self, module: Any) -> list[Any]:
        """Parameters the optimiser updates."""
        return [p for p in module.parameters() if p.requires_grad]

    def describe(self) -> dict[str, Any]:
        """Settings recorded in results.json."""
        return {"name": self.name}
