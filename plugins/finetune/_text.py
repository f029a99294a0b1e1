"""What the text-encoder strategies (frozen, lora, adalora, full) share: they apply to models registered with
capability "text_encoder", find the encoder at the network's ``encoder`` attribute, and may hook the training
loop (the network calls ``on_fit_start``, ``after_step`` and ``regularizer`` when it has them)."""

from __future__ import annotations

from typing import Any

from recux.errors import ConfigError
from recux.finetune import FineTuneStrategy


class TextStrategy(FineTuneStrategy):
    """Base of strategies over a text encoder. ``encoder_in_net``: the model must place a trainable copy of
    the encoder inside its network (attribute ``encoder``); False: it may use the cached frozen embeddings."""

    requires = frozenset({"torch_module", "text_encoder"})  # a trainable network that holds or uses text
    encoder_in_net = True

    def encoder_of(self, module: Any) -> Any:
        enc = getattr(module, "encoder", None)
        if enc is None:
            raise ConfigError(f"finetune={self.name} needs the network's text encoder at attribute 'encoder'; "
                              f"{type(module).__name__} has none (a model declaring capability 'text_encoder' "
                              "must build it when the strategy's encoder_in_net is true)")
        return enc

    def on_fit_start(self, module: Any, total_steps: int) -> None:
        """Called once when training starts, with the fit's optimiser steps."""

    def after_step(self, module: Any, step: int) -> None:
        """Called after each optimiser step, while the gradients are still there."""

    def regularizer(self, module: Any) -> Any:
        """An extra loss term (a tensor), or None."""
        return None

    def params(self) -> dict[str, Any]:
        return dict(self._params)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, **self._params}

    _params: dict[str, Any] = {}


def check_targets(name: str, target_modules: Any) -> list[str]:
    targets = [target_modules] if isinstance(target_modules, str) else list(target_modules or [])
    if not targets:
        raise ConfigError(f"finetune.target_modules is empty for {name}: name the encoder's linear layers to "
                          "adapt, e.g. [query, value] for BERT/MiniLM")
    return [str(t) for t in targets]


def check_lora(name: str, r: int, alpha: float, dropout: float) -> None:
    if int(r) < 1 or float(alpha) <= 0 or not 0.0 <= float(dropout) < 1.0:
        raise ConfigError(f"finetune={name}: r must be >= 1, alpha > 0 and dropout in [0, 1); got r={r}, "
                          f"alpha={alpha}, dropout={dropout}")
