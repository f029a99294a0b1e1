"""Lightning glue shared by every trainable model: fast tensor batches, per-epoch validation through
``FitContext.validate``, early stopping and best-checkpoint restore, and the per-epoch history.

This module imports torch and pytorch_lightning at import time: models import it inside ``fit``.
Epochs are numbered from 0 (Lightning's ``current_epoch``).
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numba as nb
import numpy as np
import pytorch_lightning as pl
import scipy.sparse as sp
import torch
from pytorch_lightning.callbacks import EarlyStopping, ModelCheckpoint, TQDMProgressBar
from pytorch_lightning.utilities.exceptions import SIGTERMException

from recux.batches import EpochBatches
from recux.errors import ConfigError
from recux.model import FitContext
from recux.signals import Terminated

_log = logging.getLogger(__name__)

ScoreFn = Callable[[np.ndarray], Any]

class _DropAdverts(logging.Filter):
    """Lightning prints a product tip on every fit; keep its useful lines (GPU available, stop reason)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "litlogger" not in record.getMessage()


def quiet_lightning() -> None:
    """Silence Lightning's advert and a deprecation warning it raises from its own code (not actionable)."""
    lg = logging.getLogger("pytorch_lightning.utilities.rank_zero")
    if not any(isinstance(f, _DropAdverts) for f in lg.filters):
        lg.addFilter(_DropAdverts())
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
    # under DDP, rank 0 validates and broadcasts, so every rank logs the same value: no sync needed
    warnings.filterwarnings("ignore", message=r".*It is recommended to use `self.log\(.*sync_dist=True.*")


@contextmanager
def threads(n: int | None) -> Iterator[None]:
    """Run a block with ``n`` torch and numba threads, then restore the process's counts (None: leave them),
    so that in a sweep running several jobs in one process no job inherits another model's setting."""
    if not n:
        yield
        return
    prev_torch, prev_numba = torch.get_num_threads(), nb.get_num_threads()
    torch.set_num_threads(int(n))
    nb.set_num_threads(max(1, min(int(n), nb.config.NUMBA_NUM_THREADS)))
    try:
        yield
    finally:
        torch.set_num_threads(prev_torch)
        nb.set_num_threads(prev_numba)


@nb.njit(cache=True)  # serial: the search is cheap and stays off the threads torch uses
def _member_kernel(indptr, indices, users, items, out):
    """out[j] = items[j] is among the sorted row indices[indptr[users[j]]:indptr[users[j] + 1]]."""
    for j in range(len(users)):
        lo = indptr[users[j]]
        hi = indptr[users[j] + 1]
        x = items[j]
        while lo < hi:  # binary search
            mid = (lo + hi) // 2
            if indices[mid] < x:
                lo = mid + 1
            else:
                hi = mid
        out[j] = lo < indptr[users[j] + 1] and indices[lo] == x


class PairBatches(EpochBatches):
    """Shuffled ``(user, positive item, negatives)`` LongTensor batches, built with whole-epoch tensor ops.

    Each ``iter()`` is one epoch: a fresh permutation and ``num_negatives`` uniform negatives per pair
    (drawn with torch.randint; with ``exclude_positives`` a draw that hits one of the user's training
    items is redrawn). ``negatives`` has shape (batch, num_negatives). Seeding and rank slicing: see
    ``recux.batches.EpochBatches``.
    """

    def __init__(
        self,
        users: np.ndarray,
        items: np.ndarray,
        n_items: int,
        batch_size: int = 2048,
        num_negatives: int = 1,
        seed: int = 0,
        exclude_positives: bool = True,
        max_redraws: int = 20,
    ) -> None:
        if batch_size < 1 or num_negatives < 1:
            raise ConfigError(f"batch_size and num_negatives must be >= 1, got {batch_size}, {num_negatives}")
        self.users = torch.as_tensor(np.asarray(users), dtype=torch.long)
        self.items = torch.as_tensor(np.asarray(items), dtype=torch.long)
        if len(self.users) == 0:
            raise ConfigError("no training interactions to build batches from; check the split")
        super().__init__(len(self.users), batch_size, seed)
        self.n_items = int(n_items)
        self.num_negatives = int(num_negatives)
        self.max_redraws = int(max_redraws)
        self._csr: tuple[np.ndarray, np.ndarray] | None = None
        if exclude_positives:  # each user's training items, sorted, for the membership test
            n_users = int(self.users.max()) + 1
            ones = np.ones(len(self.users), dtype=np.int32)
            m = sp.csr_matrix((ones, (users, items)), shape=(n_users, self.n_items))
            m.sum_duplicates()
            m.sort_indices()
            self._csr = (m.indptr.astype(np.int64), m.indices.astype(np.int32))

    def sample_negatives(self, users: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """(len(users), num_negatives) uniform item codes, redrawing hits on training positives."""
        neg = torch.randint(self.n_items, (len(users), self.num_negatives), generator=gen)
        if self._csr is None:
            return neg
        indptr, indices = self._csr
        u = users[:, None].expand_as(neg).reshape(-1).numpy()
        flat = neg.view(-1)  # shares memory with neg
        todo = np.arange(len(u))
        for _ in range(self.max_redraws):
            hit = np.empty(len(todo), dtype=np.bool_)
            _member_kernel(indptr, indices, u[todo], flat.numpy()[todo], hit)
            todo = todo[hit]
            if len(todo) == 0:
                break
            flat[torch.from_numpy(todo)] = torch.randint(self.n_items, (len(todo),), generator=gen)
        return neg

    def _epoch(self, perm: torch.Tensor, gen: torch.Generator) -> Iterator[tuple[torch.Tensor, ...]]:
        users, items = self.users[perm], self.items[perm]
        negs = self.sample_negatives(users, gen)
        bs = self.batch_size
        for start in range(0, len(perm), bs):
            yield users[start:start + bs], items[start:start + bs], negs[start:start + bs]


class EpochValidation(pl.Callback):
    """At each evaluated epoch's end: validate through ``ctx.validate``, log ``val/<metric>`` and
    ``train/loss``, and append the epoch's record to ``ctx.history``: epoch, train_loss, epoch_seconds
    (training only), steps, and on evaluated epochs ``val/<metric>`` values and val_seconds.

    Only global rank 0 validates; the result is broadcast so every rank logs the same values and the
    early-stopping decision stays in step (no deadlock under DDP).
    """

    def __init__(self, ctx: FitContext, score_fn: ScoreFn, eval_every: int, max_epochs: int) -> None:
        self.ctx = ctx
        self.score_fn = score_fn
        self.eval_every = max(1, int(eval_every))
        self.max_epochs = max_epochs
        self.fresh = False  # validated in the epoch that is ending
        self._t0 = 0.0
        self._loss_sum: torch.Tensor | None = None
        self._n_batches = 0

    def should_validate(self, epoch: int) -> bool:
        if self.ctx.validate is None:
            return False
        return (epoch + 1) % self.eval_every == 0 or epoch + 1 >= self.max_epochs

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.fresh = False
        self._loss_sum = None
        self._n_batches = 0
        self._t0 = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        loss = outputs.get("loss") if isinstance(outputs, Mapping) else outputs
        if loss is None:
            return
        loss = loss.detach()  # summed on device: no host sync per step
        self._loss_sum = loss if self._loss_sum is None else self._loss_sum + loss
        self._n_batches += 1

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        train_seconds = time.perf_counter() - self._t0
        epoch = trainer.current_epoch
        loss = float(self._loss_sum) / self._n_batches if self._n_batches else float("nan")
        record: dict[str, float] = {"epoch": epoch, "train_loss": loss, "epoch_seconds": train_seconds,
                                    "steps": self._n_batches}
        distributed = trainer.world_size > 1
        pl_module.log("train/loss", loss, on_epoch=True, prog_bar=True, sync_dist=distributed)
        pl_module.log("time/epoch_seconds", train_seconds, on_epoch=True)
        if self.should_validate(epoch):
            metrics: dict[str, float] | None = None
            if trainer.is_global_zero:
                t0 = time.perf_counter()
                metrics = validate(pl_module, self.ctx, self.score_fn)
                metrics["seconds"] = time.perf_counter() - t0
            metrics = trainer.strategy.broadcast(metrics, src=0)
            val_seconds = metrics.pop("seconds")
            if self.ctx.monitor not in metrics:
                raise ConfigError(
                    f"ctx.validate returned {sorted(metrics)} but early stopping monitors "
                    f"'{self.ctx.monitor}'; "
                    "make the validator compute it or set FitContext.monitor to one of those."
                )
            for name, value in metrics.items():
                pl_module.log(f"val/{name}", value, on_epoch=True, prog_bar=name == self.ctx.monitor)
                record[f"val/{name}"] = value
            pl_module.log("time/val_seconds", val_seconds, on_epoch=True)
            record["val_seconds"] = val_seconds
            self.fresh = True
            if trainer.is_global_zero:  # one line per validation in run.log: progress without a progress bar
                best = max([r[f"val/{self.ctx.monitor}"] for r in self.ctx.history
                            if f"val/{self.ctx.monitor}" in r] + [metrics[self.ctx.monitor]])
                _log.info("epoch %d: train/loss %.4f, val/%s %.4f (best %.4f), %.2f s train + %.2f s val",
                          epoch, loss, self.ctx.monitor, metrics[self.ctx.monitor], best, train_seconds,
                          val_seconds)
        self.ctx.history.append(record)


class _FreshEarlyStopping(EarlyStopping):
    """Early stopping that only counts epochs where validation ran (patience = evaluations)."""

    def __init__(self, validation: EpochValidation, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._validation = validation

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._validation.fresh:
            super().on_train_epoch_end(trainer, pl_module)


class _FreshCheckpoint(ModelCheckpoint):
    """Best-so-far checkpoint, considered only on epochs where validation ran."""

    def __init__(self, validation: EpochValidation, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._validation = validation

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._validation.fresh:
            super().on_train_epoch_end(trainer, pl_module)


def validate(module: Any, ctx: FitContext, score_fn: ScoreFn) -> dict[str, float]:
    """``ctx.validate(score_fn)`` with ``module`` in eval mode and no gradients, its mode restored after."""
    was = module.training
    module.eval()
    with torch.no_grad():
        metrics = {k: float(v) for k, v in ctx.validate(score_fn).items()}
    module.train(was)
    return metrics


def _validate_start(module: Any, ctx: FitContext, score_fn: ScoreFn) -> tuple[float, dict[str, Any]] | None:
    """Starting weights (``init_from``) are a candidate of model selection: their validation score and a copy
    of them, recorded in ``ctx.history`` as epoch -1 (None without a validator). A fit that never beats them on
    validation keeps them (best_epoch -1), so a fine-tuning stage can only be selected when it helps."""
    if ctx.validate is None:
        return None
    metrics = validate(module, ctx, score_fn)
    ctx.history.append({"epoch": -1, **{f"val/{k}": v for k, v in metrics.items()}})
    _log.info("starting weights (init_from): val/%s %.4f", ctx.monitor, metrics[ctx.monitor])
    return metrics[ctx.monitor], {k: v.detach().clone() for k, v in module.state_dict().items()}


@dataclass
class FitSummary:
    """What a Lightning fit did: the epoch whose weights were kept and its monitored validation value."""

    epochs_run: int
    best_epoch: int | None  # None when there was no validation (the last epoch's weights are kept)
    best_score: float | None
    stopped_early: bool
    train_seconds: float


def build_trainer_kwargs(ctx: FitContext, max_epochs: int, n_batches: int) -> tuple[dict[str, Any], int]:
    """pl.Trainer kwargs from ctx.trainer plus the run's logger; returns (kwargs, progress refresh rate).

    The model's ``max_epochs`` is the budget; a ``max_epochs`` in ctx.trainer (e.g. a quick-run override)
    can only lower it.
    """
    kw = dict(ctx.trainer or {})
    refresh = int(kw.pop("progress_refresh_rate", 10) or 10)
    cap = kw.pop("max_epochs", None)
    kw["max_epochs"] = int(max_epochs if cap in (None, -1) else min(int(cap), int(max_epochs)))
    kw["logger"] = ctx.logger if ctx.logger is not None else False
    kw.setdefault("enable_model_summary", False)
    kw.setdefault("num_sanity_val_steps", 0)
    kw.setdefault("log_every_n_steps", max(1, min(50, n_batches)))
    kw.setdefault("enable_progress_bar", True)
    return kw, refresh


def fit_lightning(
    module: pl.LightningModule,
    ctx: FitContext,
    batches: Any,
    *,
    max_epochs: int,
    patience: int = 10,
    score_fn: ScoreFn | None = None,
    eval_every: int = 1,
    min_delta: float = 0.0,
) -> FitSummary:
    """Train ``module`` on ``batches`` (any sized iterable of batches, re-iterated each epoch).

    Validates every ``eval_every`` epochs (and at the last) with ``ctx.validate(score_fn)``, stops after
    ``patience`` evaluations without improving ``ctx.monitor``, and loads the best checkpoint's weights
    into ``module`` before returning. Without ``ctx.validate`` it trains ``max_epochs`` and keeps the end.
    """
    if score_fn is None:
        score_fn = getattr(module, "score", None)
        if score_fn is None:
            raise ConfigError(f"{type(module).__name__} has no score(users) method; pass score_fn=")
    n_batches = len(batches) if hasattr(batches, "__len__") else 1
    kw, refresh = build_trainer_kwargs(ctx, max_epochs, n_batches)
    validation = EpochValidation(ctx, score_fn, eval_every, kw["max_epochs"])
    callbacks: list[pl.Callback] = list(kw.pop("callbacks", None) or [])
    callbacks.append(validation)
    if kw["enable_progress_bar"]:
        callbacks.append(TQDMProgressBar(refresh_rate=refresh, leave=False))

    tmp_dir = None
    if ctx.run_dir is not None:
        ckpt_dir = Path(ctx.run_dir) / "checkpoints"
    else:
        tmp_dir = tempfile.mkdtemp(prefix="recux-ckpt-")
        ckpt_dir = Path(tmp_dir)
    kw.setdefault("default_root_dir", str(ckpt_dir))

    checkpoint = None
    stopper = None
    monitor = f"val/{ctx.monitor}"
    if ctx.validate is not None:
        stopper = _FreshEarlyStopping(
            validation, monitor=monitor, mode="max", patience=int(patience), min_delta=float(min_delta),
            check_on_train_epoch_end=True, strict=True,
        )
        checkpoint = _FreshCheckpoint(
            validation, dirpath=str(ckpt_dir), filename="best", monitor=monitor, mode="max", save_top_k=1,
            save_weights_only=True, save_on_train_epoch_end=True, auto_insert_metric_name=False,
            enable_version_counter=False,
        )
        callbacks += [stopper, checkpoint]
        kw["enable_checkpointing"] = True
    else:
        kw["enable_checkpointing"] = False

    start = time.perf_counter()
    initial = _validate_start(module, ctx, score_fn) if ctx.init_from is not None else None
    quiet_lightning()
    trainer = pl.Trainer(callbacks=callbacks, **kw)
    try:
        try:
            trainer.fit(module, train_dataloaders=batches)
        except SIGTERMException:  # Lightning's is a SystemExit with code 0: a scheduler would count a success
            raise Terminated() from None
        if trainer.received_sigterm:  # stopped by SIGTERM without raising: not a result either
            raise Terminated()
        best_epoch = best_score = None
        if checkpoint is not None and checkpoint.best_model_path:
            state = torch.load(checkpoint.best_model_path, map_location="cpu", weights_only=False)
            module.load_state_dict(state["state_dict"])
            best_epoch = int(state["epoch"])
            key = f"val/{ctx.monitor}"
            recorded = [r[key] for r in ctx.history if r["epoch"] == best_epoch and key in r]
            best_score = recorded[-1] if recorded else float(checkpoint.best_model_score)
        if initial is not None and (best_score is None or initial[0] > best_score):
            module.load_state_dict(initial[1])  # training from init_from never beat its start on validation
            best_epoch, best_score = -1, initial[0]
        if trainer.world_size > 1:  # every rank has read rank 0's checkpoint before rank 0 removes it
            trainer.strategy.barrier("recux-restore-best")
    finally:
        if tmp_dir is not None:
            shutil.rmtree(tmp_dir, ignore_errors=True)
    return FitSummary(
        epochs_run=trainer.current_epoch,
        best_epoch=best_epoch,
        best_score=best_score,
        stopped_early=bool(stopper is not None and stopper.stopped_epoch > 0),
        train_seconds=time.perf_counter() - start,
    )
