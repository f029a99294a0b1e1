"""Random scores: the floor every model must beat. A hash of (seed, user, item) makes each score
independent of how users are batched, and the same seed gives the same scores."""

from __future__ import annotations

import numpy as np

from recux.model import FitContext, Recommender
from recux.registry import register

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser: a bijective, well-mixed hash of uint64 values (wraps modulo 2**64)."""
    x = x + _GOLDEN
    x = (x ^ (x >> np.uint64(30))) * _M1
    x = (x ^ (x >> np.uint64(27))) * _M2
    return x ^ (x >> np.uint64(31))


@register("model", "random", training="none")
class RandomModel(Recommender):
    """Uniform random scores in [0, 1), a deterministic function of (seed, user, item)."""

    def __init__(self, seed: int | None = None) -> None:
        self.seed = seed  # None: use the run's seed (FitContext.seed)
        self._key = np.uint64(0)

    def fit(self, ctx: FitContext) -> None:
        self.n_users, self.n_items = ctx.split.n_users, ctx.split.n_items
        seed = ctx.seed if self.seed is None else self.seed
        self._key = _splitmix64(np.array([seed], dtype=np.uint64))[0]

    def score(self, users: np.ndarray) -> np.ndarray:
        users = np.asarray(users, dtype=np.uint64)
        cell = users[:, None] * np.uint64(self.n_items) + np.arange(self.n_items, dtype=np.uint64)[None, :]
        bits = _splitmix64(cell ^ self._key) >> np.uint64(40)  # top 24 bits: exact in float32
        return bits.astype(np.float32) * np.float32(1.0 / (1 << 24))
