"""The metric contract: a metric plugin reads an evaluation context (top-k lists, ground truth in CSR,
optional popularity/features/groups) and returns per-user values and/or corpus-level values."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class EvalContext:
    """Inputs shared by all metrics of one evaluation. Row r of every per-user array is user ``users[r]``."""

    topk: np.ndarray  # (n, K) int32 item codes, best first; -1 pads users with fewer than K candidates
    gt_indptr: np.ndarray  # (n+1,) int64: ground truth of row r is gt_indices[gt_indptr[r]:gt_indptr[r+1]]
    gt_indices: np.ndarray  # int32 item codes, sorted within each row
    n_items: int
    ks: tuple[int, ...] = (5, 10, 20)
    users: np.ndarray | None = None  # (n,) user codes
    scores: np.ndarray | None = None  # (n, K) float32 scores of topk
    train_item_counts: np.ndarray | None = None  # (n_items,) int64 training interactions per item
    n_train_users: int | None = None  # users in the training data (for novelty's self-information)
    item_features: Any = None  # polars DataFrame, row i = item code i
    user_groups: np.ndarray | None = None  # (n,) group label per evaluated user
    gt_relevance: np.ndarray | None = None  # float64 grade of each gt_indices entry (graded metrics)
    # Training history of row r's user: history_indices[history_indptr[r]:history_indptr[r+1]], int32 item
    # codes sorted within each row (need "history"; None when evaluate_topk got no ``history``).
    history_indptr: np.ndarray | None = None
    history_indices: np.ndarray | None = None
    # (n_items, d) float32 language-model item embeddings with unit rows (need "item_embeddings"; None unless an
    # active metric needs them: evaluate_topk resolves a lazy source and normalises the rows once).
    item_embeddings: np.ndarray | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class MetricResult:
    """``per_user[name]`` is a float64 array over evaluated users (reported as its mean);
    ``aggregate[name]`` is a single corpus-level value (e.g. catalogue coverage)."""

    per_user: dict[str, np.ndarray] = field(default_factory=dict)
    aggregate: dict[str, float] = field(default_factory=dict)


class Metric(ABC):
    """Base class of metric plugins; constructor arguments are the metric's settings."""

    @abstractmethod
    def compute(self, ctx: EvalContext) -> MetricResult: ...
