"""The torch side of Mult-VAE (imported lazily): the encoder/decoder network with its annealed ELBO, and
batches of users' training rows as dense multi-hot tensors built from the CSR arrays with tensor ops."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from recux.batches import EpochBatches
from recux.errors import ConfigError
from recux.module import RecuxModule


def dense_rows(indptr: torch.Tensor, indices: torch.Tensor, users: torch.Tensor, n_items: int) -> torch.Tensor:
    """(len(users), n_items) float32 multi-hot rows of a CSR matrix given as (indptr, indices) tensors."""
    users = users.to(indptr.device)
    starts = indptr[users]
    lens = indptr[users + 1] - starts
    total = int(lens.sum())
    out = torch.zeros(len(users), n_items, dtype=torch.float32, device=indptr.device)
    if total == 0:
        return out
    row = torch.repeat_interleave(torch.arange(len(users), device=indptr.device), lens)
    first = torch.repeat_interleave(torch.cumsum(lens, 0) - lens, lens)  # offset of each entry's row start
    pos = torch.repeat_interleave(starts, lens) + torch.arange(total, device=indptr.device) - first
    out[row, indices[pos]] = 1.0
    return out


class UserRowBatches(EpochBatches):
    """Shuffled batches of users' training rows, each a dense (batch, n_items) multi-hot float tensor.

    Each ``iter()`` is one epoch over the users with at least one training item; seeding and rank slicing:
    see ``recux.batches.EpochBatches``.
    """

    def __init__(self, indptr: np.ndarray, indices: np.ndarray, n_items: int, batch_size: int = 128,
                 seed: int = 0) -> None:
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        self.indptr = torch.as_tensor(np.asarray(indptr, dtype=np.int64))
        self.indices = torch.as_tensor(np.asarray(indices, dtype=np.int64))
        self.users = torch.nonzero(self.indptr[1:] > self.indptr[:-1]).flatten()
        if len(self.users) == 0:
            raise ConfigError("no user has training interactions to build batches from; check the split")
        super().__init__(len(self.users), batch_size, seed)
        self.n_items = int(n_items)

    def _epoch(self, perm: torch.Tensor, gen: torch.Generator) -> Iterator[torch.Tensor]:
        for idx in self._chunks(perm):
            yield dense_rows(self.indptr, self.indices, self.users[idx], self.n_items)


def _mlp(dims: list[int]) -> nn.Sequential:
    """Linear layers with tanh between them (none after the last); Xavier weights, N(0, 0.001) biases."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(dims[:-1], dims[1:], strict=True)):
        lin = nn.Linear(a, b)
        nn.init.xavier_normal_(lin.weight)
        nn.init.normal_(lin.bias, std=0.001)
        layers.append(lin)
        if i < len(dims) - 2:
            layers.append(nn.Tanh())
    return nn.Sequential(*layers)


class MultVAENet(RecuxModule):
    """Mult-VAE (Liang et al. 2018): q(z|x) = N(mu, sigma) from the L2-normalised, dropped-out multi-hot row;
    p(x|z) = multinomial(softmax(decoder(z))). Loss: -sum_i x_i log softmax_i + beta * KL, with
    beta = min(anneal_cap, step / total_anneal_steps) (beta = anneal_cap when total_anneal_steps is 0)."""

    def __init__(
        self, n_items: int, hidden_dims: list[int], latent_dim: int, dropout: float, total_anneal_steps: int,
        anneal_cap: float, optimizer: dict[str, Any], finetune: Any = None,
        scheduler: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(optimizer, scheduler, finetune)
        self.n_items, self.latent_dim = int(n_items), int(latent_dim)
        self.encoder = _mlp([n_items, *hidden_dims, 2 * latent_dim])
        self.decoder = _mlp([latent_dim, *reversed(hidden_dims), n_items])
        self.drop = nn.Dropout(dropout)
        self.total_anneal_steps, self.anneal_cap = int(total_anneal_steps), float(anneal_cap)
        self.history: tuple[torch.Tensor, torch.Tensor] | None = None  # CSR (indptr, indices) that score reads

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.encoder(self.drop(F.normalize(x, dim=1)))
        return h[:, :self.latent_dim], h[:, self.latent_dim:]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(logits, mu, logvar); z is sampled in training mode and is the mean otherwise."""
        mu, logvar = self.encode(x)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar) if self.training else mu
        return self.decoder(z), mu, logvar

    def beta(self) -> float:
        if self.total_anneal_steps <= 0:
            return self.anneal_cap
        return min(self.anneal_cap, self.global_step / self.total_anneal_steps)

    def training_step(self, batch: torch.Tensor, batch_idx: int) -> torch.Tensor:
        logits, mu, logvar = self(batch)
        nll = -(F.log_softmax(logits, dim=1) * batch).sum(1).mean()
        kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(1).mean()
        return nll + self.beta() * kl

    def set_history(self, indptr: np.ndarray, indices: np.ndarray) -> None:
        """The users x items rows (CSR arrays) that ``score`` encodes: the training matrix."""
        self.history = (torch.as_tensor(np.asarray(indptr, dtype=np.int64)),
                        torch.as_tensor(np.asarray(indices, dtype=np.int64)))

    @torch.no_grad()
    def score(self, users: np.ndarray) -> np.ndarray:
        """(len(users), n_items) float32 decoder logits of the users' history rows (z = mu, no dropout)."""
        if self.history is None:
            raise RuntimeError("MultVAENet.score needs set_history(indptr, indices) first")
        was_training = self.training
        self.eval()
        device = self.decoder[-1].weight.device
        indptr, indices = (t.to(device) for t in self.history)
        users_t = torch.as_tensor(np.asarray(users, dtype=np.int64), device=device)
        logits, _, _ = self(dense_rows(indptr, indices, users_t, self.n_items))
        self.train(was_training)
        return logits.float().cpu().numpy()
