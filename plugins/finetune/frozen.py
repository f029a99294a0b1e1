"""Frozen text encoder: the pre-trained encoder's weights never change. A model uses its cached embeddings
(``FitContext.item_embeddings``) as fixed item features; only the model's own parts (projection, ID
embeddings, sequence transformer) train. If a network does hold the encoder, every encoder weight is frozen."""

from __future__ import annotations

from typing import Any

from recux.plugins.finetune._text import TextStrategy
from recux.registry import register


@register("finetune", "frozen")
class Frozen(TextStrategy):
    """Encoder fixed (embeddings from the cache); the rest of the network trains from its initialisation."""

    name = "frozen"
    encoder_in_net = False

    def prepare(self, module: Any, ctx: Any = None) -> None:
        for p in module.parameters():
            p.requires_grad_(True)
        enc = getattr(module, "encoder", None)
        if enc is not None:
            for p in enc.parameters():
                p.requires_grad_(False)
