"""The torch side of ``recux.compression.factor_scorer`` (imported lazily): a serving module that scores
score(u, i) = <user[u], item[i]> from two embedding tables."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn


class FactorScorer(nn.Module):
    """Two embedding tables (user, item factors) and their dot-product scores."""

    def __init__(self, user: torch.Tensor, item: torch.Tensor) -> None:
        super().__init__()
        self.user = nn.Embedding.from_pretrained(user.detach().float().clone(), freeze=True)
        self.item = nn.Embedding.from_pretrained(item.detach().float().clone(), freeze=True)

    @torch.no_grad()
    def score(self, users: np.ndarray) -> np.ndarray:
        """(len(users), n_items) float32 scores."""
        idx = torch.as_tensor(np.asarray(users), dtype=torch.long, device=self.user.weight.device)
        return (self.user.weight[idx] @ self.item.weight.T).float().cpu().numpy()

    def score_inputs(self, users: np.ndarray) -> dict[str, Any]:
        """The inputs of ``score_from`` for these users (ONNX export and serving)."""
        return {"users": np.asarray(users, dtype=np.int64)}

    def score_from(self, users: torch.Tensor) -> torch.Tensor:
        return self.user.weight[users] @ self.item.weight.T
