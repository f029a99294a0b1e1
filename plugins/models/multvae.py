"""Mult-VAE (Liang et al. 2018): a variational autoencoder of each user's multi-hot training row with a
multinomial likelihood and KL annealing, trained by a pytorch_lightning Trainer with early stopping on
validation NDCG. The torch network lives in ``_multvae_net`` and is imported only when used.

``score(u)`` decodes the mean latent code of user u's *training* row (like the other general models it
ignores ``condition_on``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from benchmark.errors import ConfigError
from benchmark.model import FitContext, Recommender
from benchmark.registry import register

_FORMAT = "recux-multvae/1"


@register("model", "multvae", training="lightning")
class MultVAE(Recommender):
    """Multinomial VAE over item sets: encoder [n_items, *hidden_dims, 2 * latent_dim], mirrored decoder."""

    def __init__(
        self,
        hidden_dims: list[int] | tuple[int, ...] = (600,),
        latent_dim: int = 64,
        dropout: float = 0.5,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        batch_size: int = 128,
        total_anneal_steps: int = 200,
        anneal_cap: float = 1.0,
        max_epochs: int = 500,
        patience: int = 30,
        eval_every: int = 1,
        num_threads: int | None = None,
    ) -> None:
        """hidden_dims: encoder hidden widths (the decoder mirrors them); dropout: on the encoder input.
        beta (KL weight) rises linearly by 1/total_anneal_steps per optimiser step up to anneal_cap
        (total_anneal_steps 0: beta = anneal_cap throughout). num_threads: torch.set_num_threads."""
        hidden = [int(d) for d in (hidden_dims or [])]
        if latent_dim < 1 or batch_size < 1 or max_epochs < 1 or eval_every < 1 or any(d < 1 for d in hidden):
            raise ConfigError(
                "multvae: latent_dim, batch_size, max_epochs, eval_every and hidden_dims must be >= 1"
            )
        if not 0.0 <= dropout < 1.0 or anneal_cap < 0 or total_anneal_steps < 0:
            raise ConfigError(
                f"multvae: need 0 <= dropout < 1, anneal_cap >= 0, total_anneal_steps >= 0 "
                f"(got {dropout}, {anneal_cap}, {total_anneal_steps})"
            )
        self.hparams: dict[str, Any] = dict(
            hidden_dims=hidden, latent_dim=int(latent_dim), dropout=float(dropout), lr=float(lr),
            weight_decay=float(weight_decay), batch_size=int(batch_size),
            total_anneal_steps=int(total_anneal_steps), anneal_cap=float(anneal_cap),
            max_epochs=int(max_epochs), patience=int(patience), eval_every=int(eval_every),
            num_threads=num_threads,
        )
        self.net: Any = None
        self.summary: Any = None

    def _build_net(self, finetune: Any = None) -> Any:
        from plugins.models._multvae_net import MultVAENet

        h = self.hparams
        return MultVAENet(self.n_items, h["hidden_dims"], h["latent_dim"], h["dropout"], h["lr"],
                          h["weight_decay"], h["total_anneal_steps"], h["anneal_cap"], finetune)

    def fit(self, ctx: FitContext) -> None:
        from benchmark.training import threads

        with threads(self.hparams["num_threads"]):  # restored afterwards: no leak into later jobs
            self._fit(ctx)

    def _fit(self, ctx: FitContext) -> None:

        from benchmark.training import fit_lightning, seed_everything
        from plugins.models._multvae_net import UserRowBatches

        h = self.hparams
        train = ctx.split.train
        self.n_users, self.n_items = train.n_users, train.n_items
        x = train.csr(binary=True)
        seed_everything(ctx.seed)
        net = ctx.finetune.prepare(self._build_net(ctx.finetune), ctx)
        net.set_history(x.indptr, x.indices)
        batches = UserRowBatches(x.indptr, x.indices, self.n_items, batch_size=h["batch_size"], seed=ctx.seed)
        self.summary = fit_lightning(net, ctx, batches, max_epochs=h["max_epochs"], patience=h["patience"],
                                     score_fn=net.score, eval_every=h["eval_every"])
        self.net = net.eval()

    def score(self, users: np.ndarray) -> np.ndarray:
        if self.net is None:
            raise RuntimeError("MultVAE.score called before fit or load")
        return self.net.score(users)

    def save(self, path: str | Path) -> None:
        """A torch file with the format tag, hyper-parameters, sizes, the state dict and the training rows."""
        import torch

        if self.net is None:
            raise RuntimeError("MultVAE.save called before fit")
        state = {k: v.detach().cpu() for k, v in self.net.state_dict().items()}
        indptr, indices = (t.cpu() for t in self.net.history)
        torch.save({"format": _FORMAT, "hparams": self.hparams, "n_users": self.n_users,
                    "n_items": self.n_items, "state_dict": state, "indptr": indptr, "indices": indices}, path)

    @classmethod
    def load(cls, path: str | Path) -> MultVAE:
        import torch

        blob = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(blob, dict) or blob.get("format") != _FORMAT:
            raise ConfigError(
                f"{path} is not a saved MultVAE model (expected format {_FORMAT}); save it with MultVAE.save"
            )
        model = cls(**blob["hparams"])
        model.n_users, model.n_items = int(blob["n_users"]), int(blob["n_items"])
        net = model._build_net()
        net.load_state_dict(blob["state_dict"])
        net.set_history(blob["indptr"].numpy(), blob["indices"].numpy())
        model.net = net.eval()
        return model
