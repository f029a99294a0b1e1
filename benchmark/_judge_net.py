"""The torch side of the language-model satisfaction judge (imported lazily by recux.lm_judge).

Prediction for user u and item i (f_j: the encoder's embedding of item j's text; H: u's training ratings less
(u, i) itself when (u, i) is a training rating, so a rating never predicts itself; n = |H|; rbar: the mean of
H's ratings):

    r_hat = a * base_ui + c + (A f_i) . z_u + w . f_i + sum_h beta_h * sum_{j in H} s^h_ij e_uj
    z_u   = n^(-1/2) * ( B sum_{j in H} (r_uj - rbar) f_j  +  D sum_{j in H} f_j )
    s^h_ij = softmax over j in H of gamma_h * cos(p_h * f_i, p_h * f_j)   (p_h: per-dimension weights)

base_ui is the biased-MF prediction (out-of-fold for training ratings), so the text part is a residual on top of
what ratings alone give: a = 1, c = 0, w = 0 at the start, A, B, D small. z_u is an asymmetric user factor
built from the texts of the user's rated items (the NSVD / SVD++ user representation of Paterek 2007 and Koren
2008, with text embeddings in place of free item factors), weighted by the user-centred ratings (liked vs
disliked) plus an unweighted taste term. The last term is a neighbourhood model on the base's errors (Koren
2008, "Factorization meets the neighborhood") with learned text similarity in place of rating co-occurrence:
e_uj = r_uj - base_uj is the (out-of-fold) base model's error on the user's rated item j, averaged with
attention on how similar j's text is to i's, in ``heads`` heads (head h: p_h starts at 1, plain cosine, plus
N(0, 0.5) noise for h > 0 so heads differ; gamma_h = 10 * 2^h, from broad to sharp; beta_h = 0).

With the encoder in the network (lora / full), each step encodes at most ``encode_per_step`` of the batch's
distinct target items WITH gradients (their f_i in the item terms); the history sums read a memory bank of the
encoder's latest outputs (Wu et al. 2018), re-encoded over the catalogue at the end of each epoch.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn


def _sparse(m: sp.csr_matrix) -> torch.Tensor:
    m = m.tocoo()
    idx = torch.as_tensor(np.vstack([m.row, m.col]), dtype=torch.long)
    return torch.sparse_coo_tensor(idx, torch.as_tensor(m.data, dtype=torch.float32), m.shape,
                                   check_invariants=True).coalesce()


class JudgeNet(nn.Module):
    pretrained_prefixes = ("encoder.",)

    def __init__(self, feats: np.ndarray, ratings: sp.csr_matrix, errors: sp.csr_matrix, rank: int = 32,
                 init: float = 0.01,
                 encoder: Any = None, text: Any = None, texts: list[str] | None = None,
                 encode_per_step: int = 64, seed: int = 0, heads: int = 1) -> None:
        """feats: (n_items, d) item text embeddings; ratings: (n_users x n_items) training ratings (CSR);
        errors: the same pattern holding the base model's out-of-fold error r - base of each rating."""
        super().__init__()
        gen = torch.Generator().manual_seed(int(seed))
        d = feats.shape[1]
        self.register_buffer("feats", torch.as_tensor(np.asarray(feats, np.float32)).clone())
        self.R = _sparse(ratings)
        binary = ratings.copy()
        binary.data[:] = 1.0
        self.C = _sparse(binary)
        self.register_buffer("E", torch.as_tensor(errors.toarray(), dtype=torch.float32))
        self.register_buffer("M", torch.as_tensor(binary.toarray(), dtype=torch.bool))
        self.register_buffer("n", torch.as_tensor(np.diff(ratings.indptr), dtype=torch.float32))
        self.register_buffer("sum_r", torch.as_tensor(np.asarray(ratings.sum(axis=1)).ravel(), dtype=torch.float32))
        self.a = nn.Parameter(torch.ones(()))
        self.c = nn.Parameter(torch.zeros(()))
        self.w = nn.Parameter(torch.zeros(d))
        self.A = nn.Parameter(torch.randn(rank, d, generator=gen) * init)
        self.B = nn.Parameter(torch.randn(rank, d, generator=gen) * init)
        self.D = nn.Parameter(torch.randn(rank, d, generator=gen) * init)
        noise = torch.randn(heads, d, generator=gen) * 0.5
        noise[0] = 0.0
        self.P = nn.Parameter(torch.ones(heads, d) + noise)
        self.gamma = nn.Parameter(10.0 * 2.0 ** torch.arange(heads, dtype=torch.float32))
        self.beta = nn.Parameter(torch.zeros(heads))
        self.encoder, self.text, self.texts, self.encode_per_step = encoder, text, texts, int(encode_per_step)

    def forward(self, users: torch.Tensor, items: torch.Tensor, base: torch.Tensor, own: torch.Tensor | None,
                fresh: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """Predicted ratings of (users, items); ``own``: the pair's training rating, or NaN where (u, i) is
        not a training rating (then nothing is left out); ``fresh``: (item codes, embeddings with gradients)."""
        bank = self.feats
        f_hist = bank[items]
        f_item = f_hist if fresh is None else bank.index_copy(0, fresh[0], fresh[1].to(bank.dtype))[items]
        agg_r = torch.sparse.mm(self.R, bank)[users]
        agg_c = torch.sparse.mm(self.C, bank)[users]
        loo = torch.zeros_like(base) if own is None else (~torch.isnan(own)).float()
        r_own = torch.nan_to_num(own if own is not None else base * 0, nan=0.0)
        agg_r = agg_r - (loo * r_own)[:, None] * f_hist
        agg_c = agg_c - loo[:, None] * f_hist
        n = self.n[users] - loo
        rbar = torch.where(n > 0, (self.sum_r[users] - loo * r_own) / n.clamp(min=1), torch.zeros_like(n))
        scale = n.clamp(min=1).rsqrt()[:, None]
        z = scale * ((agg_r - rbar[:, None] * agg_c) @ self.B.T + agg_c @ self.D.T)
        latent = ((f_item @ self.A.T) * z).sum(-1) + f_item @ self.w
        return self.a * base + self.c + latent + self.neighbours(users, items, f_item, loo)

    def neighbours(self, users: torch.Tensor, items: torch.Tensor, f_item: torch.Tensor, loo: torch.Tensor
                   ) -> torch.Tensor:
        """sum_h beta_h sum_{j in H} softmax_j(gamma_h cos(p_h * f_i, p_h * f_j)) e_uj (0 for an empty
        history)."""
        mask = self.M[users].clone()
        rows = torch.arange(len(users))
        mask[rows, items] = mask[rows, items] & (loo == 0)
        errors = self.E[users]
        out = torch.zeros(len(users), dtype=errors.dtype, device=errors.device)
        for h in range(self.P.shape[0]):
            g_all = torch.nn.functional.normalize(self.feats * self.P[h], dim=-1)
            g_i = torch.nn.functional.normalize(f_item * self.P[h], dim=-1)
            logits = (self.gamma[h] * (g_i @ g_all.T)).masked_fill(~mask, float("-inf"))
            att = torch.nan_to_num(torch.softmax(logits, dim=-1), nan=0.0)
            out = out + self.beta[h] * (att * errors).sum(-1)
        return out

    def fresh(self, items: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
        if self.encoder is None:
            return None
        idx = torch.unique(items)
        if len(idx) > self.encode_per_step:
            idx = idx[torch.randperm(len(idx))[:self.encode_per_step]]
        out = self.text.forward(self.encoder, [self.texts[i] for i in idx.tolist()])
        with torch.no_grad():
            self.feats[idx] = out.detach().to(self.feats.dtype)
        return idx, out

    @torch.no_grad()
    def refresh_bank(self) -> None:
        if self.encoder is not None:
            self.feats.copy_(torch.as_tensor(self.text.embed(self.texts, module=self.encoder)))

    def head_arrays(self) -> dict[str, np.ndarray]:
        """The head's weights and the final item features, as numpy (what a saved judge needs to predict)."""
        return {k: getattr(self, k).detach().cpu().numpy().astype(np.float32)
                for k in ("a", "c", "w", "A", "B", "D", "P", "gamma", "beta", "feats")}
