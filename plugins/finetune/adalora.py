"""AdaLoRA (Zhang et al. 2023, arXiv:2303.10512): LoRA in SVD form W + P diag(E) Q whose rank budget is
re-allocated during training by each triplet's importance (sensitivity |w * grad| smoothed), from
``init_r`` per layer down to ``target_r`` on average: no pruning for ``tinit`` steps, a cubic budget decay
until ``total_step - tfinal``, fixed ranks after. The schedule runs inside the Lightning loop: the network
calls ``after_step`` after each optimiser step (gradients still present), which calls peft's
``update_and_allocate``; ``total_step`` is the fit's optimiser steps (set when training starts). The
orthogonality penalty of the paper is added to the loss through ``regularizer``."""

from __future__ import annotations

from typing import Any

from recux.errors import ConfigError
from recux.plugins.finetune._text import TextStrategy, check_lora, check_targets
from recux.plugins.finetune.lora import freeze_base
from recux.registry import register


@register("finetune", "adalora")
class AdaLoRA(TextStrategy):
    """AdaLoRA adapters (adaptive rank budget) on the encoder's targeted linear layers; base weights frozen."""

    name = "adalora"

    def __init__(self, init_r: int = 12, target_r: int = 8, alpha: float = 16.0, dropout: float = 0.1,
                 target_modules: Any = ("query", "value"), tinit: int = 0, tfinal: int = 0, delta_t: int = 1,
                 orth_reg_weight: float = 0.5) -> None:
        check_lora(self.name, init_r, alpha, dropout)
        if not 1 <= int(target_r) <= int(init_r):
            raise ConfigError(f"finetune=adalora: target_r must lie in [1, init_r={init_r}], got {target_r}")
        if int(tinit) < 0 or int(tfinal) < 0 or int(delta_t) < 1 or float(orth_reg_weight) < 0:
            raise ConfigError("finetune=adalora: tinit, tfinal and orth_reg_weight must be >= 0, delta_t >= 1")
        self._params = {"init_r": int(init_r), "target_r": int(target_r), "alpha": float(alpha),
                        "dropout": float(dropout), "target_modules": check_targets(self.name, target_modules),
                        "tinit": int(tinit), "tfinal": int(tfinal), "delta_t": int(delta_t),
                        "orth_reg_weight": float(orth_reg_weight)}
        self.tuner: Any = None  # peft's AdaLoraModel over the encoder (outside the network's module tree)

    def _config(self, total_step: int) -> Any:
        from peft import AdaLoraConfig

        p = self._params
        return AdaLoraConfig(init_r=p["init_r"], target_r=p["target_r"], lora_alpha=p["alpha"],
                             lora_dropout=p["dropout"], target_modules=list(p["target_modules"]),
                             tinit=p["tinit"], tfinal=p["tfinal"], deltaT=p["delta_t"],
                             orth_reg_weight=p["orth_reg_weight"], total_step=total_step)

    def prepare(self, module: Any, ctx: Any = None) -> None:
        from peft import AdaLoraModel

        enc = self.encoder_of(module)
        for p in module.parameters():
            p.requires_grad_(True)
        # total_step is provisional until on_fit_start knows the fit's steps; AdaLoraModel injects in place
        tuner = AdaLoraModel(enc, self._config(self._params["tinit"] + self._params["tfinal"] + 2), "default")
        object.__setattr__(module, "_adalora", tuner)  # not a sub-module: the encoder stays module.encoder
        self.tuner = tuner
        freeze_base(enc)

    def on_fit_start(self, module: Any, total_steps: int) -> None:
        p = self._params
        if total_steps <= p["tinit"] + p["tfinal"]:
            raise ConfigError(f"finetune=adalora: the fit has {total_steps} optimiser steps, not more than "
                              f"tinit + tfinal = {p['tinit'] + p['tfinal']}; lower them or train longer")
        module._adalora.peft_config["default"].total_step = int(total_steps)

    def after_step(self, module: Any, step: int) -> None:
        module._adalora.update_and_allocate(int(step))

    def regularizer(self, module: Any) -> Any:
        """Mean over adapted layers of ||P P^T - I||_F (A side) and ||Q^T Q - I||_F (B side), times the weight."""
        import torch

        w = self._params["orth_reg_weight"]
        if not w:
            return None
        terms = []
        for n, p in module.encoder.named_parameters():
            if "lora_A" in n or "lora_B" in n:
                cov = p @ p.T if "lora_A" in n else p.T @ p
                terms.append(torch.linalg.matrix_norm(cov - torch.eye(len(cov), device=cov.device)))
        return w * torch.stack(terms).mean() if terms else None

    def ranks(self, module: Any) -> dict[str, int]:
        """Current rank of each adapted layer (nonzero singular values E)."""
        return {n.removesuffix(".lora_E.default"): int((p != 0).sum())
                for n, p in module.encoder.named_parameters() if "lora_E" in n}
