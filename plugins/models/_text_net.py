"""What the torch networks of text models share (LM-SASRec, two-tower; imported lazily): the item features
``feats`` (the frozen cached embeddings, or, with the encoder in the network, a memory bank of its latest
outputs), the bank's refresh, the fine-tuning strategy's loop hooks, per-group warm-up, and the cost timing
that ``_text_model.cost_record`` reads."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from recux.module import RecuxModule
from recux.optim import group_warmup, restore_lr


class TextEncoderNet(RecuxModule):
    """Base of networks over item text embeddings. ``encoder``: the text encoder module when the strategy trains
    it (None: frozen features); ``text`` the TextEncoder that runs it and ``texts`` the item texts."""

    pretrained_prefixes = ("encoder.",)  # init_from may lack these (a frozen run's weights into a LoRA run)

    def __init__(self, feats: np.ndarray, optimizer: dict[str, Any], scheduler: dict[str, Any] | None = None,
                 finetune: Any = None, encoder: Any = None, text: Any = None, texts: list[str] | None = None,
                 encode_per_step: int = 256) -> None:
        super().__init__(optimizer, scheduler, finetune)
        self.register_buffer("feats", torch.as_tensor(np.asarray(feats, np.float32)).clone())
        self.encoder, self.text, self.texts, self.encode_per_step = encoder, text, texts, int(encode_per_step)
        self.num_threads: int | None = None
        self.bank_stale = False
        self.timing = {"epoch_seconds": [], "steps": 0, "step_seconds": 0.0, "encoded_per_step": 0.0}

    @torch.no_grad()
    def refresh_bank(self) -> None:
        """Re-encode the whole catalogue with the current encoder (validation, test, after a fit)."""
        if self.encoder is not None and self.bank_stale:
            vecs = self.text.embed(self.texts, module=self.encoder)
            self.feats.copy_(torch.as_tensor(vecs, device=self.feats.device))
        self.bank_stale = False

    def keep_in_bank(self, idx: torch.Tensor | None, fresh: torch.Tensor | None) -> None:
        """After a step: the bank keeps the encoder's latest outputs of the items it encoded."""
        if idx is not None:
            with torch.no_grad():
                self.feats[idx] = fresh.detach().to(self.feats.dtype)
            self.bank_stale = True

    def regularized(self, loss: torch.Tensor) -> torch.Tensor:
        reg = getattr(self.finetune, "regularizer", lambda m: None)(self)
        return loss if reg is None else loss + reg

    # -- loop hooks
    def on_train_start(self) -> None:
        if self.encoder is not None:
            where = next(self.encoder.parameters()).device.type
            wanted = torch.device(getattr(self.text, "device", where)).type
            if where != wanted:
                from recux.errors import ConfigError

                raise ConfigError(f"the text encoder runs its inputs on {wanted!r} but the network trains on "
                                  f"{where!r}: set encoder.device to match the trainer (e.g. encoder.device=cuda "
                                  "with trainer=gpu)")
        hook = getattr(self.finetune, "on_fit_start", None)
        if hook is not None:
            hook(self, int(self.trainer.estimated_stepping_batches))

    def on_train_epoch_start(self) -> None:
        if self.num_threads:
            torch.set_num_threads(int(self.num_threads))
        self._epoch_start = time.perf_counter()

    def on_train_epoch_end(self) -> None:
        self.timing["epoch_seconds"].append(time.perf_counter() - self._epoch_start)

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        self._step_start = time.perf_counter()

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        hook = getattr(self.finetune, "after_step", None)
        if hook is not None:
            hook(self, int(self.global_step))
        self.timing["steps"] += 1
        self.timing["step_seconds"] += time.perf_counter() - self._step_start

    def optimizer_step(self, epoch: int, batch_idx: int, optimizer: Any, optimizer_closure: Any = None) -> None:
        saved = group_warmup(optimizer, int(self.global_step))  # per-group warm-up (finetune=full's encoder)
        try:
            super().optimizer_step(epoch, batch_idx, optimizer, optimizer_closure)
        finally:
            restore_lr(saved)
