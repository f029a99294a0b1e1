"""BPR matrix factorisation (Rendle et al. 2009) trained by a pytorch_lightning Trainer with early
stopping on validation NDCG. The torch network lives in ``_bpr_net`` and is imported only when used."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from benchmark.errors import ConfigError
from benchmark.model import FitContext, Recommender
from benchmark.registry import register

_FORMAT = "recux-bpr/1"


@register("model", "bpr", training="lightning")
class BPR(Recommender):
    """BPR-MF: dot-product user/item embeddings learnt from (user, positive, sampled negative) triples."""

    def __init__(
        self,
        embedding_dim: int = 64,
        lr: float = 3e-3,
        reg: float = 5e-3,
        weight_decay: float = 0.0,
        batch_size: int = 2048,
        max_epochs: int = 300,
        patience: int = 20,
        num_negatives: int = 1,
        eval_every: int = 1,
        exclude_positives: bool = True,
        init_std: float = 0.01,
        sparse: bool = False,
        num_threads: int | None = None,
    ) -> None:
        """Defaults were tuned on ML-100K validation NDCG@10 (per-user random 80/10/10, 3 split seeds).

        reg: L2 weight on the batch's embeddings (sum of squares / batch size); weight_decay: Adam's
        decay of every parameter (dense only). sparse: sparse gradients + SparseAdam (pays off for large
        catalogues). num_threads: torch.set_num_threads for the process (None keeps torch's default).
        """
        if embedding_dim < 1 or batch_size < 1 or max_epochs < 1 or num_negatives < 1 or eval_every < 1:
            raise ConfigError(
                "bpr: embedding_dim, batch_size, max_epochs, num_negatives and eval_every must be >= 1"
            )
        if sparse and weight_decay:
            raise ConfigError(
                "bpr: weight_decay needs dense gradients; with sparse=true use reg (batch L2) instead"
            )
        self.hparams: dict[str, Any] = dict(
            embedding_dim=int(embedding_dim), lr=float(lr), reg=float(reg), weight_decay=float(weight_decay),
            batch_size=int(batch_size), max_epochs=int(max_epochs), patience=int(patience),
            num_negatives=int(num_negatives), eval_every=int(eval_every),
            exclude_positives=bool(exclude_positives),
            init_std=float(init_std), sparse=bool(sparse), num_threads=num_threads,
        )
        self.net: Any = None
        self.summary: Any = None

    def _build_net(self, finetune: Any = None) -> Any:
        from plugins.models._bpr_net import BPRNet

        h = self.hparams
        return BPRNet(self.n_users, self.n_items, h["embedding_dim"], h["lr"], h["reg"], h["weight_decay"],
                      h["init_std"], h["sparse"], finetune)

    def fit(self, ctx: FitContext) -> None:
        from benchmark.training import threads

        with threads(self.hparams["num_threads"]):  # restored afterwards: no leak into later jobs
            self._fit(ctx)

    def _fit(self, ctx: FitContext) -> None:

        from benchmark.training import PairBatches, fit_lightning, seed_everything

        h = self.hparams
        train = ctx.split.train
        self.n_users, self.n_items = train.n_users, train.n_items
        seed_everything(ctx.seed)
        net = ctx.finetune.prepare(self._build_net(ctx.finetune), ctx)
        batches = PairBatches(train.user, train.item, self.n_items, batch_size=h["batch_size"],
                              num_negatives=h["num_negatives"], seed=ctx.seed,
                              exclude_positives=h["exclude_positives"])
        self.summary = fit_lightning(net, ctx, batches, max_epochs=h["max_epochs"], patience=h["patience"],
                                     score_fn=net.score, eval_every=h["eval_every"])
        self.net = net.eval()

    def score(self, users: np.ndarray) -> np.ndarray:
        if self.net is None:
            raise RuntimeError("BPR.score called before fit or load")
        return self.net.score(users)

    def save(self, path: str | Path) -> None:
        """A torch file with the format tag, hyper-parameters, code-space sizes and the state dict."""
        import torch

        if self.net is None:
            raise RuntimeError("BPR.save called before fit")
        state = {k: v.detach().cpu() for k, v in self.net.state_dict().items()}
        torch.save({"format": _FORMAT, "hparams": self.hparams, "n_users": self.n_users,
                    "n_items": self.n_items, "state_dict": state}, path)

    @classmethod
    def load(cls, path: str | Path) -> BPR:
        import torch

        blob = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(blob, dict) or blob.get("format") != _FORMAT:
            raise ConfigError(
                f"{path} is not a saved BPR model (expected format {_FORMAT}); save it with BPR.save"
            )
        model = cls(**blob["hparams"])
        model.n_users, model.n_items = int(blob["n_users"]), int(blob["n_items"])
        net = model._build_net()
        net.load_state_dict(blob["state_dict"])
        model.net = net.eval()
        return model
