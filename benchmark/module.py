"""The LightningModule base of recux's networks: the optimiser (and optional schedule) comes from config and
is built over the fine-tuning strategy's trainable parameters, in one place. Imports torch and Lightning:
networks import it lazily, inside a model's fit."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytorch_lightning as pl

from recux.finetune import FineTuneStrategy
from recux.optim import build_optimizer, build_scheduler


class RecuxModule(pl.LightningModule):
    """Base of recux networks. ``optimizer``/``scheduler``: specs for ``recux.optim`` (scheduler None: a
    constant rate); ``finetune``: the strategy whose ``trainable_parameters`` the optimiser gets (None: every
    parameter with requires_grad, as when a saved model is loaded). Subclasses implement ``training_step`` and
    ``score``; they may not override ``configure_optimizers`` (so no network can train parameters the
    strategy froze)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "configure_optimizers" in cls.__dict__:
            raise TypeError(f"{cls.__name__} overrides configure_optimizers; set the optimizer/scheduler specs "
                            "instead (RecuxModule builds them over the fine-tuning strategy's parameters)")

    def __init__(self, optimizer: Mapping[str, Any], scheduler: Mapping[str, Any] | None = None,
                 finetune: FineTuneStrategy | None = None) -> None:
        super().__init__()
        self.optimizer_spec = dict(optimizer)
        self.scheduler_spec = None if scheduler is None else dict(scheduler)
        self.finetune = finetune

    def trainable_parameters(self) -> list[Any]:
        return list((self.finetune or FineTuneStrategy()).trainable_parameters(self))

    def configure_optimizers(self) -> Any:
        opt = build_optimizer(self.optimizer_spec, self.trainable_parameters())
        sched = build_scheduler(self.scheduler_spec, opt, lambda: self.trainer.estimated_stepping_batches)
        return opt if sched is None else {"optimizer": opt, "lr_scheduler": sched}


def host_or_device(scores: Any) -> Any:
    """A network's score block for ``Recommender.score``: float32 numpy when computed on the CPU (as before),
    the float32 tensor itself when computed on a GPU, so ``recux.ranking.rank_topk`` takes the top-k on the
    device and copies only (users x k) back (every caller of ``score`` accepts tensors via ``to_numpy``)."""
    scores = scores.float()
    return scores if scores.device.type != "cpu" else scores.cpu().numpy()
