"""BERT4Rec (Sun et al. 2019): a bidirectional transformer trained to fill in randomly masked items of a
user's history; to recommend, a [MASK] is appended after the user's latest items and predicted. Shares the
sequence data path and encoder with SASRec; torch is imported only when used."""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np

from recux.data import Interactions
from recux.errors import ConfigError
from recux.plugins.models._sequential import SequentialRecommender
from recux.registry import register
from recux.sequences import last_items, mask_items


@register("model", "bert4rec", training="lightning", protocol="sequential",
          capabilities={"torch_module"})
class BERT4Rec(SequentialRecommender):
    """BERT4Rec: bidirectional transformer with a masked-item (cloze) objective over the catalogue."""

    FORMAT = "recux-bert4rec/1"
    name = "bert4rec"
    min_items = 1  # a single item can be masked and predicted

    def __init__(
        self,
        max_len: int = 50,
        hidden_size: int = 64,
        inner_size: int = 256,
        n_layers: int = 2,
        n_heads: int = 4,
        dropout: float = 0.2,
        attn_dropout: float = 0.2,
        mask_prob: float = 0.4,
        last_item_prob: float = 0.0,
        lr: float = 3e-3,
        weight_decay: float = 0.0,
        lr_schedule: str = "constant",
        batch_size: int = 128,
        max_epochs: int = 300,
        patience: int = 30,
        eval_every: int = 1,
        window_stride: int | None = None,
        init_std: float = 0.02,
        num_threads: int | None = 1,
        optimizer: dict[str, Any] | None = None,
        scheduler: dict[str, Any] | None = None,
    ) -> None:
        """max_len: tokens the model reads, the appended [MASK] included (so max_len - 1 recent items when
        scoring). mask_prob: chance each training item is masked (a row with none drawn masks its last
        item). last_item_prob: chance a training row masks only its last item instead (the original's
        "force last" instances: next-item prediction from the left context, as when scoring).
        window_stride: training windows of max_len items step back this many items through long histories
        (null: max_len - 1). num_threads: torch threads while fitting (restored after; None: leave them). 1 is
        fastest for these small batches on a shared 2-core CPU (~3 s/epoch on ML-100K; see
        conf/model/bert4rec.yaml).
        optimizer/scheduler: ``recux.optim`` specs (lr and weight_decay come from the model's settings unless
        given); null: AdamW, and the lr_schedule."""
        if not 0.0 < float(mask_prob) <= 1.0:
            raise ConfigError(f"bert4rec: mask_prob must lie in (0, 1], got {mask_prob}")
        if not 0.0 <= float(last_item_prob) <= 1.0:
            raise ConfigError(f"bert4rec: last_item_prob must lie in [0, 1], got {last_item_prob}")
        super().__init__(
            max_len=int(max_len), hidden_size=int(hidden_size), inner_size=int(inner_size),
            n_layers=int(n_layers), n_heads=int(n_heads),
            dropout=float(dropout), attn_dropout=float(attn_dropout), mask_prob=float(mask_prob),
            last_item_prob=float(last_item_prob), lr=float(lr),
            weight_decay=float(weight_decay), lr_schedule=str(lr_schedule), batch_size=int(batch_size),
            max_epochs=int(max_epochs),
            patience=int(patience), eval_every=int(eval_every),
            window_stride=None if window_stride is None else int(window_stride), init_std=float(init_std),
            num_threads=num_threads, optimizer=optimizer, scheduler=scheduler,
        )

    @property
    def mask_token(self) -> int:
        return self.n_items + 1

    def _net_class(self) -> Any:
        from recux.plugins.models._seq_net import BERT4RecNet

        return BERT4RecNet

    def _n_tokens(self) -> int:
        return self.n_items + 2  # padding, items, [MASK]

    def _causal(self) -> bool:
        return False

    def _window_width(self) -> int:
        return self.hparams["max_len"]

    def _transform(self) -> Any:
        h = self.hparams
        return partial(mask_items, prob=h["mask_prob"], mask_token=self.mask_token,
                       last_prob=h["last_item_prob"])

    def scoring_rows(self, history: Interactions) -> np.ndarray:
        """Each user's last max_len - 1 items followed by [MASK], whose prediction is the recommendation."""
        rows = last_items(history, self.hparams["max_len"] - 1)
        return np.concatenate([rows, np.full((len(rows), 1), self.mask_token, dtype=rows.dtype)], axis=1)
