"""Up-front checks of the training hyper-parameters Lightning models share, so a bad value is refused when the
model is built (before any data is loaded) with the setting named, not by torch's optimiser in the middle of
a fit."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from recux.errors import ConfigError


def check_rates(model: str, lr: float, optimizer: Mapping[str, Any] | None = None, **penalties: float) -> None:
    """``lr`` (and an ``optimizer`` spec's own lr) must be a finite number > 0; each of ``penalties``
    (weight_decay, reg, ...) a finite number >= 0."""
    rates = {"lr": lr}
    if optimizer and optimizer.get("lr") is not None:
        rates["optimizer.lr"] = optimizer["lr"]
    for name, value in rates.items():
        if not _finite(value) or float(value) <= 0:
            raise ConfigError(f"model.{name}={value!r} for {model}: the learning rate must be a number > 0, "
                              f"e.g. model.{name}=1e-3")
    for name, value in penalties.items():
        if not _finite(value) or float(value) < 0:
            raise ConfigError(f"model.{name}={value!r} for {model}: it must be a number >= 0 (0 turns it off)")


def _finite(value: Any) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False
