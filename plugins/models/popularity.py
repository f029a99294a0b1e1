"""MostPopular: every user gets the items with the most training interactions."""

from __future__ import annotations

import numpy as np

from recux.model import FitContext, Recommender
from recux.registry import register


@register("model", "pop", training="closed_form")
class MostPopular(Recommender):
    """Scores each item by its number of training interactions (the same list for every user)."""

    def __init__(self) -> None:
        self.counts = np.zeros(0, dtype=np.float32)

    def fit(self, ctx: FitContext) -> None:
        train = ctx.split.train
        self.n_users, self.n_items = train.n_users, train.n_items
        self.counts = train.item_counts().astype(np.float32)

    def score(self, users: np.ndarray) -> np.ndarray:
        return np.repeat(self.counts[None, :], len(users), axis=0)  # writable: callers mask in place

    def score_histories(self, histories) -> np.ndarray:
        """The same list whatever the history (popularity does not depend on the user)."""
        return np.repeat(self.counts[None, :], len(histories), axis=0)
