"""Two-tower text recommender: the content model (plugins/models/content.py) with its item tower trained on the
interactions, so the fine-tuning axis (frozen / lora / adalora / full) applies to content-based recommendation
and to items never seen in training.

Item tower v_i = normalize(W f_i): f_i the text encoder's embedding of item i's text, W a d x d matrix
initialised to the identity. User tower: p_u = normalize(sum_{i in H_u} v_i), H_u the user's training
interactions (repeats count). Score s(u, j) = p_u . v_j, for every item with a text: before training this is
exactly the frozen ``content`` model (profile: mean). This is the dual-encoder / two-tower retrieval model
(Covington et al. 2016; Yi et al. 2019, "Sampling-bias-corrected neural modeling for large corpus item
recommendations") with a pre-trained language model as the item encoder, as in text-based recommenders such as
UniSRec/ZESRec (Hou et al. 2022; Ding et al. 2021), which score items never seen in training from their text.

Loss: for a training pair (u, i), softmax cross-entropy of p_u^{-i} . v_i / temperature against every item
with a training interaction (items without one are not in the training catalogue: they are never candidates,
so items held out of training are not pushed down either); p_u^{-i} is the profile without i (leave-one-out);
the user's other training items are masked out of the negatives. Each epoch draws ``epoch_pairs`` pairs
(default all).

By strategy: frozen (or scratch: the same, the encoder is not in the network) trains W only over the cached
embeddings, with the softmax over every trained item. lora / adalora / full put the encoder in the network;
each step encodes WITH GRADIENTS the batch's distinct targets plus uniform draws from the trained items, up to
``encode_per_step`` texts, and the softmax runs over exactly those (mixed negative sampling, Yang et al. 2020;
no sampling-bias correction), so positives and negatives come from the same encoder; the user profiles read
the other items from a memory bank (the encoder's latest output for each; Wu et al. 2018), re-encoded over the
whole catalogue before each validation, after the fit (best weights) and for test. Model selection is on
validation (warm items only under a cold-item split).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from recux.data import Interactions
from recux.errors import ConfigError
from recux.lightning_model import LightningRecommender
from recux.model import FitContext
from recux.plugins.models._text_model import cost_record, rebuild_encoder, take_text
from recux.registry import register


@register("model", "two_tower", training="lightning",
          capabilities={"torch_module", "text_encoder", "scores_unseen_items"})
class TwoTower(LightningRecommender):
    """Content model with a trained item tower (W, and the encoder under lora/adalora/full)."""

    FORMAT = "recux-two-tower/1"

    def __init__(self, temperature: float = 0.05, batch_size: int = 256, epoch_pairs: int | None = None,
                 encode_per_step: int = 256, lr: float = 1e-3, weight_decay: float = 0.0, max_epochs: int = 50,
                 patience: int = 5, eval_every: int = 1, num_threads: int | None = 1,
                 optimizer: dict[str, Any] | None = None, scheduler: dict[str, Any] | None = None) -> None:
        """temperature: softmax temperature of the cosine scores; epoch_pairs: training pairs drawn per epoch
        (null: all); encode_per_step: most item texts encoded with gradients per step (lora/adalora/full)."""
        if not float(temperature) > 0 or int(batch_size) < 1 or int(encode_per_step) < 1 or int(max_epochs) < 1:
            raise ConfigError(f"two_tower: temperature must be > 0 and batch_size, encode_per_step, max_epochs "
                              f">= 1; got {temperature}, {batch_size}, {encode_per_step}, {max_epochs}")
        if epoch_pairs is not None and int(epoch_pairs) < 1:
            raise ConfigError(f"two_tower: epoch_pairs must be >= 1 or null (all pairs), got {epoch_pairs}")
        self.hparams: dict[str, Any] = dict(
            temperature=float(temperature), batch_size=int(batch_size),
            epoch_pairs=None if epoch_pairs is None else int(epoch_pairs), encode_per_step=int(encode_per_step),
            lr=float(lr), weight_decay=float(weight_decay), max_epochs=int(max_epochs), patience=int(patience),
            eval_every=int(eval_every), num_threads=num_threads, optimizer=optimizer, scheduler=scheduler)
        self._text: Any = None
        self._texts: list[str] | None = None
        self._feats: np.ndarray | None = None
        self._history: Any = None
        self.cost: dict[str, Any] = {}

    def _default_optimizer(self) -> dict[str, Any]:
        return {"_target_": "torch.optim.AdamW", "lr": self.hparams["lr"],
                "weight_decay": self.hparams["weight_decay"]}

    def _remember(self, train: Interactions) -> None:
        self._history = train.csr()

    def _build_net(self, finetune: Any = None) -> Any:
        from recux.plugins.models._two_tower_net import TwoTowerNet

        in_net = bool(getattr(finetune, "encoder_in_net", False))
        encoder = self._text.module().train() if in_net else None
        trained = np.flatnonzero(np.asarray(self._history.sum(axis=0)).ravel() > 0)
        return TwoTowerNet(self._feats, self._history, trained, self.hparams["temperature"],
                           optimizer=self.optimizer_spec(), scheduler=self.scheduler_spec(), finetune=finetune,
                           encoder=encoder, text=self._text, texts=self._texts,
                           encode_per_step=self.hparams["encode_per_step"])

    def _batches(self, net: Any, train: Interactions, seed: int) -> Any:
        from recux.plugins.models._two_tower_net import SampledPairs

        h = self.hparams
        return SampledPairs(train.user, train.item, h["batch_size"], seed, h["epoch_pairs"])

    def fit(self, ctx: FitContext) -> None:
        self._text, self._texts, self._feats = take_text(ctx, "two_tower")
        super().fit(ctx)
        self.net.bank_stale = True  # the best epoch's encoder weights were restored: re-encode for test
        self.net.refresh_bank()
        self.cost = cost_record(self.net, self._text, self.finetune, self.hparams["encode_per_step"],
                                loss=("softmax over the trained items" if self.net.encoder is None else
                                      "softmax over the step's encoded targets and uniform draws"))

    def describe(self) -> dict[str, Any]:
        """Trainable/total parameters (encoder and rest), seconds per epoch and step, peak memory, strategy."""
        return dict(self.cost)

    # -- save / load
    def _extra_state(self) -> dict[str, Any]:
        h = self._history.tocsr()
        return {"feat_dim": int(self.net.feats.shape[1]), "item_texts": self._texts,
                "encoder_identity": None if self._text is None else self._text.identity(),
                "history": {"indptr": h.indptr.tolist(), "indices": h.indices.tolist(), "data": h.data.tolist(),
                            "shape": list(h.shape)}}

    def _restore_data(self, blob: dict[str, Any]) -> None:
        import scipy.sparse as sp

        hist = blob["history"]
        self._history = sp.csr_matrix((np.asarray(hist["data"], np.float32), np.asarray(hist["indices"]),
                                       np.asarray(hist["indptr"])), shape=tuple(hist["shape"]))
        self._feats = np.zeros((self.n_items, int(blob["feat_dim"])), np.float32)  # the weights overwrite it
        self._texts = blob.get("item_texts")
        self._text = rebuild_encoder(blob.get("encoder_identity"))
