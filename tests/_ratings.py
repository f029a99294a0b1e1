"""Random explicit ratings for rating-model tests: n distinct (user, item) pairs with integer ratings 1-5."""

from __future__ import annotations

import numpy as np


def random_ratings(seed: int = 0, n_users: int = 30, n_items: int = 20, n: int = 300):
    """(user, item, rating, n_users, n_items) of n distinct pairs drawn with ``default_rng(seed)``."""
    rng = np.random.default_rng(seed)
    pairs = rng.choice(n_users * n_items, n, replace=False)
    return pairs // n_items, pairs % n_items, rng.integers(1, 6, n).astype(float), n_users, n_items
