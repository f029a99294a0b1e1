"""LoRA (Hu et al. 2022, arXiv:2106.09685): each targeted linear layer W of the text encoder becomes
W x + (alpha / r) B A x with trainable A (r x in), B (out x r, zero at start) and W frozen. Injected IN PLACE
into the network's ``encoder`` sub-module with ``peft.inject_adapter_in_model``; the rest of the network
(projection, ID embeddings, sequence transformer) trains fully."""

from __future__ import annotations

from typing import Any

from recux.plugins.finetune._text import TextStrategy, check_lora, check_targets
from recux.registry import register


def freeze_base(enc: Any, marker: str = "lora_") -> None:
    """Only the adapter weights of ``enc`` train (peft's names hold ``lora_``)."""
    for n, p in enc.named_parameters():
        p.requires_grad_(marker in n)


@register("finetune", "lora")
class LoRA(TextStrategy):
    """LoRA adapters on the encoder's targeted linear layers; encoder base weights frozen."""

    name = "lora"

    def __init__(self, r: int = 8, alpha: float = 16.0, dropout: float = 0.1,
                 target_modules: Any = ("query", "value")) -> None:
        check_lora(self.name, r, alpha, dropout)
        self._params = {"r": int(r), "alpha": float(alpha), "dropout": float(dropout),
                        "target_modules": check_targets(self.name, target_modules)}

    def prepare(self, module: Any, ctx: Any = None) -> None:
        from peft import LoraConfig, inject_adapter_in_model

        enc = self.encoder_of(module)
        for p in module.parameters():
            p.requires_grad_(True)
        p = self._params
        cfg = LoraConfig(r=p["r"], lora_alpha=p["alpha"], lora_dropout=p["dropout"],
                         target_modules=list(p["target_modules"]))
        inject_adapter_in_model(cfg, enc)
        freeze_base(enc)
