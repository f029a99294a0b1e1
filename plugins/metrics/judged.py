"""judged_satisfaction@k: the mean rating a fitted language-model satisfaction judge (recux.lm_judge) predicts
for the items of each user's top-k list (-1 padding ignored; NaN for a user whose list is empty).

The judge is fitted beforehand and saved to a folder (``scripts/judge_validation.py --save-judge FOLDER``);
the metric's ``judge`` setting names that folder. The judge works in the item and user codes of the dataset it
was fitted on, so the run must load the same dataset with a preprocessing that keeps every user and item (the
default one does on ML-100K): the metric checks that the run's item ids equal the judge's, in code order, and
refuses a mismatch. The judge's inference is numpy only (no torch).

What the number means: an offline estimate of how a user would rate the recommended items, by a model trained
on ratings — biased toward what that model can predict (well-rated, warm items), and optimistic where the
judge's training ratings overlap the run's test data. It complements accuracy; it does not replace a test.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from recux.errors import ConfigError
from recux.metric import EvalContext, Metric, MetricResult
from recux.registry import register


def _load(folder: str) -> Any:
    """The saved judge, loaded once per (folder, modification time of its judge.json)."""
    from pathlib import Path

    meta = Path(folder) / "judge.json"
    return _load_at(folder, meta.stat().st_mtime_ns if meta.exists() else None)


@functools.lru_cache(maxsize=4)
def _load_at(folder: str, mtime: int | None) -> Any:
    from recux.lm_judge import Judge

    return Judge.load(folder)


@register("metric", "judged_satisfaction", higher_is_better=True, needs={"topk"})
class JudgedSatisfaction(Metric):
    """Mean judge-predicted rating of a user's top-k items (setting ``judge``: a saved judge's folder)."""

    def __init__(self, judge: str | None = None) -> None:
        if not judge:
            raise ConfigError("metric judged_satisfaction needs judge=<folder of a fitted judge>: fit and save one "
                              "with `scripts/judge_validation.py --save-judge FOLDER`, then list "
                              "{name: judged_satisfaction, judge: FOLDER} in metrics.plugins")
        self.judge = str(judge)

    def compute(self, ctx: EvalContext) -> MetricResult:
        judge = _load(self.judge)
        users = np.arange(len(ctx.topk)) if ctx.users is None else np.asarray(ctx.users)
        self._check(judge, ctx, users)
        topk = ctx.topk
        valid = topk >= 0
        pred = np.full(topk.shape, np.nan)
        rows, cols = np.nonzero(valid)
        pred[rows, cols] = judge.predict(users[rows], topk[rows, cols])
        out = {}
        for k in ctx.ks:
            part, ok = pred[:, :k], valid[:, :k]
            n = ok.sum(axis=1)
            total = np.where(ok, part, 0.0).sum(axis=1)
            out[f"judged_satisfaction@{k}"] = np.divide(total, n, out=np.full(len(n), np.nan), where=n > 0)
        return MetricResult(per_user=out)

    def _check(self, judge: Any, ctx: EvalContext, users: np.ndarray) -> None:
        if ctx.n_items != judge.n_items or (len(users) and int(users.max()) >= judge.n_users):
            raise ConfigError(f"judged_satisfaction: the judge at {self.judge} was fitted on {judge.n_users} users "
                              f"and {judge.n_items} items, the run has {ctx.n_items} items and user codes up to "
                              f"{int(users.max()) if len(users) else -1}; fit the judge on the run's dataset")
        ids = judge.meta.get("item_ids")
        frame = ctx.item_features
        if ids is not None and frame is not None and "item_id" in getattr(frame, "columns", ()):
            if [str(x) for x in frame["item_id"].to_list()] != list(ids):
                raise ConfigError(f"judged_satisfaction: the run's item ids differ from those the judge at "
                                  f"{self.judge} was fitted on (another dataset or preprocessing); fit the judge "
                                  "on the run's dataset with the same preprocessing")
