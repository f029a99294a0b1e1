"""Mult-VAE (Liang et al. 2018): a variational autoencoder of each user's multi-hot training row with a
multinomial likelihood and KL annealing, trained by a pytorch_lightning Trainer with early stopping on
validation NDCG. The torch network lives in ``_multvae_net`` and is imported only when used.

``score(u)`` decodes the mean latent code of user u's *training* row (like the other general models it
ignores ``condition_on``)."""

from __future__ import annotations

from typing import Any

from recux.data import Interactions
from recux.errors import ConfigError
from recux.lightning_model import LightningRecommender
from recux.plugins.models._checks import check_rates
from recux.registry import register


@register("model", "multvae", training="lightning", capabilities={"torch_module"})
class MultVAE(LightningRecommender):
    """Multinomial VAE over item sets: encoder [n_items, *hidden_dims, 2 * latent_dim], mirrored decoder."""

    FORMAT = "recux-multvae/1"

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
        optimizer: dict[str, Any] | None = None,
        scheduler: dict[str, Any] | None = None,
    ) -> None:
        """hidden_dims: encoder hidden widths (the decoder mirrors them); dropout: on the encoder input.
        beta (KL weight) rises linearly by 1/total_anneal_steps per optimiser step up to anneal_cap
        (total_anneal_steps 0: beta = anneal_cap throughout). num_threads: torch and numba threads while fitting (None: leave them).
        optimizer/scheduler: ``recux.optim`` specs, e.g. ``+model.optimizer={_target_: torch.optim.SGD,
        _partial_: true, momentum: 0.9}`` (lr, and weight_decay when nonzero, come from the model's settings
        unless given); null: Adam and a constant rate."""
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
        check_rates("multvae", lr, optimizer, weight_decay=weight_decay)
        self.hparams: dict[str, Any] = dict(
            hidden_dims=hidden, latent_dim=int(latent_dim), dropout=float(dropout), lr=float(lr),
            weight_decay=float(weight_decay), batch_size=int(batch_size),
            total_anneal_steps=int(total_anneal_steps), anneal_cap=float(anneal_cap),
            max_epochs=int(max_epochs), patience=int(patience), eval_every=int(eval_every),
            num_threads=num_threads, optimizer=optimizer, scheduler=scheduler,
        )

    def _build_net(self, finetune: Any = None) -> Any:
        from recux.plugins.models._multvae_net import MultVAENet

        h = self.hparams
        return MultVAENet(self.n_items, h["hidden_dims"], h["latent_dim"], h["dropout"], h["total_anneal_steps"],
                          h["anneal_cap"], self.optimizer_spec(), finetune, scheduler=self.scheduler_spec())

    def _default_optimizer(self) -> dict[str, Any]:
        return {"_target_": "torch.optim.Adam", "lr": self.hparams["lr"], "weight_decay": self.hparams["weight_decay"]}

    def _batches(self, net: Any, train: Interactions, seed: int) -> Any:
        from recux.plugins.models._multvae_net import UserRowBatches

        x = train.csr(binary=True)
        net.set_history(x.indptr, x.indices)  # scoring encodes each user's training row
        return UserRowBatches(x.indptr, x.indices, self.n_items, batch_size=self.hparams["batch_size"], seed=seed)

    def _extra_state(self) -> dict[str, Any]:
        """The training rows: scoring encodes them."""
        indptr, indices = (t.cpu() for t in self.net.history)
        return {"indptr": indptr, "indices": indices}

    def _restore_net(self, net: Any, blob: dict[str, Any]) -> None:
        net.set_history(blob["indptr"].numpy(), blob["indices"].numpy())
