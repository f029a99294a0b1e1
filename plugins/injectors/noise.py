"""Random-interaction noise: add ``rate x |train|`` uniformly random (user, item) pairs that the user never
interacted with (in training, validation or test), to the training data only. A real user's added row gets a
rating drawn from the training ratings and a time inside that user's training period (when the data has them)."""

from __future__ import annotations

import numpy as np

from recux.injection import (
    Injection,
    InjectionContext,
    Injector,
    append_rows,
    check_rate,
    sample_ratings,
    user_timestamps,
)
from recux.registry import register


def random_new_pairs(known, n: int, rng: np.random.Generator, users: int | None = None) -> tuple[np.ndarray, ...]:
    """``n`` distinct (user, item) pairs drawn uniformly among those not in the binary matrix ``known``
    (over its first ``users`` rows; all by default); refuses when fewer than ``n`` are free."""
    n_users = known.shape[0] if users is None else users
    n_items = known.shape[1]
    coo = known[:n_users].tocoo()
    taken = np.sort(coo.row.astype(np.int64) * n_items + coo.col)
    free = n_users * n_items - len(taken)
    if n > free:
        raise ValueError(f"asked for {n} new pairs but only {free} (user, item) pairs are free")
    chosen = np.zeros(0, dtype=np.int64)
    while len(chosen) < n:
        draw = rng.integers(0, n_users * n_items, size=2 * (n - len(chosen)) + 16)
        draw = draw[~np.isin(draw, taken)]
        pool = np.concatenate([chosen, draw])
        _, first = np.unique(pool, return_index=True)
        chosen = pool[np.sort(first)][:n]  # keeps the order of the draws: the first n distinct free pairs
    return (chosen // n_items).astype(np.int32), (chosen % n_items).astype(np.int32)


@register("injector", "noise")
class Noise(Injector):
    """Random interactions: rate x |train| uniformly random unobserved (user, item) pairs added to training."""

    def __init__(self, rate: float = 0.1) -> None:
        """rate: added pairs as a fraction of the training interactions, in [0, 1]."""
        self.rate = check_rate("noise", "rate", rate, closed=True)

    def inject(self, ctx: InjectionContext) -> Injection:
        train = ctx.train
        n = int(round(self.rate * len(train)))
        users, items = random_new_pairs(ctx.known, n, ctx.rng, users=ctx.n_real_users)
        out = append_rows(train, users, items, rating=sample_ratings(train, n, ctx.rng),
                          timestamp=user_timestamps(train, users, ctx.rng))
        return Injection(out, info={"added": n})
