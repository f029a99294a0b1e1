"""What the recommenders over a text encoder share (LM-SASRec, the two-tower model): taking the encoder, item
texts and cached embeddings from the FitContext, counting trainable parameters of the encoder and the rest, the
run's cost record, and rebuilding the encoder on load."""

from __future__ import annotations

import resource
from typing import Any

import numpy as np

from recux.errors import ConfigError
from recux.model import FitContext


def take_text(ctx: FitContext, model: str) -> tuple[Any, list[str], np.ndarray]:
    """(encoder, item texts, frozen item embeddings) of the run, checked against the item code space."""
    n = ctx.split.train.n_items
    if ctx.encoder is None or ctx.item_texts is None or ctx.item_embeddings is None:
        raise ConfigError(f"{model} needs item texts and a text encoder: FitContext.encoder, item_texts and "
                          "item_embeddings are unset (run it through the pipeline with an encoder config, "
                          "e.g. encoder=minilm, on a dataset with item text)")
    if len(ctx.item_texts) != n:
        raise ConfigError(f"{model}: {len(ctx.item_texts)} item texts for {n} item codes; the item-text "
                          "template must give one text per item code")
    feats = np.asarray(ctx.item_embeddings(), dtype=np.float32)
    if feats.shape[0] != n:
        raise ConfigError(f"{model}: item_embeddings() has {feats.shape[0]} rows for {n} item codes")
    return ctx.encoder, list(ctx.item_texts), feats


def parameter_counts(net: Any, text: Any) -> dict[str, int]:
    """Total and trainable parameters of the encoder and of the rest of ``net`` (frozen: the cached encoder's
    size, none of it trained)."""
    enc_ids = {id(p) for p in net.encoder.parameters()} if net.encoder is not None else set()
    count = {"encoder_total": 0, "encoder_trainable": 0, "rest_total": 0, "rest_trainable": 0}
    for p in net.parameters():
        part = "encoder" if id(p) in enc_ids else "rest"
        count[f"{part}_total"] += p.numel()
        count[f"{part}_trainable"] += p.numel() if p.requires_grad else 0
    if net.encoder is None and text is not None:
        count["encoder_total"] = sum(p.numel() for p in text._frozen().parameters())
    return {**count, "trainable": count["encoder_trainable"] + count["rest_trainable"],
            "total": count["encoder_total"] + count["rest_total"]}


def cost_record(net: Any, text: Any, finetune: Any, encode_per_step: int, loss: str) -> dict[str, Any]:
    """Parameters, seconds per epoch and per step, texts encoded per step, peak memory, the strategy's
    settings and the training scheme (``net.timing`` is filled by the network's hooks)."""
    t = net.timing
    steps = max(1, t["steps"])
    return {
        "params": parameter_counts(net, text),
        "seconds_per_epoch": float(np.mean(t["epoch_seconds"])) if t["epoch_seconds"] else None,
        "seconds_per_step": t["step_seconds"] / steps,
        "epochs": len(t["epoch_seconds"]),
        "texts_encoded_per_step": t["encoded_per_step"] / steps,
        "peak_memory_mb": peak_memory_mb(),
        "finetune": None if finetune is None else finetune.describe(),
        "scheme": (f"frozen cached embeddings, {loss}" if net.encoder is None else
                   f"encoder in the loop: <= {encode_per_step} item texts encoded with gradients per step, "
                   f"others from a memory bank; {loss}; catalogue re-encoded before each validation and for "
                   "test"),
    }


def rebuild_encoder(identity: dict[str, Any] | None) -> Any:
    """The encoder plugin a saved model recorded (None if it recorded none)."""
    if identity is None:
        return None
    from recux import registry

    return registry.build("encoder", identity["encoder"], {k: v for k, v in identity.items() if k != "encoder"})


def peak_memory_mb() -> float:
    try:
        import torch

        if torch.cuda.is_available() and torch.cuda.max_memory_allocated() > 0:
            return torch.cuda.max_memory_allocated() / 2**20
    except ImportError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # process peak RSS (Linux: KiB)
