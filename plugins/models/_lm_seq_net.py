"""The torch side of LM-SASRec (imported lazily): SASRec's causal transformer over item vectors that are a
linear projection of text-encoder embeddings (plus an optional ID embedding).

Item table: R = [0; proj(F) + E_id], F = (n_items, dim) item text embeddings. ``feats`` holds F: the frozen
cached embeddings, or (encoder in the network) a memory bank of the encoder's latest outputs. Sequence
inputs read R; logits are the last hidden states against R[1:] (softmax over the whole catalogue).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from recux.plugins.models._seq_net import SeqEncoder
from recux.plugins.models._text_net import TextEncoderNet


class LMSASRecNet(TextEncoderNet):
    """``seq``: a SeqEncoder (its token table is the ID embedding, or padding only without IDs); ``proj``:
    dim -> hidden; ``encoder``: the text encoder module when the strategy trains it (None: frozen features);
    ``text``: the TextEncoder that runs it and ``texts`` the item texts (not saved as weights)."""

    def __init__(self, n_items: int, seq: SeqEncoder, feats: np.ndarray, id_embedding: bool,
                 optimizer: dict[str, Any], scheduler: dict[str, Any] | None = None, finetune: Any = None,
                 encoder: Any = None, text: Any = None, texts: list[str] | None = None,
                 encode_per_step: int = 256) -> None:
        super().__init__(feats, optimizer, scheduler, finetune, encoder, text, texts, encode_per_step)
        self.n_items, self.seq, self.id_embedding = n_items, seq, id_embedding
        self.proj = nn.Linear(feats.shape[1], seq.hidden)
        nn.init.trunc_normal_(self.proj.weight, std=1.0 / math.sqrt(feats.shape[1]))
        nn.init.zeros_(self.proj.bias)
        self.register_buffer("seqs", torch.zeros(0, 1, dtype=torch.long), persistent=False)

    # -- item vectors
    def item_table(self, idx: torch.Tensor | None = None, fresh: torch.Tensor | None = None) -> torch.Tensor:
        """(n_items + 1, hidden): row 0 padding; rows idx + 1 use ``fresh`` features (with gradients)."""
        feats = self.feats if idx is None else self.feats.index_copy(0, idx, fresh.to(self.feats.dtype))
        rep = self.proj(feats)
        if self.id_embedding:
            rep = rep + self.seq.tok.weight[1:self.n_items + 1]
        return torch.cat([rep.new_zeros(1, rep.shape[1]), rep])

    def run(self, tokens: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
        """SeqEncoder's forward with item vectors from ``table`` instead of its token embedding."""
        return self.seq.encode(tokens, table[tokens])

    # -- training
    def _fresh(self, batch: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Encode (with gradients) at most encode_per_step of the batch's distinct items; None without an
        encoder in the network."""
        if self.encoder is None:
            return None, None
        items = torch.unique(batch[batch > 0]) - 1
        if len(items) > self.encode_per_step:
            items = items[torch.randperm(len(items), device=items.device)[:self.encode_per_step]]
        fresh = self.text.forward(self.encoder, [self.texts[i] for i in items.tolist()])
        self.timing["encoded_per_step"] += len(items)
        return items, fresh

    def training_step(self, batch: torch.Tensor, batch_idx: int) -> torch.Tensor:
        idx, fresh = self._fresh(batch)
        table = self.item_table(idx, fresh)
        inp, tgt = batch[:, :-1], batch[:, 1:]
        h = self.run(inp, table)
        sel = (tgt != 0) & (inp != 0)
        loss = F.cross_entropy(h[sel] @ table[1:].T, tgt[sel] - 1)
        self.keep_in_bank(idx, fresh)
        return self.regularized(loss)

    # -- scoring
    def set_sequences(self, seqs: np.ndarray | torch.Tensor) -> None:
        self.seqs = torch.as_tensor(seqs, dtype=torch.long, device=self.seqs.device)

    @torch.no_grad()
    def score(self, users: np.ndarray) -> np.ndarray:
        """(len(users), n_items) float32 scores; re-encodes the catalogue first if the encoder changed."""
        if len(self.seqs) == 0:
            raise RuntimeError("no sequences to score from: call set_sequences first")
        idx = torch.as_tensor(np.asarray(users), dtype=torch.long, device=self.seqs.device)
        return self.score_sequences(self.seqs[idx]).float().cpu().numpy()

    @torch.no_grad()
    def score_sequences(self, seqs: torch.Tensor) -> torch.Tensor:
        """(len(seqs), n_items) scores of token rows (eval mode; the bank refreshed first if stale)."""
        self.refresh_bank()
        was = self.training
        self.eval()
        table = self.item_table()
        out = self.run(seqs, table)[:, -1] @ table[1:].T
        self.train(was)
        return out

    # -- explanations (gradient x input on the input item vectors; plugins/explainers/gradient.py)
    def item_inputs(self, seqs: torch.Tensor) -> torch.Tensor:
        """(B, L, hidden) the item vectors the transformer reads for token rows (before position and scale)."""
        self.refresh_bank()
        return self.item_table()[seqs]

    def score_from_inputs(self, seqs: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        """Scores of token rows whose input item vectors are ``inputs`` (output vectors unchanged)."""
        return self.seq.encode(seqs, inputs)[:, -1] @ self.item_table()[1:].T
