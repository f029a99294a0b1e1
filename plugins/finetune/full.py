"""Full fine-tuning: every weight of the text encoder trains, in its own optimiser param group with a lower
learning rate and a linear warm-up (``recux.optim.group_warmup``); the rest of the network trains at the
model's rate."""

from __future__ import annotations

from typing import Any

from recux.errors import ConfigError
from recux.plugins.finetune._text import TextStrategy
from recux.registry import register


@register("finetune", "full")
class Full(TextStrategy):
    """All encoder weights train (lr ``lr``, warm-up ``warmup_steps`` optimiser steps); the rest at the
    model's rate."""

    name = "full"

    def __init__(self, lr: float = 5e-5, warmup_steps: int = 100, weight_decay: float = 0.01) -> None:
        if float(lr) <= 0 or int(warmup_steps) < 0 or float(weight_decay) < 0:
            raise ConfigError(f"finetune=full: lr must be > 0, warmup_steps and weight_decay >= 0; got lr={lr}, "
                              f"warmup_steps={warmup_steps}, weight_decay={weight_decay}")
        self._params = {"lr": float(lr), "warmup_steps": int(warmup_steps), "weight_decay": float(weight_decay)}

    def prepare(self, module: Any, ctx: Any = None) -> None:
        self.encoder_of(module)
        for p in module.parameters():
            p.requires_grad_(True)

    def trainable_parameters(self, module: Any) -> list[Any]:
        enc_ids = {id(p) for p in self.encoder_of(module).parameters()}
        rest = [p for p in module.parameters() if p.requires_grad and id(p) not in enc_ids]
        enc = [p for p in self.encoder_of(module).parameters() if p.requires_grad]
        groups = [{"params": rest}] if rest else []
        return groups + [{"params": enc, "lr": self._params["lr"], "weight_decay": self._params["weight_decay"],
                          "warmup_steps": self._params["warmup_steps"]}]
