"""Sparsity: remove ``rate x |train|`` training interactions chosen uniformly at random (validation and test
keep theirs)."""

from __future__ import annotations

import numpy as np

from recux.injection import Injection, InjectionContext, Injector, check_rate
from recux.registry import register


@register("injector", "sparsity")
class Sparsity(Injector):
    """Removed interactions: rate x |train| training rows dropped uniformly at random."""

    def __init__(self, rate: float = 0.3) -> None:
        """rate: dropped rows as a fraction of the training interactions, in [0, 1)."""
        self.rate = check_rate("sparsity", "rate", rate)

    def inject(self, ctx: InjectionContext) -> Injection:
        train = ctx.train
        n = int(round(self.rate * len(train)))
        drop = ctx.rng.choice(len(train), size=n, replace=False)
        keep = np.ones(len(train), dtype=bool)
        keep[drop] = False
        return Injection(train.subset(keep), info={"removed": n})
