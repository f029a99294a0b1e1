"""Magnitude pruning of a serving module, per weight matrix.

Every nn.Embedding and nn.Linear weight (BPR's user/item tables, LightGCN's final embeddings, SASRec's token
and position embeddings and its attention/feed-forward weights) loses its round(sparsity x size) smallest-
magnitude entries (set to zero; ``recux.compression.magnitude_prune``), so each matrix has exactly that
sparsity. Biases and layer norms are kept. The pruned matrices are stored as a bit mask + the non-zero values
when that is smaller (any sparsity above 1/32); scores are computed from the dense float32 matrices with their
zeros (no sparse kernels: on these small matrices they would be slower).
"""

from __future__ import annotations

from typing import Any

from recux.compression import Compressor, weight_modules
from recux.errors import ConfigError
from recux.registry import register
from recux.tensor_codecs import magnitude_prune, sparse_or_dense


@register("compress", "prune")
class Prune(Compressor):
    """Magnitude pruning: each weight matrix keeps its largest (1 - sparsity) share of entries."""

    name = "prune"

    def __init__(self, sparsity: float = 0.5) -> None:
        if not isinstance(sparsity, (int, float)) or isinstance(sparsity, bool) or not 0.0 < float(sparsity) < 1.0:
            raise ConfigError(f"compress.sparsity={sparsity!r} must be a fraction strictly between 0 and 1 (the "
                              "share of each weight matrix set to zero), e.g. compress.sparsity=0.5")
        self.sparsity = float(sparsity)

    def params(self) -> dict[str, Any]:
        return {"sparsity": self.sparsity}

    def compress(self, module: Any) -> dict[str, dict[str, Any]]:
        import torch

        encoded = {}
        for name, m in weight_modules(module):
            pruned = magnitude_prune(m.weight, self.sparsity)
            with torch.no_grad():
                m.weight.copy_(pruned)
            encoded[f"{name}.weight"] = sparse_or_dense(pruned)
        return encoded
