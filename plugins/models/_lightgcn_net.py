"""The torch side of LightGCN (imported lazily): ego embeddings, propagation over the normalised user-item
graph held as one sparse CSR tensor, and the BPR loss with L2 on the batch's ego embeddings."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from recux.module import RecuxModule, host_or_device
from recux.plugins.models._bpr_net import BPRLoss


def to_torch_csr(adj: sp.csr_matrix, device: torch.device | str | None = None) -> torch.Tensor:
    """A scipy CSR matrix as a float32 torch sparse CSR tensor (indices sorted, as scipy's are; int32 indices
    when they fit: ~15% faster products on CPU than int64)."""
    adj = sp.csr_matrix(adj, dtype=np.float32)
    adj.sort_indices()
    index = np.int32 if max(adj.nnz, *adj.shape) < 2**31 - 1 else np.int64
    with warnings.catch_warnings():  # "sparse CSR support is in beta": nothing to act on
        warnings.simplefilter("ignore", UserWarning)
        t = torch.sparse_csr_tensor(
            torch.from_numpy(adj.indptr.astype(index)), torch.from_numpy(adj.indices.astype(index)),
            torch.from_numpy(adj.data), size=adj.shape, dtype=torch.float32, check_invariants=False,
        )
    return t if device is None else t.to(device)


def _layer_mean(adj: torch.Tensor, x: torch.Tensor, n_layers: int) -> torch.Tensor:
    """(x + A x + ... + A^L x) / (L + 1)."""
    acc = x.clone()
    for _ in range(n_layers):
        x = torch.sparse.mm(adj, x)
        acc.add_(x)
    return acc.div_(n_layers + 1)


class Propagate(torch.autograd.Function):
    """E = (1/(L+1)) sum_l A^l E0 for a *symmetric* A. The operator is symmetric too, so the backward is the
    same propagation applied to the incoming gradient: L sparse products with the same CSR. (Autograd through
    torch.sparse.mm transposes the CSR for every product: forward + backward ~6x slower on ML-100K.)"""

    @staticmethod
    def forward(ctx: Any, ego: torch.Tensor, adj: torch.Tensor, n_layers: int) -> torch.Tensor:
        ctx.adj, ctx.n_layers = adj, n_layers
        return _layer_mean(adj, ego, n_layers)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        return _layer_mean(ctx.adj, grad.contiguous(), ctx.n_layers), None, None


class LightGCNNet(RecuxModule):
    """LightGCN (He et al. 2020): score(u, i) = <e_u, e_i> with e = mean over layers 0..L of A^l E0, A the
    symmetric-normalised (user+item) adjacency. The adjacency is built once and kept per device (not a
    parameter, not in the state dict); the propagated embeddings are cached for scoring until the module
    returns to train mode or its weights are loaded."""

    def __init__(
        self, adjacency: sp.csr_matrix, n_users: int, n_items: int, embedding_dim: int, n_layers: int,
        reg: float, init_std: float, optimizer: dict[str, Any], finetune: Any = None,
        scheduler: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(optimizer, scheduler, finetune)
        if adjacency.shape != (n_users + n_items, n_users + n_items):
            raise ValueError(f"adjacency is {adjacency.shape}, expected {(n_users + n_items,) * 2}")
        self.n_users, self.n_items = n_users, n_items
        self.user_emb = nn.Embedding(n_users, embedding_dim)
        self.item_emb = nn.Embedding(n_items, embedding_dim)
        nn.init.normal_(self.user_emb.weight, std=init_std)
        nn.init.normal_(self.item_emb.weight, std=init_std)
        self.n_layers, self.reg = int(n_layers), float(reg)
        self._adj_cpu = to_torch_csr(adjacency)
        self._adj: dict[torch.device, torch.Tensor] = {self._adj_cpu.device: self._adj_cpu}
        self._final: tuple[torch.Tensor, torch.Tensor] | None = None

    # ------------------------------------------------------------------ graph

    def adjacency(self) -> torch.Tensor:
        """The normalised adjacency on the embeddings' device (copied there once)."""
        device = self.user_emb.weight.device
        if device not in self._adj:
            self._adj[device] = self._adj_cpu.to(device)
        return self._adj[device]

    def propagate(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Final (user, item) embeddings: the layer mean of the propagated ego embeddings."""
        ego = torch.cat([self.user_emb.weight, self.item_emb.weight], dim=0)
        if self.n_layers == 0:
            out = ego
        elif torch.is_grad_enabled() and ego.requires_grad:
            out = Propagate.apply(ego, self.adjacency(), self.n_layers)
        else:
            out = _layer_mean(self.adjacency(), ego, self.n_layers)
        return out[:self.n_users], out[self.n_users:]

    # ------------------------------------------------------------------ cache invalidation

    def train(self, mode: bool = True) -> LightGCNNet:
        if mode:
            self._final = None  # weights are about to change
        return super().train(mode)

    def load_state_dict(self, state_dict: Any, strict: bool = True, assign: bool = False) -> Any:
        self._final = None
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

    # ------------------------------------------------------------------ training

    def training_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> torch.Tensor:
        users, pos, neg = batch  # (B,), (B,), (B, n_neg)
        self._final = None
        ego = torch.cat([self.user_emb.weight, self.item_emb.weight], dim=0)
        final = Propagate.apply(ego, self.adjacency(), self.n_layers) if self.n_layers else ego
        item_rows = torch.cat([pos.unsqueeze(1), neg], dim=1).reshape(-1) + self.n_users  # (B * (1 + n_neg),)
        u = final.index_select(0, users)
        items = final.index_select(0, item_rows).view(len(users), -1, u.shape[1])
        loss = BPRLoss.apply(u, items, 0.0)  # mean_k -log sigmoid(<u, pos> - <u, neg_k>)
        if self.reg:  # the paper's L2 on the batch's ego (layer-0) embeddings: reg * sum of squares / 2B
            u0 = ego.index_select(0, users).reshape(-1)
            i0 = ego.index_select(0, item_rows).reshape(-1)
            loss = loss + self.reg * 0.5 * (torch.dot(u0, u0) + torch.dot(i0, i0)) / len(users)
        return loss

    # ------------------------------------------------------------------ scoring

    @torch.no_grad()
    def final_embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Propagated embeddings; cached while in eval mode (validation scores user blocks many times)."""
        if self._final is not None and not self.training:
            return self._final
        final = self.propagate()
        if not self.training:
            self._final = final
        return final

    @torch.no_grad()
    def score(self, users: np.ndarray) -> np.ndarray:
        """(len(users), n_items) dot-product scores of the final embeddings as float32 numpy (on a GPU the
        device tensor: the ranking takes its top-k there)."""
        user_final, item_final = self.final_embeddings()
        idx = torch.as_tensor(np.asarray(users), dtype=torch.long, device=user_final.device)
        return host_or_device(user_final[idx] @ item_final.T)
