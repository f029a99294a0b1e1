"""Optimisers and learning-rate schedules from config, built over the parameters a fine-tuning strategy trains.

A spec is a mapping in Hydra's partial style, as in a model config::

    optimizer: {_target_: torch.optim.SGD, _partial_: true, lr: 0.05, momentum: 0.9}
    scheduler: {_target_: torch.optim.lr_scheduler.StepLR, _partial_: true, step_size: 10, interval: epoch}

``_target_`` is a dotted path (or the callable itself); the other keys are keyword arguments. A scheduler's
``interval`` ("epoch" or "step") and ``monitor`` go to Lightning, not to the scheduler; a scheduler callable
with a ``total_steps`` parameter gets the fit's total optimiser steps unless the spec sets it. No torch at
import time.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from recux.errors import ConfigError

_LIGHTNING_KEYS = ("interval", "frequency", "monitor")


def _accepts(fn: Callable[..., Any], name: str) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def resolve(spec: Mapping[str, Any], what: str) -> tuple[Callable[..., Any], dict[str, Any]]:
    """(callable, keyword arguments) of a ``_target_`` spec; ``what`` names the setting in errors."""
    if not isinstance(spec, Mapping) or "_target_" not in spec:
        raise ConfigError(f"{what} must be a mapping with a _target_, e.g. "
                          f"{{_target_: torch.optim.Adam, _partial_: true, lr: 0.001}}; got {spec!r}")
    kw = {k: v for k, v in spec.items() if k not in ("_target_", "_partial_")}
    target = spec["_target_"]
    if callable(target):
        return target, kw
    from hydra.utils import get_method

    try:
        return get_method(str(target)), kw
    except Exception as exc:  # hydra raises ImportError or its own error types
        raise ConfigError(f"{what}._target_ {target!r} cannot be imported ({exc}); give a dotted path such as "
                          "torch.optim.Adam") from exc


def build_optimizer(spec: Mapping[str, Any], params: Iterable[Any]) -> Any:
    """The optimiser of ``spec`` over ``params`` (tensors or torch param-group dicts: a group's own ``lr``
    overrides the spec's, extra keys such as ``warmup_steps`` stay in the group). When the class takes ``fused`` and the spec does not set it,
    the fused kernel is tried first (the fastest on CPU with torch >= 2.4 and on GPU) and the plain one used
    where it is unsupported."""
    cls, kw = resolve(spec, "optimizer")
    params = list(params)  # tensors, or param-group dicts ({"params": [...], "lr": ..., "warmup_steps": ...})
    if not any(g["params"] if isinstance(g, Mapping) else True for g in params):
        raise ConfigError("the optimiser got no trainable parameters: the fine-tuning strategy froze them all; "
                          "check its trainable_parameters or the finetune config")
    if "fused" not in kw and _accepts(cls, "fused"):
        try:
            return cls(params, **kw, fused=True)
        except (RuntimeError, TypeError, ValueError):
            pass
    try:
        return cls(params, **kw)
    except TypeError as exc:
        raise ConfigError(f"optimizer {spec.get('_target_')} rejected {kw}: {exc}") from exc


def build_scheduler(spec: Mapping[str, Any] | None, optimizer: Any,
                    total_steps: Callable[[], int]) -> dict[str, Any] | None:
    """Lightning's ``lr_scheduler`` dict for ``spec`` (None: no scheduler). ``total_steps()`` is called only
    when the scheduler asks for it."""
    if spec is None:
        return None
    fn, kw = resolve(spec, "scheduler")
    extra = {k: kw.pop(k) for k in _LIGHTNING_KEYS if k in kw}
    if extra.setdefault("interval", "epoch") not in ("epoch", "step"):
        raise ConfigError(f"scheduler.interval must be 'epoch' or 'step', got {extra['interval']!r}")
    if "total_steps" not in kw and _accepts(fn, "total_steps"):
        kw["total_steps"] = int(total_steps())
    try:
        return {"scheduler": fn(optimizer, **kw), **extra}
    except TypeError as exc:
        raise ConfigError(f"scheduler {spec.get('_target_')} rejected {kw}: {exc}") from exc


def linear_decay(optimizer: Any, total_steps: int) -> Any:
    """LambdaLR with factor max(0, 1 - step / total_steps): the rate falls linearly to 0 at the fit's end
    (use with ``interval: step``)."""
    import torch

    total = max(1, int(total_steps))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: max(0.0, 1.0 - step / total))


def group_warmup(optimizer: Any, step: int) -> list[tuple[dict[str, Any], float]]:
    """Per-group linear warm-up: a param group with ``warmup_steps`` w > 0 (a key a fine-tuning strategy's
    ``trainable_parameters`` may set, e.g. the encoder group of ``full``) runs at min(1, (step + 1) / w) of
    its rate. Scales each such group's ``lr`` in place for one optimiser step and returns what ``restore_lr``
    needs, so the warm-up composes with any scheduler (which keeps owning ``lr``)."""
    saved = []
    for group in optimizer.param_groups:
        w = int(group.get("warmup_steps") or 0)
        if w > 0 and step < w:
            saved.append((group, group["lr"]))
            group["lr"] = group["lr"] * (step + 1) / w
    return saved


def restore_lr(saved: list[tuple[dict[str, Any], float]]) -> None:
    """Undo ``group_warmup`` after the optimiser step."""
    for group, lr in saved:
        group["lr"] = lr
