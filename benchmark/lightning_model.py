"""What every recommender trained by ``fit_lightning`` shares: fit (thread count, seed, optional starting
weights, fine-tuning strategy, early stopping on validation), score, and save/load as a tagged torch file
that also records the strategy. Subclasses supply the network, its batches and its default optimiser
through small hooks. No torch at import time: it is imported inside the methods."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from recux.data import Interactions
from recux.errors import ConfigError
from recux.finetune import FineTuneStrategy, prepare_in_place
from recux.model import FitContext, Recommender


class LightningRecommender(Recommender):
    """Base of Lightning-trained models. ``hparams`` must hold max_epochs, patience, eval_every and
    num_threads, and may hold ``optimizer``/``scheduler`` specs (``recux.optim``; None: the model's
    default); ``FORMAT`` tags saved files (one tag per class)."""

    FORMAT = ""
    hparams: dict[str, Any]
    net: Any = None
    summary: Any = None
    finetune: FineTuneStrategy | None = None

    # -- hooks
    def _build_net(self, finetune: Any = None) -> Any:
        """A fresh network for the current n_users/n_items (finetune: the strategy; its optimiser spec is
        ``self.optimizer_spec()``, its schedule ``self.scheduler_spec()``)."""
        raise NotImplementedError

    def _default_optimizer(self) -> dict[str, Any]:
        """The optimiser spec used when hparams["optimizer"] is None."""
        return {"_target_": "torch.optim.Adam", "lr": self.hparams["lr"]}

    def _default_scheduler(self) -> dict[str, Any] | None:
        """The schedule used when hparams["scheduler"] is None (None: a constant rate)."""
        return None

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

    # -- optimiser from config
    def optimizer_spec(self) -> dict[str, Any]:
        """hparams["optimizer"] (lr, and weight_decay when nonzero, filled in from the model's own settings
        when the spec omits them, so searches over model.lr keep working), or the model's default."""
        given = self.hparams.get("optimizer")
        if given is None:
            return self._default_optimizer()
        spec = dict(given)
        if "lr" in self.hparams:
            spec.setdefault("lr", self.hparams["lr"])
        if self.hparams.get("weight_decay"):
            spec.setdefault("weight_decay", self.hparams["weight_decay"])
        return spec

    def scheduler_spec(self) -> dict[str, Any] | None:
        given = self.hparams.get("scheduler")
        return self._default_scheduler() if given is None else dict(given)

    # -- shared
    def fit(self, ctx: FitContext) -> None:
        from recux.seeding import seed_everything
        from recux.training import fit_lightning, threads

        h = self.hparams
        with threads(h["num_threads"]):  # restored afterwards: no leak into later jobs of the process
            train = ctx.split.train
            self.n_users, self.n_items = train.n_users, train.n_items
            self._remember(train)
            seed_everything(ctx.seed)
            net = self._build_net(ctx.finetune)
            prepare_in_place(ctx.finetune, net, ctx)
            if ctx.init_from is not None:  # after prepare: a stage saved with adapters restarts with them
                self._load_weights(net, ctx.init_from)
            self.finetune = ctx.finetune
            batches = self._batches(net, train, ctx.seed)
            self.summary = fit_lightning(net, ctx, batches, max_epochs=h["max_epochs"], patience=h["patience"],
                                         score_fn=net.score, eval_every=h["eval_every"])
            self.net = net.eval()

    def _load_weights(self, net: Any, source: str | Path | Mapping[str, Any]) -> None:
        """Starting weights: a state dict, or a file saved by this class's ``save`` (or a torch state dict)."""
        import torch

        state = source
        if isinstance(source, (str, Path)):
            blob = torch.load(source, map_location="cpu", weights_only=True)
            if isinstance(blob, dict) and "format" in blob:
                if blob["format"] != self.FORMAT:
                    raise ConfigError(f"init_from={source} holds a {blob.get('model')} model ({blob['format']}); "
                                      f"{type(self).__name__} starts only from its own ({self.FORMAT})")
                state = blob["state_dict"]
            else:
                state = blob
        try:
            missing, unexpected = net.load_state_dict(state, strict=False)
        except (RuntimeError, KeyError) as exc:
            missing, unexpected = [str(exc)], []
        pretrained = tuple(getattr(net, "pretrained_prefixes", ()))
        missing = [k for k in missing if not (pretrained and k.startswith(pretrained))]
        if missing or unexpected:
            raise ConfigError(
                f"init_from weights do not fit the {type(net).__name__} built for this run (missing "
                f"{_few(missing)}; unexpected {_few(unexpected)}). They must come from the same model with the "
                "same architecture settings and code space (dataset, preprocessing and split), saved under the "
                "same fine-tuning strategy or under one that adds no weights (scratch/frozen)."
                + (f" Only weights under {list(pretrained)} may be absent (they keep their pretrained values)."
                   if pretrained else "")
            )

    def score(self, users: np.ndarray) -> np.ndarray:
        if self.net is None:
            raise RuntimeError(f"{type(self).__name__}.score called before fit or load")
        return self.net.score(users)

    def serving_module(self) -> Any:
        """The fitted network: its ``score`` reads its own weights (override when scoring reads derived ones)."""
        return self.net

    def save(self, path: str | Path) -> None:
        """A torch file: format tag, class, hyper-parameters, code-space sizes, the fine-tuning strategy
        (name and params), weights and extra state."""
        import torch

        if self.net is None:
            raise RuntimeError(f"{type(self).__name__}.save called before fit")
        state = {k: v.detach().cpu() for k, v in self.net.state_dict().items()}
        strategy = None if self.finetune is None else {"name": self.finetune.name, "params": self.finetune.params()}
        torch.save({"format": self.FORMAT, "model": type(self).__name__, "hparams": self.hparams,
                    "n_users": self.n_users, "n_items": self.n_items, "finetune": strategy, "state_dict": state,
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
        model.finetune = _rebuild_strategy(blob.get("finetune"))
        net = model._build_net(model.finetune)
        if model.finetune is not None:  # re-create the strategy's sub-modules (adapters) before their weights
            prepare_in_place(model.finetune, net, None)
        net.load_state_dict(blob["state_dict"])
        model._restore_net(net, blob)
        model.net = net.eval()
        return model


def _few(keys: list[str], n: int = 4) -> str:
    return "none" if not keys else ", ".join(keys[:n]) + (f" and {len(keys) - n} more" if len(keys) > n else "")


def _rebuild_strategy(record: Mapping[str, Any] | None) -> FineTuneStrategy | None:
    if record is None:
        return None
    if record["name"] == FineTuneStrategy.name:
        return FineTuneStrategy()
    from recux import registry

    return registry.build("finetune", record["name"], record.get("params") or {})
