"""Shilling (profile-injection) attacks: fake users whose profiles push a set of target items, added to the
training data only.

Attack models after Lam & Riedl (2004, "Shilling recommender systems for fun and profit", WWW) and Mobasher,
Burke, Bhaumik & Williams (2007, "Toward trustworthy recommender systems", ACM TOIT); see Gunes, Kaleli, Bilge &
Polat (2014, "Shilling attacks against recommender systems: a comprehensive survey", AI Review). Each fake
profile holds every target item, the *selected* items (bandwagon only) and ``filler_size x n_items`` filler items:

- ``random_attack``: fillers uniform over the other items (ratings ~ N(global mean, global std)).
- ``average_attack``: the attacker knows each item's average; fillers are rated ~ N(item mean, item std).
  recux's ranking models read interactions as implicit feedback (every row a positive), where every observed
  "rating" is the same 1: knowing the average then means knowing how often each item is consumed, so by default
  (``fillers: popularity``) fillers are drawn with probability proportional to their training popularity and
  each fake profile looks like an average user's. ``fillers: uniform`` gives the classic rating-data attack
  (uniform fillers, only their ratings carry the item means).
- ``bandwagon_attack``: the ``n_selected`` most popular training items are in every profile (rated the maximum),
  fillers uniform (ratings ~ N(global mean, global std)).

Targets (rated the maximum) are ``n_targets`` items drawn uniformly, seeded, among the unpopular ones: items
whose training popularity is at most its ``target_quantile`` quantile (0.5: the less popular half). Attack size
is the number of fake profiles as a fraction of the real users; filler size the fraction of the catalogue each
profile fills. Ratings are rounded to the nearest training rating value and clipped to the training range; fake
rows get times drawn uniformly within the training period.
"""

from __future__ import annotations

import numpy as np

from recux.errors import ConfigError
from recux.injection import Injection, InjectionContext, Injector, append_rows, check_rate
from recux.registry import register


class ShillingAttack(Injector):
    """Shared profile builder; subclasses choose the filler items and their ratings."""

    name = "attack"

    def __init__(self, attack_size: float = 0.03, filler_size: float = 0.05, n_targets: int = 5,
                 target_quantile: float = 0.5, n_selected: int = 0) -> None:
        self.attack_size = check_rate(self.name, "attack_size", attack_size, upper=1.0, closed=True)
        self.filler_size = check_rate(self.name, "filler_size", filler_size)
        self.target_quantile = check_rate(self.name, "target_quantile", target_quantile, closed=True)
        if int(n_targets) < 1 or int(n_selected) < 0:
            raise ConfigError(f"injector '{self.name}': n_targets must be >= 1 and n_selected >= 0, got "
                              f"n_targets={n_targets}, n_selected={n_selected}")
        self.n_targets, self.n_selected = int(n_targets), int(n_selected)

    # -- hooks
    def fillers(self, pop: np.ndarray, candidates: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` distinct filler items among ``candidates`` (default: uniform)."""
        return rng.choice(candidates, size=n, replace=False)

    def filler_ratings(self, train, items: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Ratings of filler items (default: ~ N(global mean, global std))."""
        r = train.rating
        return rng.normal(float(r.mean()), float(r.std()), size=len(items))

    # -- shared
    def targets(self, pop: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        pool = np.flatnonzero(pop <= np.quantile(pop, self.target_quantile))
        if len(pool) < self.n_targets:
            raise ConfigError(f"injector '{self.name}': only {len(pool)} items at or below popularity quantile "
                              f"target_quantile={self.target_quantile}; lower n_targets or raise target_quantile")
        return np.sort(rng.choice(pool, size=self.n_targets, replace=False))

    def inject(self, ctx: InjectionContext) -> Injection:
        train, rng = ctx.train, ctx.rng
        n_items = train.n_items
        pop = train.item_counts()
        targets = self.targets(pop, rng)
        selected = np.setdiff1d(np.argsort(-pop, kind="stable")[:self.n_selected], targets)
        candidates = np.setdiff1d(np.arange(n_items), np.concatenate([targets, selected]))
        n_fake = int(round(self.attack_size * ctx.n_real_users))
        n_fill = int(round(self.filler_size * n_items))
        if n_fill > len(candidates):
            raise ConfigError(f"injector '{self.name}': filler_size={self.filler_size} asks for {n_fill} fillers, "
                              f"but only {len(candidates)} items are left; lower filler_size")
        users, items, ratings = [], [], []
        for f in range(n_fake):
            fill = self.fillers(pop, candidates, n_fill, rng)
            profile = np.concatenate([targets, selected, fill])
            users.append(np.full(len(profile), train.n_users + f, dtype=np.int32))
            items.append(profile)
            if train.rating is not None:
                ratings.append(np.concatenate([np.full(len(targets) + len(selected), np.inf),
                                               self.filler_ratings(train, fill, rng)]))
        users_a = np.concatenate(users) if users else np.zeros(0, np.int32)
        items_a = np.concatenate(items).astype(np.int32) if items else np.zeros(0, np.int32)
        out = append_rows(train, users_a, items_a, n_users=train.n_users + n_fake,
                          rating=_on_scale(train.rating, ratings), timestamp=_times(train, len(users_a), rng))
        info = {"n_fake_users": n_fake, "n_fillers": n_fill, "targets": targets.tolist(),
                "selected": selected.tolist(), "added": int(len(users_a))}
        return Injection(out, n_fake_users=n_fake, info=info, targets=targets)


def _on_scale(scale: np.ndarray | None, ratings: list[np.ndarray]) -> np.ndarray | None:
    """Ratings rounded to the nearest value of the training scale and clipped to it (inf: the maximum)."""
    if scale is None:
        return None
    r = np.concatenate(ratings) if ratings else np.zeros(0)
    values = np.unique(scale) if len(scale) else np.array([1.0])
    r = np.clip(r, values[0], values[-1])
    idx = np.clip(np.searchsorted(values, r), 1, len(values) - 1) if len(values) > 1 else np.zeros(len(r), int)
    if len(values) > 1:
        idx = np.where(np.abs(values[idx - 1] - r) <= np.abs(values[idx] - r), idx - 1, idx)
    return values[idx].astype(np.float32)


def _times(train, n: int, rng: np.random.Generator) -> np.ndarray | None:
    if train.timestamp is None:
        return None
    t = train.timestamp
    lo, hi = (int(t.min()), int(t.max())) if len(t) else (0, 0)
    return rng.integers(lo, hi + 1, size=n, dtype=np.int64)


@register("injector", "random_attack")
class RandomAttack(ShillingAttack):
    """Random shilling attack: fake profiles with the targets and uniformly random fillers (Lam & Riedl 2004)."""

    name = "random_attack"


@register("injector", "average_attack")
class AverageAttack(ShillingAttack):
    """Average shilling attack: fillers rated at their item mean; implicit data: fillers drawn by popularity."""

    name = "average_attack"

    def __init__(self, attack_size: float = 0.03, filler_size: float = 0.05, n_targets: int = 5,
                 target_quantile: float = 0.5, fillers: str = "popularity") -> None:
        super().__init__(attack_size, filler_size, n_targets, target_quantile)
        if fillers not in ("popularity", "uniform"):
            raise ConfigError(f"injector 'average_attack': fillers={fillers!r}; use 'popularity' (implicit "
                              "feedback: profiles consume items as often as an average user) or 'uniform'")
        self.filler_rule = fillers

    def fillers(self, pop, candidates, n, rng):
        if self.filler_rule == "uniform":
            return super().fillers(pop, candidates, n, rng)
        weights = pop[candidates].astype(np.float64)
        if weights.sum() <= 0 or np.count_nonzero(weights) < n:
            weights = weights + 1.0  # too few consumed items to draw from: smooth so every item can be drawn
        return rng.choice(candidates, size=n, replace=False, p=weights / weights.sum())

    def filler_ratings(self, train, items, rng):
        r, n_items = train.rating.astype(np.float64), train.n_items
        count = np.bincount(train.item, minlength=n_items)
        mean = np.bincount(train.item, weights=r, minlength=n_items) / np.maximum(count, 1)
        var = np.bincount(train.item, weights=r * r, minlength=n_items) / np.maximum(count, 1) - mean ** 2
        mu = np.where(count[items] > 0, mean[items], r.mean())
        sd = np.where(count[items] > 1, np.sqrt(np.maximum(var[items], 0.0)), r.std())
        return rng.normal(mu, sd)


@register("injector", "bandwagon_attack")
class BandwagonAttack(ShillingAttack):
    """Bandwagon shilling attack: the most popular items and the targets in every fake profile, random fillers."""

    name = "bandwagon_attack"

    def __init__(self, attack_size: float = 0.03, filler_size: float = 0.05, n_targets: int = 5,
                 target_quantile: float = 0.5, n_selected: int = 10) -> None:
        super().__init__(attack_size, filler_size, n_targets, target_quantile, n_selected)
