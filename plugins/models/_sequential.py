"""What SASRec and BERT4Rec share as recommenders: fit on training windows of each user's chronological
history, score from each user's latest items (train during validation; train + valid after
``condition_on``), save/load. No torch at import time: the nets are imported inside methods."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from benchmark.data import Interactions
from benchmark.errors import ConfigError
from benchmark.model import FitContext, Recommender
from benchmark.sequences import windows


class SequentialRecommender(Recommender):
    """Base of the transformer sequence models; subclasses set the network, the training window width,
    the batch transform and how a user's scoring row is laid out."""

    FORMAT = "recux-sequential/1"
    name = "sequential"  # the registered name, for messages
    min_items = 2  # fewest real items a training window needs to hold a target

    def __init__(self, **hparams: Any) -> None:
        h = hparams
        positive = ("max_len", "hidden_size", "inner_size", "n_layers", "n_heads", "batch_size", "max_epochs",
                    "eval_every")
        bad = [k for k in positive if int(h[k]) < 1]
        if bad:
            raise ConfigError(f"{self.name}: {', '.join(bad)} must be >= 1")
        if int(h["max_len"]) < 2:
            raise ConfigError(f"{self.name}: max_len must be >= 2, got {h['max_len']}")
        if int(h["hidden_size"]) % int(h["n_heads"]):
            raise ConfigError(f"{self.name}: hidden_size {h['hidden_size']} must be divisible by n_heads "
                              f"{h['n_heads']}")
        if not (0.0 <= float(h["dropout"]) < 1.0 and 0.0 <= float(h["attn_dropout"]) < 1.0):
            raise ConfigError(f"{self.name}: dropout and attn_dropout must lie in [0, 1)")
        if h["lr_schedule"] not in ("constant", "linear"):
            raise ConfigError(f"{self.name}: lr_schedule must be 'constant' or 'linear' (decay to 0 over "
                              f"max_epochs), got {h['lr_schedule']!r}")
        if h.get("window_stride") is not None and int(h["window_stride"]) < 1:
            raise ConfigError(f"{self.name}: window_stride must be >= 1 or null (no overlap)")
        self.hparams: dict[str, Any] = dict(h)
        self.net: Any = None
        self.summary: Any = None

    # -- subclass hooks
    def _net_class(self) -> Any:
        raise NotImplementedError

    def _net_kwargs(self) -> dict[str, Any]:
        return {}

    def _n_tokens(self) -> int:
        return self.n_items + 1

    def _causal(self) -> bool:
        raise NotImplementedError

    def _window_width(self) -> int:
        raise NotImplementedError

    def _transform(self) -> Any:
        return None

    def scoring_rows(self, history: Interactions) -> np.ndarray:
        """(n_users, max_len) tokens each user is scored from."""
        raise NotImplementedError

    # -- shared
    def _build_net(self, finetune: Any = None) -> Any:
        from plugins.models._seq_net import SeqEncoder

        h = self.hparams
        enc = SeqEncoder(self._n_tokens(), h["max_len"], h["hidden_size"], h["n_layers"], h["n_heads"],
                         h["dropout"], h["attn_dropout"], causal=self._causal(), inner_size=h["inner_size"],
                         init_std=h["init_std"])
        return self._net_class()(self.n_items, enc, h["lr"], h["weight_decay"], finetune=finetune,
                                 lr_schedule=h["lr_schedule"], **self._net_kwargs())

    def training_rows(self, train: Interactions) -> np.ndarray:
        """(n_rows, width) training windows of the users' chronological training histories."""
        width = self._window_width()
        stride = self.hparams.get("window_stride") or width - 1
        rows, _ = windows(train, width, stride=int(stride), min_items=self.min_items)
        return rows

    def fit(self, ctx: FitContext) -> None:
        from benchmark.training import threads

        with threads(self.hparams["num_threads"]):  # restored afterwards: no leak into later jobs
            self._fit(ctx)

    def _fit(self, ctx: FitContext) -> None:
        import torch

        from benchmark.sequences import SequenceBatches
        from benchmark.training import fit_lightning, seed_everything

        h = self.hparams
        train = ctx.split.train
        self.n_users, self.n_items = train.n_users, train.n_items
        seed_everything(ctx.seed)
        net = ctx.finetune.prepare(self._build_net(ctx.finetune), ctx)
        net.num_threads = torch.get_num_threads()  # re-applied each epoch (validation's numba resets it)
        net.set_sequences(self.scoring_rows(train))  # validation: the training sequence only
        batches = SequenceBatches(self.training_rows(train), batch_size=h["batch_size"], seed=ctx.seed,
                                  transform=self._transform())
        self.summary = fit_lightning(net, ctx, batches, max_epochs=h["max_epochs"], patience=h["patience"],
                                     score_fn=net.score, eval_every=h["eval_every"])
        self.net = net.eval()

    def condition_on(self, history: Interactions) -> None:
        """Score from ``history`` from now on (the runner passes train + valid before test ranking)."""
        if self.net is None:
            raise RuntimeError(f"{type(self).__name__}.condition_on called before fit or load")
        if history.n_users != self.n_users or history.n_items != self.n_items:
            raise ConfigError(
                f"condition_on got a {history.n_users} x {history.n_items} code space; the model was fitted "
                f"on {self.n_users} x {self.n_items}. Pass interactions of the same split."
            )
        self.net.set_sequences(self.scoring_rows(history))

    def score(self, users: np.ndarray) -> np.ndarray:
        if self.net is None:
            raise RuntimeError(f"{type(self).__name__}.score called before fit or load")
        return self.net.score(users)

    def save(self, path: str | Path) -> None:
        """A torch file: format tag, class, hyper-parameters, sizes, weights and the scoring sequences."""
        import torch

        if self.net is None:
            raise RuntimeError(f"{type(self).__name__}.save called before fit")
        state = {k: v.detach().cpu() for k, v in self.net.state_dict().items()}
        torch.save({"format": self.FORMAT, "model": type(self).__name__, "hparams": self.hparams,
                    "n_users": self.n_users, "n_items": self.n_items, "state_dict": state,
                    "seqs": self.net.seqs.detach().cpu()}, path)

    @classmethod
    def load(cls, path: str | Path) -> SequentialRecommender:
        import torch

        blob = torch.load(path, map_location="cpu", weights_only=True)
        ok = isinstance(blob, dict) and blob.get("format") == cls.FORMAT and blob.get("model") == cls.__name__
        if not ok:
            raise ConfigError(f"{path} is not a saved {cls.__name__} model (expected format {cls.FORMAT}); "
                              f"save it with {cls.__name__}.save")
        model = cls(**blob["hparams"])
        model.n_users, model.n_items = int(blob["n_users"]), int(blob["n_items"])
        net = model._build_net()
        net.load_state_dict(blob["state_dict"])
        net.set_sequences(blob["seqs"])
        model.net = net.eval()
        return model

