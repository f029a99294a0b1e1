"""The torch side shared by SASRec and BERT4Rec (imported lazily): a pre-LN transformer encoder over
left-padded token sequences, and a LightningModule base that scores users from a sequence buffer.

Tokens: 0 is padding, item code c is token c + 1; BERT4Rec adds a [MASK] token n_items + 1.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from recux.module import RecuxModule


class Block(nn.Module):
    """Pre-LN transformer block: x + drop(attn(LN(x))), then x + drop(FFN(LN(x))) with GELU (SDPA attention;
    attention probabilities dropped with ``attn_dropout``)."""

    def __init__(self, hidden: int, n_heads: int, dropout: float, attn_dropout: float, inner: int) -> None:
        super().__init__()
        if hidden % n_heads:
            raise ValueError(f"hidden size {hidden} is not divisible by n_heads {n_heads}")
        self.n_heads, self.attn_dropout = n_heads, attn_dropout
        self.ln1 = nn.LayerNorm(hidden)
        self.qkv = nn.Linear(hidden, 3 * hidden)
        self.proj = nn.Linear(hidden, hidden)
        self.ln2 = nn.LayerNorm(hidden)
        self.ff1 = nn.Linear(hidden, inner)
        self.ff2 = nn.Linear(inner, hidden)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(b, n, 3, self.n_heads, d // self.n_heads).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed,
                                           dropout_p=self.attn_dropout if self.training else 0.0)
        x = x + self.drop(self.proj(a.transpose(1, 2).reshape(b, n, d)))
        return x + self.drop(self.ff2(F.gelu(self.ff1(self.ln2(x)))))


class SeqEncoder(nn.Module):
    """Token + learned position embeddings, transformer blocks, final LayerNorm -> (B, L, hidden).

    Positions count from the right edge of the (left-padded) window, so the most recent item always has the
    same position embedding. Attention never reads padding; a padding query attends to itself only (keeps
    softmax finite). ``causal``: position t reads positions <= t (SASRec); otherwise all (BERT4Rec).
    """

    def __init__(self, n_tokens: int, max_len: int, hidden: int, n_layers: int, n_heads: int, dropout: float,
                 attn_dropout: float, causal: bool, inner_size: int = 256, init_std: float = 0.02) -> None:
        super().__init__()
        self.causal, self.max_len, self.hidden = causal, max_len, hidden
        self.tok = nn.Embedding(n_tokens, hidden, padding_idx=0)
        self.pos = nn.Embedding(max_len, hidden)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(Block(hidden, n_heads, dropout, attn_dropout, inner_size)
                                    for _ in range(n_layers))
        self.ln = nn.LayerNorm(hidden)
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.trunc_normal_(m.weight, std=init_std, a=-2 * init_std, b=2 * init_std)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)
        with torch.no_grad():
            self.tok.weight[0].zero_()

    def attention_mask(self, seq: torch.Tensor) -> torch.Tensor:
        """(B, 1, L, L) bool: query q may read key k."""
        n = seq.shape[1]
        real = (seq != 0)[:, None, None, :]  # keys
        pos = torch.arange(n, device=seq.device)  # index comparisons, not eye/tril: those export to ONNX ops
        allowed = real | (pos[:, None] == pos[None, :])  # (EyeLike, Trilu) onnxruntime lacks for booleans
        if self.causal:
            allowed = allowed & (pos[:, None] >= pos[None, :])
        return allowed

    def forward(self, seq: torch.Tensor) -> torch.Tensor:
        return self.encode(seq, self.tok(seq))

    def encode(self, seq: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """The forward pass with the (B, L, hidden) input item vectors given (``tok(seq)`` in ``forward``;
        LM-SASRec's text-derived vectors; explanations' differentiable inputs); ``seq`` gives the padding."""
        n = seq.shape[1]
        if n > self.max_len:
            raise ValueError(f"sequence length {n} exceeds max_len {self.max_len}")
        pos = self.pos.weight[self.max_len - n:]  # right-aligned positions
        x = self.drop(items * math.sqrt(self.hidden) + pos)
        x = x * (seq != 0).unsqueeze(-1)  # padding carries nothing
        allowed = self.attention_mask(seq)
        for block in self.blocks:
            x = block(x, allowed)
        return self.ln(x)


class SeqNet(RecuxModule):
    """Base module: an encoder (the optimiser comes from RecuxModule's spec), and
    ``score(users)`` = last position's hidden state against every item's output embedding.

    ``seqs`` (n_users x L tokens, set by ``set_sequences``) is what users are scored from; it is a
    non-persistent buffer, so checkpoints hold weights only.
    """

    def __init__(self, n_items: int, encoder: SeqEncoder, optimizer: dict[str, Any],
                 scheduler: dict[str, Any] | None = None, finetune: Any = None,
                 num_threads: int | None = None) -> None:
        super().__init__(optimizer, scheduler, finetune)
        self.n_items, self.encoder = n_items, encoder
        self.num_threads = num_threads
        self.register_buffer("seqs", torch.zeros(0, 1, dtype=torch.long), persistent=False)

    def on_train_epoch_start(self) -> None:
        # The validator's numba-parallel kernels reset OpenMP's thread count (torch then runs on every
        # core, 4x slower when the cores are shared): re-apply the fit's count each epoch.
        if self.num_threads:
            torch.set_num_threads(int(self.num_threads))

    def set_sequences(self, seqs: np.ndarray | torch.Tensor) -> None:
        self.seqs = torch.as_tensor(seqs, dtype=torch.long, device=self.seqs.device)

    def item_weights(self) -> torch.Tensor:
        """(n_items, hidden) output embeddings of item codes 0..n_items-1 (tied to the input tokens)."""
        return self.encoder.tok.weight[1:self.n_items + 1]

    def item_bias(self) -> torch.Tensor | None:
        return None

    def logits(self, h: torch.Tensor) -> torch.Tensor:
        out = h @ self.item_weights().T
        bias = self.item_bias()
        return out if bias is None else out + bias

    @torch.no_grad()
    def score_sequences(self, seqs: torch.Tensor) -> torch.Tensor:
        return self.logits(self.encoder(seqs)[:, -1])

    # -- explanations (gradient x input on the input item vectors; plugins/explainers/gradient.py)
    def item_inputs(self, seqs: torch.Tensor) -> torch.Tensor:
        """(B, L, hidden) the item vectors the transformer reads for token rows (before position and scale)."""
        return self.encoder.tok(seqs)

    def score_from_inputs(self, seqs: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        """Scores of token rows whose input item vectors are ``inputs`` (output vectors unchanged)."""
        return self.logits(self.encoder.encode(seqs, inputs)[:, -1])

    @torch.no_grad()
    def score(self, users: np.ndarray) -> np.ndarray:
        """(len(users), n_items) float32 scores from each user's row of ``seqs``."""
        if len(self.seqs) == 0:
            raise RuntimeError("no sequences to score from: call set_sequences first")
        idx = torch.as_tensor(np.asarray(users), dtype=torch.long, device=self.seqs.device)
        return self.score_sequences(self.seqs[idx]).float().cpu().numpy()


    def score_inputs(self, users: np.ndarray) -> dict[str, Any]:
        """The inputs of ``score_from`` for these users: their token rows (ONNX export and serving)."""
        idx = torch.as_tensor(np.asarray(users), dtype=torch.long, device=self.seqs.device)
        return {"seqs": self.seqs[idx].cpu().numpy()}

    def score_from(self, seqs: torch.Tensor) -> torch.Tensor:
        """``score`` as a torch function of the users' token rows (exportable)."""
        return self.logits(self.encoder(seqs)[:, -1])


class SASRecNet(SeqNet):
    """Causal next-item model: batch rows are (B, max_len + 1) windows; input = row[:, :-1], target =
    row[:, 1:], every position with a real input and target is a training example.

    loss "ce": softmax cross-entropy over the whole catalogue; "bce": binary cross-entropy of the target
    against one uniformly drawn negative item per position (the original SASRec objective).
    """

    def __init__(self, n_items: int, encoder: SeqEncoder, loss: str, **kw: Any) -> None:
        super().__init__(n_items, encoder, **kw)
        self.loss = loss

    def training_step(self, batch: torch.Tensor, batch_idx: int) -> torch.Tensor:
        inp, tgt = batch[:, :-1], batch[:, 1:]
        h = self.encoder(inp)
        sel = (tgt != 0) & (inp != 0)
        h, tgt = h[sel], tgt[sel]
        if self.loss == "ce":
            return F.cross_entropy(self.logits(h), tgt - 1)
        neg = torch.randint(1, self.n_items + 1, tgt.shape, device=tgt.device)
        emb = self.encoder.tok.weight
        pos_logit = (h * emb[tgt]).sum(-1)
        neg_logit = (h * emb[neg]).sum(-1)
        return (F.binary_cross_entropy_with_logits(pos_logit, torch.ones_like(pos_logit))
                + F.binary_cross_entropy_with_logits(neg_logit, torch.zeros_like(neg_logit)))


class BERT4RecNet(SeqNet):
    """Bidirectional cloze model: batches are (inputs, labels) with masked positions labelled; scoring
    reads the hidden state of a [MASK] appended after the user's items. Output = tied embeddings + a
    per-item bias (as in the original; without it ML-100K validation NDCG@10 drops from 0.118 to 0.087)."""

    def __init__(self, n_items: int, encoder: SeqEncoder, **kw: Any) -> None:
        super().__init__(n_items, encoder, **kw)
        self.out_bias = nn.Parameter(torch.zeros(n_items))

    def item_bias(self) -> torch.Tensor:
        return self.out_bias

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        inputs, labels = batch
        h = self.encoder(inputs)
        sel = labels != 0
        return F.cross_entropy(self.logits(h[sel]), labels[sel] - 1)
