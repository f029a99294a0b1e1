"""The torch side of the two-tower text model (imported lazily).

Item tower: v_i = normalize(W f_i), f_i the text encoder's embedding of item i (the frozen cache, or, with the
encoder in the network, a memory bank of its latest outputs plus this step's fresh encodings), W a square
matrix initialised to the identity (so before training every score is the frozen content model's cosine).
User tower: the mean of the item vectors of the user's training history, normalised. Score: u . v_j / tau.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from recux.batches import EpochBatches
from recux.plugins.models._text_net import TextEncoderNet


class SampledPairs(EpochBatches):
    """Each epoch: ``epoch_pairs`` training (user, item) pairs drawn uniformly without replacement (all of
    them when None), in shuffled batches of (users, items) LongTensors."""

    def __init__(self, users: np.ndarray, items: np.ndarray, batch_size: int, seed: int,
                 epoch_pairs: int | None) -> None:
        n_pairs = len(users)
        super().__init__(n_pairs if epoch_pairs is None else min(int(epoch_pairs), n_pairs), batch_size, seed)
        self.n_pairs = n_pairs
        self.users = torch.as_tensor(np.asarray(users), dtype=torch.long)
        self.items = torch.as_tensor(np.asarray(items), dtype=torch.long)

    def _epoch(self, perm: torch.Tensor, generator: torch.Generator):
        chosen = torch.randperm(self.n_pairs, generator=generator)[:self.n][perm]  # same draw on every rank
        for idx in self._chunks(chosen):
            yield self.users[idx], self.items[idx]


class TwoTowerNet(TextEncoderNet):

    def __init__(self, feats: np.ndarray, history: sp.csr_matrix, trained: np.ndarray, temperature: float,
                 optimizer: dict[str, Any], scheduler: dict[str, Any] | None = None, finetune: Any = None,
                 encoder: Any = None, text: Any = None, texts: list[str] | None = None,
                 encode_per_step: int = 256) -> None:
        """history: (n_users x n_items) training interaction counts; trained: item codes with training
        interactions (the softmax's candidates)."""
        super().__init__(feats, optimizer, scheduler, finetune, encoder, text, texts, encode_per_step)
        dim = feats.shape[1]
        self.proj = nn.Linear(dim, dim, bias=False)
        nn.init.eye_(self.proj.weight)
        self.register_buffer("trained", torch.as_tensor(np.asarray(trained), dtype=torch.long))
        self.history = sp.csr_matrix(history, dtype=np.float32)
        self.temperature = float(temperature)

    # -- towers
    def item_vectors(self, idx: torch.Tensor | None = None, fresh: torch.Tensor | None = None) -> torch.Tensor:
        feats = self.feats if idx is None else self.feats.index_copy(0, idx, fresh.to(self.feats.dtype))
        return F.normalize(self.proj(feats), dim=-1)

    def _history_rows(self, users: np.ndarray) -> torch.Tensor:
        rows = self.history[users].tocoo()
        index = torch.as_tensor(np.vstack([rows.row, rows.col]), dtype=torch.long)
        return torch.sparse_coo_tensor(index, torch.as_tensor(rows.data), rows.shape, device=self.feats.device,
                                       check_invariants=False)

    def user_vectors(self, users: np.ndarray, items: torch.Tensor, leave_out: torch.Tensor | None = None
                     ) -> torch.Tensor:
        """Normalised mean of the users' history item vectors (less each user's ``leave_out`` item once)."""
        total = torch.sparse.mm(self._history_rows(users), items)
        if leave_out is not None:
            total = total - items[leave_out]
        return F.normalize(total, dim=-1)

    # -- training
    def _fresh(self, targets: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """The candidates encoded with gradients: the batch's distinct targets, then uniform draws from the
        trained items up to encode_per_step (sorted codes); None without an encoder in the network."""
        if self.encoder is None:
            return None, None
        idx = torch.unique(targets)
        extra = self.encode_per_step - len(idx)
        if extra > 0:
            draws = self.trained[torch.randint(len(self.trained), (extra,), device=idx.device)]
            idx = torch.unique(torch.cat([idx, draws]))
        fresh = self.text.forward(self.encoder, [self.texts[i] for i in idx.tolist()])
        self.timing["encoded_per_step"] += len(idx)
        return idx, fresh

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        """Softmax of u . v_j / tau, u the user's history profile without the target (leave-one-out), the
        user's other training items masked from the negatives. Candidates: every trained item (frozen), or,
        with the encoder in the loop, only the items encoded this step (the batch's targets plus uniform
        draws: mixed negative sampling, Yang et al. 2020) — scoring fresh positives against stale bank
        negatives would let the encoder cut the loss by shifting every fresh output at once."""
        users, targets = batch
        idx, fresh = self._fresh(targets)
        vecs = self.item_vectors(idx, fresh)
        u = self.user_vectors(users.cpu().numpy(), vecs, leave_out=targets)
        cand = self.trained if idx is None else idx
        logits = u @ vecs[cand].T / self.temperature
        own = torch.as_tensor(self.history[users.cpu().numpy()][:, cand.cpu().numpy()].toarray() > 0,
                              device=logits.device)
        pos = torch.searchsorted(cand, targets)
        own[torch.arange(len(users)), pos] = False
        loss = F.cross_entropy(logits.masked_fill(own, float("-inf")), pos)
        self.keep_in_bank(idx, fresh)
        return self.regularized(loss)

    # -- scoring
    @torch.no_grad()
    def score(self, users: np.ndarray) -> np.ndarray:
        """(len(users), n_items) cosine scores over every item with a text, trained or not."""
        self.refresh_bank()
        was = self.training
        self.eval()
        vecs = self.item_vectors()
        out = self.user_vectors(np.asarray(users), vecs) @ vecs.T
        self.train(was)
        return out.float().cpu().numpy()
