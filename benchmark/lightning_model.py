"""What every recommender trained by ``fit_lightning`` shares: fit (thread count, seed, fine-tuning strategy,
early stopping on validation), score, and save/load as a tagged torch file. Subclasses supply the network
and its batches through small hooks. No torch at import time: it is imported inside the methods."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from recux.data import Interactions
from recux.errors import ConfigError
from recux.model import FitContext, Recommender


class LightningRecommender(Recommender):
    """Base of Lightning-trained models. ``hparams`` must hold max_epochs, patience, eval_every and
    num_threads; ``FORMAT`` tags saved files (one tag per class)."""

    FORMAT = ""
    hparams: dict[str, Any]
    net: Any = None
    summary: Any = None

    # -- hooks
    def _build_net(self, finetune: Any = None) -> Any:
        """A fresh network for the current n_users/n_items (finetune: the strategy, or None on load)."""
        raise NotImplementedError

    def _remember(self, train: Interactions) -> None:
        """Keep what ``_build_net`` needs from the training data (before the net is built)."""

    def _batches(self, net: Any, train: Interactions, seed: int) -> Any:
        """The training batches; also hands ``net`` whatever it scores from."""
        raise NotImplementedError

    def _extra_state(self) -> dict[str, Any]:
        """Tensors saved beside the weights."""
        return {}

    def _restore_data(self, blob: dict[str, Any]) -> None:
        """On load, before the net is built: the counterpart of ``_remember``."""

    def _restore_net(self, net: Any, blob: dict[str, Any]) -> None:
        """On load, after the weights: hand ``net`` what it scores from."""

    # -- shared
    def fit(self, ctx: FitContext) -> None:
        from recux.training import fit_lightning, seed_everything, threads

        h = self.hparams
        with threads(h["num_threads"]):  # restored afterwards: no leak into later jobs of the process
            train = ctx.split.train
            self.n_users, self.n_items = train.n_users, train.n_items
            self._remember(train)
            seed_everything(ctx.seed)
            net = ctx.finetune.prepare(self._build_net(ctx.finetune), ctx)
            batches = self._batches(net, train, ctx.seed)
            self.summary = fit_lightning(net, ctx, batches, max_epochs=h["max_epochs"], patience=h["patience"],
                                         score_fn=net.score, eval_every=h["eval_every"])
            self.net = net.eval()

    def score(self, users: np.ndarray) -> np.ndarray:
        if self.net is None:
            raise RuntimeError(f"{type(self).__name__}.score called before fit or load")
        return self.net.score(users)

    def save(self, path: str | Path) -> None:
        """A torch file: format tag, class, hyper-parameters, code-space sizes, weights and extra state."""
        import torch

        if self.net is None:
            raise RuntimeError(f"{type(self).__name__}.save called before fit")
        state = {k: v.detach().cpu() for k, v in self.net.state_dict().items()}
        torch.save({"format": self.FORMAT, "model": type(self).__name__, "hparams": self.hparams,
                    "n_users": self.n_users, "n_items": self.n_items, "state_dict": state,
                    **self._extra_state()}, path)

    @classmethod
    def load(cls, path: str | Path) -> LightningRecommender:
        import torch

        blob = torch.load(path, map_location="cpu", weights_only=True)
        ok = (isinstance(blob, dict) and blob.get("format") == cls.FORMAT
              and blob.get("model", cls.__name__) == cls.__name__)
        if not ok:
            raise ConfigError(f"{path} is not a saved {cls.__name__} model (expected format {cls.FORMAT}); "
                              f"save it with {cls.__name__}.save")
        model = cls(**blob["hparams"])
        model.n_users, model.n_items = int(blob["n_users"]), int(blob["n_items"])
        model._restore_data(blob)
        net = model._build_net()
        net.load_state_dict(blob["state_dict"])
        model._restore_net(net, blob)
        model.net = net.eval()
        return model
