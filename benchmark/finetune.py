"""The fine-tuning strategy contract: where a trainable model's weights start, which of them train, and
which models a strategy applies to.

A strategy acts IN PLACE: ``prepare`` changes the model's sub-modules (freezes parameters, swaps a layer
for an adapter-wrapped one, as peft's LoRA does to a text encoder's attention layers) and returns None (or
the module it was given). It never returns a different top-level module, so the model's LightningModule,
with its training step, scoring and optimiser wiring, stays the one that trains. The optimiser is built
over ``trainable_parameters`` (``recux.module.RecuxModule``), so a network cannot train what a strategy
froze. A saved model records the strategy's name and ``params()``; loading rebuilds the strategy through the
registry and re-applies ``prepare`` before the weights load, so adapter weights reload.

Applicability: a strategy lists the capabilities it ``requires``; a model declares its ``capabilities`` in
its registration (``@register("model", ..., capabilities={"torch_module"})``). The pair is valid iff
requires is a subset of capabilities (scratch requires nothing, so it applies to every model);
``check_finetune`` refuses any other pair before a run starts.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from recux.errors import ConfigError

# Known capabilities (a model may declare others; a strategy requiring an undeclared one applies to none).
CAPABILITIES = {
    "torch_module": "the model trains a torch nn.Module whose sub-modules and parameters a strategy may change",
    "text_encoder": "the model holds a pretrained text encoder sub-module (e.g. for LoRA/AdaLoRA via peft)",
}


class FineTuneStrategy:
    """Base class of fine-tuning plugins. The default behaviour is training from scratch, all parameters."""

    name: str = "base"
    requires: frozenset[str] = frozenset()  # capabilities a model must declare for this strategy to apply

    def prepare(self, module: Any, ctx: Any = None) -> None:
        """Change ``module`` in place (freeze, add adapters, load pretrained sub-module weights) and return None.

        Called with a freshly built network and the FitContext, BEFORE any ``FitContext.init_from`` weights
        load (so a network saved with adapters, e.g. a continual stage under LoRA, restarts with its adapters,
        and starting weights saved without them, e.g. a frozen-encoder run, load around fresh adapters: weights
        under the network's ``pretrained_prefixes`` may be absent from init_from); and on ``load`` with
        ``ctx=None`` before the saved weights load. Either way the weights that follow overwrite any set here."""
        return None

    def trainable_parameters(self, module: Any) -> list[Any]:
        """Parameters the optimiser updates."""
        return [p for p in module.parameters() if p.requires_grad]

    def params(self) -> dict[str, Any]:
        """Constructor keyword arguments that rebuild this strategy (saved with a model, used on load)."""
        return {}

    def describe(self) -> dict[str, Any]:
        """Settings recorded in results.json."""
        return {"name": self.name}


def prepare_in_place(strategy: FineTuneStrategy, module: Any, ctx: Any = None) -> None:
    """Run ``strategy.prepare`` and refuse a strategy that returns a different module instead of changing
    ``module`` in place."""
    out = strategy.prepare(module, ctx)
    if out is not None and out is not module:
        raise TypeError(
            f"fine-tuning strategy '{strategy.name}' returned a {type(out).__name__} from prepare(); strategies "
            f"act in place on the model's sub-modules and return None (e.g. replace module.encoder by its "
            f"adapter-wrapped version rather than wrapping the whole {type(module).__name__})"
        )


def _declared(info: Any, key: str) -> frozenset[str]:
    value: Iterable[str] | str = info.meta.get(key) or getattr(info.obj, key, None) or ()
    return frozenset([value] if isinstance(value, str) else value)


def check_finetune(model_info: Any, finetune_info: Any) -> None:
    """Raise ConfigError unless the fine-tuning strategy applies to the model (its ``requires`` is a subset of
    the model's registered ``capabilities``). Both arguments are ``registry.PluginInfo``."""
    requires = _declared(finetune_info, "requires")
    capabilities = _declared(model_info, "capabilities")
    missing = requires - capabilities
    if not missing:
        return
    from recux import registry

    fits = [m.name for m in registry.all_plugins()["model"] if requires <= _declared(m, "capabilities")]
    raise ConfigError(
        f"finetune={finetune_info.name} does not apply to model={model_info.name}: it requires "
        f"{sorted(requires)} and the model declares {sorted(capabilities) or 'no capabilities'} (missing "
        f"{sorted(missing)}). Use finetune=scratch, or a model that supports it: {', '.join(fits) or '(none)'}."
    )
