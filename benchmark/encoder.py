"""The text-encoder contract: turn item texts into vectors with a pre-trained language model.

An encoder plugin (kind ``encoder``, config group ``conf/encoder``) loads a model and its tokenizer lazily and
gives three things to the models that use text:

- ``embed(texts)``: frozen embeddings, (n, dim) float32, no gradients (the content model, the ``frozen``
  strategy, and the catalogue re-encode of fine-tuned models for validation and test);
- ``module()``: the underlying ``torch.nn.Module`` (a Hugging Face model) to place inside a network, where a
  fine-tuning strategy (LoRA, AdaLoRA, full) acts on it in place;
- ``forward(module, texts)``: tokenise and pool with a given module, keeping gradients (training steps).

``identity()`` names everything that changes the vectors (model, revision or folder, pooling, max length,
dtype); the embedding cache keys on it, on the item-text template and on the data.
Heavy imports (torch, transformers) happen inside methods only, so listing plugins stays fast.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import numpy as np


class TextEncoder(ABC):
    """Base class of encoder plugins."""

    @abstractmethod
    def identity(self) -> dict[str, Any]:
        """Every setting that changes the vectors (for cache keys and results.json)."""

    @abstractmethod
    def module(self) -> Any:
        """A fresh trainable copy of the encoder network (``torch.nn.Module``)."""

    @abstractmethod
    def forward(self, module: Any, texts: Sequence[str]) -> Any:
        """(len(texts), dim) pooled float tensor from ``module``, with gradients where the module has them."""

    def embed(self, texts: Sequence[str], module: Any = None, batch_size: int | None = None) -> np.ndarray:
        """(len(texts), dim) float32 embeddings without gradients, in batches (``module``: default the
        pre-trained one)."""
        import torch

        module = module if module is not None else self._frozen()
        size = batch_size or getattr(self, "batch_size", 256)
        was_training = module.training
        module.eval()
        out = []
        with torch.inference_mode():
            for start in range(0, len(texts), size):
                out.append(self.forward(module, list(texts[start:start + size])).float().cpu().numpy())
        module.train(was_training)
        dim = out[0].shape[1] if out else 0
        return np.concatenate(out).astype(np.float32) if out else np.zeros((0, dim), np.float32)

    def _frozen(self) -> Any:
        if getattr(self, "_frozen_module", None) is None:
            self._frozen_module = self.module()
        return self._frozen_module
