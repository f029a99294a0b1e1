"""LM-SASRec: SASRec whose item vectors come from text. Item i's vector is proj(f_i) (+ an ID embedding e_i
when ``id_embedding``), f_i the text encoder's embedding of the item's text, so an item never seen in
training still gets a vector from its text. The causal transformer and the full-softmax next-item loss are
SASRec's (Kang & McAuley 2018), as in text-based sequential recommenders such as UniSRec / Recformer.

Training scheme by fine-tuning strategy (recorded in ``describe()``):

- frozen (and scratch, which on this model means the same: the encoder is not in the network at all): f is
  the cached frozen embedding matrix ``FitContext.item_embeddings()``; only proj, the ID embeddings and the
  transformer train. Exact full softmax over the catalogue.
- lora / adalora / full: the encoder sits in the network (``net.encoder``) and the strategy changes it in
  place. Re-encoding the catalogue every step is unaffordable on CPU (MiniLM on ML-100K's 1,682 titles
  ~4 s), so each step encodes WITH GRADIENTS at most ``encode_per_step`` of the batch's distinct items (inputs
  and targets; a uniform random subset when there are more) and takes every other item's f from a memory
  bank (the encoder's latest output for it, no gradient; Wu et al. 2018's memory bank). The loss is still a
  softmax over the whole catalogue (every item is a negative); the encoder's gradient flows through the
  encoded subset only. The bank is refreshed by a full catalogue re-encode before every validation, after the
  fit (best weights), and is what test scoring uses.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from recux.errors import ConfigError
from recux.model import FitContext
from recux.plugins.models._sequential import SequentialRecommender
from recux.plugins.models._text_model import cost_record, rebuild_encoder, take_text
from recux.registry import register
from recux.sequences import last_items


@register("model", "lm_sasrec", training="lightning", protocol="sequential",
          capabilities={"torch_module", "text_encoder"})
class LMSASRec(SequentialRecommender):
    """SASRec over projected text-encoder item embeddings (+ optional ID embeddings); finetune selects
    frozen / lora / adalora / full for the encoder."""

    FORMAT = "recux-lm-sasrec/1"
    name = "lm_sasrec"

    def __init__(self, max_len: int = 50, hidden_size: int = 64, inner_size: int = 256, n_layers: int = 2,
                 n_heads: int = 2, dropout: float = 0.2, attn_dropout: float = 0.2, id_embedding: bool = True,
                 encode_per_step: int = 256, lr: float = 2e-3, weight_decay: float = 0.0,
                 lr_schedule: str = "constant", batch_size: int = 128, max_epochs: int = 200, patience: int = 15,
                 eval_every: int = 1, window_stride: int | None = None, init_std: float = 0.02,
                 num_threads: int | None = 1, optimizer: dict[str, Any] | None = None,
                 scheduler: dict[str, Any] | None = None) -> None:
        """id_embedding: add a learned per-item ID vector to the projected text vector (false: text only,
        so warm and cold items are treated alike). encode_per_step: most item texts the encoder runs with
        gradients per training step (lora/adalora/full). Others as in sasrec."""
        if int(encode_per_step) < 1:
            raise ConfigError(f"lm_sasrec: encode_per_step must be >= 1, got {encode_per_step}")
        super().__init__(
            max_len=int(max_len), hidden_size=int(hidden_size), inner_size=int(inner_size), n_layers=int(n_layers),
            n_heads=int(n_heads), dropout=float(dropout), attn_dropout=float(attn_dropout),
            id_embedding=bool(id_embedding), encode_per_step=int(encode_per_step), lr=float(lr),
            weight_decay=float(weight_decay), lr_schedule=str(lr_schedule), batch_size=int(batch_size),
            max_epochs=int(max_epochs), patience=int(patience), eval_every=int(eval_every),
            window_stride=None if window_stride is None else int(window_stride), init_std=float(init_std),
            num_threads=num_threads, optimizer=optimizer, scheduler=scheduler)
        self._text: Any = None  # the TextEncoder
        self._texts: list[str] | None = None
        self._feats: np.ndarray | None = None
        self.cost: dict[str, Any] = {}

    # -- SequentialRecommender hooks
    def _causal(self) -> bool:
        return True

    def _window_width(self) -> int:
        return self.hparams["max_len"] + 1

    def scoring_rows(self, history: Any) -> np.ndarray:
        return last_items(history, self.hparams["max_len"])

    def _build_net(self, finetune: Any = None) -> Any:
        from recux.plugins.models._lm_seq_net import LMSASRecNet
        from recux.plugins.models._seq_net import SeqEncoder

        h = self.hparams
        n_tokens = self.n_items + 1 if h["id_embedding"] else 1  # without IDs the token table is padding only
        seq = SeqEncoder(n_tokens, h["max_len"], h["hidden_size"], h["n_layers"], h["n_heads"], h["dropout"],
                         h["attn_dropout"], causal=True, inner_size=h["inner_size"], init_std=h["init_std"])
        in_net = bool(getattr(finetune, "encoder_in_net", False))
        encoder = self._text.module().train() if in_net else None  # HF loads in eval mode (no dropout)
        return LMSASRecNet(self.n_items, seq, self._feats, h["id_embedding"], optimizer=self.optimizer_spec(),
                           scheduler=self.scheduler_spec(), finetune=finetune, encoder=encoder, text=self._text,
                           texts=self._texts, encode_per_step=h["encode_per_step"])

    # -- fit
    def fit(self, ctx: FitContext) -> None:
        self._text, self._texts, self._feats = take_text(ctx, "lm_sasrec")
        super().fit(ctx)
        self.net.bank_stale = True  # the best epoch's encoder weights were restored: re-encode for test
        self.net.refresh_bank()
        self.cost = cost_record(self.net, self._text, self.finetune, self.hparams["encode_per_step"],
                                loss="full softmax")

    def describe(self) -> dict[str, Any]:
        """Trainable/total parameters (encoder and rest), seconds per epoch (training steps plus the epoch's
        validation, which Lightning runs before the module's epoch-end hook: for lora/adalora/full that
        includes the catalogue re-encode) and per training step, peak memory, the strategy's settings."""
        return dict(self.cost)

    # -- save / load
    def _extra_state(self) -> dict[str, Any]:
        ident = self._text.identity() if self._text is not None else None
        return {**super()._extra_state(), "feat_dim": int(self.net.feats.shape[1]), "encoder_identity": ident,
                "item_texts": self._texts}

    def _restore_data(self, blob: dict[str, Any]) -> None:
        self._feats = np.zeros((self.n_items, int(blob["feat_dim"])), np.float32)  # weights overwrite it
        self._texts = blob.get("item_texts")
        self._text = rebuild_encoder(blob.get("encoder_identity"))
