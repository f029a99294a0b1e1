"""The torch side of BPR: user/item embeddings trained with the pairwise BPR loss (imported lazily)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import nn


class BPRNet(pl.LightningModule):
    """Matrix factorisation: score(u, i) = <user_emb[u], item_emb[i]>, loss -log sigmoid(pos - neg)."""

    def __init__(
        self, n_users: int, n_items: int, embedding_dim: int, lr: float, reg: float, weight_decay: float,
        init_std: float, sparse: bool, finetune: Any = None,
    ) -> None:
        super().__init__()
        self.user_emb = nn.Embedding(n_users, embedding_dim, sparse=sparse)
        self.item_emb = nn.Embedding(n_items, embedding_dim, sparse=sparse)
        nn.init.normal_(self.user_emb.weight, std=init_std)
        nn.init.normal_(self.item_emb.weight, std=init_std)
        self.lr, self.reg, self.weight_decay, self.sparse = lr, reg, weight_decay, sparse
        self.finetune = finetune  # decides which parameters the optimiser gets

    def training_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> torch.Tensor:
        users, pos, neg = batch  # (B,), (B,), (B, n_neg)
        u = self.user_emb(users)  # (B, d)
        items = self.item_emb(torch.cat([pos.unsqueeze(1), neg], dim=1))  # (B, 1 + n_neg, d): one lookup
        scores = (items * u.unsqueeze(1)).sum(-1)  # (B, 1 + n_neg); cheaper than bmm for d-vectors
        loss = -F.logsigmoid(scores[:, :1] - scores[:, 1:]).mean()
        if self.reg > 0:  # L2 on the embeddings in the batch (works with sparse gradients)
            loss = loss + self.reg * (u.pow(2).sum() + items.pow(2).sum()) / len(users)
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        params = (self.finetune.trainable_parameters(self) if self.finetune is not None
                  else [p for p in self.parameters() if p.requires_grad])
        if self.sparse:
            return torch.optim.SparseAdam(params, lr=self.lr)
        return torch.optim.Adam(params, lr=self.lr, weight_decay=self.weight_decay)

    @torch.no_grad()
    def score(self, users: np.ndarray) -> np.ndarray:
        """(len(users), n_items) dot-product scores as float32 numpy."""
        idx = torch.as_tensor(np.asarray(users), dtype=torch.long, device=self.user_emb.weight.device)
        return (self.user_emb.weight[idx] @ self.item_emb.weight.T).float().cpu().numpy()
