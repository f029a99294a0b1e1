"""Random scores: the floor every model must beat. A hash of (seed, user, item) makes each score
independent of how users are batched, and the same seed gives the same scores."""

from __future__ import annotations

import numpy as np

from recux.hashing import splitmix64
from recux.model import FitContext, Recommender
from recux.registry import register


@register("model", "random", training="none", capabilities={"scores_unseen_items"})
class RandomModel(Recommender):
    """Uniform random scores in [0, 1), a deterministic function of (seed, user, item)."""

    def __init__(self, seed: int | None = None) -> None:
        self.seed = seed  # None: use the run's seed (FitContext.seed)
        self._key = np.uint64(0)

    def fit(self, ctx: FitContext) -> None:
        self.n_users, self.n_items = ctx.split.n_users, ctx.split.n_items
        seed = ctx.seed if self.seed is None else self.seed
        self._key = splitmix64(np.array([seed], dtype=np.uint64))[0]

    def score(self, users: np.ndarray) -> np.ndarray:
        users = np.asarray(users, dtype=np.uint64)
        cell = users[:, None] * np.uint64(self.n_items) + np.arange(self.n_items, dtype=np.uint64)[None, :]
        bits = splitmix64(cell ^ self._key) >> np.uint64(40)  # top 24 bits: exact in float32
        return bits.astype(np.float32) * np.float32(1.0 / (1 << 24))
