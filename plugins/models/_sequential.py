"""What SASRec and BERT4Rec share as recommenders: fit on training windows of each user's chronological
history, score from each user's latest items (train during validation; train + valid after
``condition_on``), save/load. No torch at import time: the nets are imported inside methods."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from recux.data import Interactions
from recux.errors import ConfigError
from recux.lightning_model import LightningRecommender
from recux.plugins.models._checks import check_rates
from recux.plugins.models._history import as_interactions, time_ordered
from recux.sequences import windows


class SequentialRecommender(LightningRecommender):
    """Base of the transformer sequence models; subclasses set the network, the training window width,
    the batch transform and how a user's scoring row is laid out."""

    FORMAT = "recux-sequential/1"
    name = "sequential"  # the registered name, for messages
    min_items = 2  # fewest real items a training window needs to hold a target
    _conditioned: Interactions | None = None  # what the scoring rows were built from (history())

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
        check_rates(self.name, h["lr"], h.get("optimizer"), weight_decay=h["weight_decay"])
        if h["lr_schedule"] not in ("constant", "linear"):
            raise ConfigError(f"{self.name}: lr_schedule must be 'constant' or 'linear' (decay to 0 over "
                              f"max_epochs), got {h['lr_schedule']!r}")
        if h["lr_schedule"] == "linear" and h.get("scheduler") is not None:
            raise ConfigError(f"{self.name}: set either lr_schedule=linear or a scheduler spec, not both")
        if h.get("window_stride") is not None and int(h["window_stride"]) < 1:
            raise ConfigError(f"{self.name}: window_stride must be >= 1 or null (no overlap)")
        self.hparams: dict[str, Any] = dict(h)

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
        from recux.plugins.models._seq_net import SeqEncoder

        h = self.hparams
        enc = SeqEncoder(self._n_tokens(), h["max_len"], h["hidden_size"], h["n_layers"], h["n_heads"],
                         h["dropout"], h["attn_dropout"], causal=self._causal(), inner_size=h["inner_size"],
                         init_std=h["init_std"])
        return self._net_class()(self.n_items, enc, optimizer=self.optimizer_spec(),
                                 scheduler=self.scheduler_spec(), finetune=finetune, **self._net_kwargs())

    def _default_optimizer(self) -> dict[str, Any]:
        return {"_target_": "torch.optim.AdamW", "lr": self.hparams["lr"],
                "weight_decay": self.hparams["weight_decay"]}

    def _default_scheduler(self) -> dict[str, Any] | None:
        """lr_schedule "linear": the rate decays per step to 0 at the end of max_epochs."""
        if self.hparams["lr_schedule"] == "linear":
            return {"_target_": "recux.optim.linear_decay", "interval": "step"}
        return None

    def training_rows(self, train: Interactions) -> np.ndarray:
        """(n_rows, width) training windows of the users' chronological training histories."""
        width = self._window_width()
        stride = self.hparams.get("window_stride") or width - 1
        rows, _ = windows(train, width, stride=int(stride), min_items=self.min_items)
        return rows

    def _batches(self, net: Any, train: Interactions, seed: int) -> Any:
        import torch

        from recux.sequences import SequenceBatches

        net.num_threads = torch.get_num_threads()  # re-applied each epoch (validation's numba resets it)
        net.set_sequences(self.scoring_rows(train))  # validation: the training sequence only
        self._conditioned = train
        return SequenceBatches(self.training_rows(train), batch_size=self.hparams["batch_size"], seed=seed,
                               transform=self._transform())

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
        self._conditioned = history

    def history(self, users: np.ndarray) -> list[np.ndarray]:
        """Each user's conditioning items in time order (the scoring row is its last items)."""
        return time_ordered(self._conditioned, users)

    def sequence_rows(self, histories: Sequence[np.ndarray]) -> np.ndarray:
        """The scoring rows (tokens) of users whose time-ordered histories are ``histories``."""
        return self.scoring_rows(as_interactions(histories, self.n_items))

    def score_histories(self, histories: Sequence[np.ndarray]) -> np.ndarray:
        import torch

        rows = torch.as_tensor(self.sequence_rows(histories), dtype=torch.long, device=self.net.seqs.device)
        return self.net.score_sequences(rows).float().cpu().numpy()

    def _extra_state(self) -> dict[str, Any]:
        """The scoring sequences (train, or train + valid after ``condition_on``)."""
        return {"seqs": self.net.seqs.detach().cpu()}

    def _restore_net(self, net: Any, blob: dict[str, Any]) -> None:
        net.set_sequences(blob["seqs"])
