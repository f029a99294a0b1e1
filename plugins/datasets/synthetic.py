"""A seeded synthetic world whose true preferences are known, so metrics can be checked against the truth.

Users and items get latent factors; the true preference is their scaled dot product. Each user observes
items sampled without replacement from softmax(true score + observation noise + log popularity), with a
power-law (Zipf) popularity prior, so the observed data has a realistic long tail while ``true_scores``
keeps the clean preference. Same seed and settings give identical data.

``sampler="candidates"`` draws the items from popularity-prior candidates instead (``_candidate_sampler``: an
approximation that needs no dense users x items matrix, for worlds of 1M users x 100k items); it keeps the
factors (true score = their scaled dot product) but has no dense ``true_scores``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from recux.data import Dataset, Interactions, present_codes
from recux.registry import register

GENRE_NAMES = (
    "Action",
    "Comedy",
    "Drama",
    "Horror",
    "Romance",
    "Sci-Fi",
    "Documentary",
    "Animation",
    "Thriller",
    "Fantasy",
    "Mystery",
    "Western",
)
T0 = 1_000_000_000  # 2001-09-09, the start of the synthetic clock (unix seconds)
SPAN = 2 * 365 * 24 * 3600  # two years of activity
SAMPLERS = ("exact", "candidates")


@dataclass
class SyntheticData(Dataset):
    """A Dataset that also carries the generator's latent state, kept aligned with the codes on re-coding."""

    user_factors: np.ndarray | None = None  # (n_users, dim) float32
    item_factors: np.ndarray | None = None  # (n_items, dim) float32
    item_popularity: np.ndarray | None = (
        None  # (n_items,) float64, the power-law prior (sums to 1 at creation)
    )

    def reindexed(self, keep: Interactions) -> SyntheticData:
        users, items = present_codes(keep.user, self.n_users), present_codes(keep.item, self.n_items)
        out = super().reindexed(keep)
        assert isinstance(out, SyntheticData)
        out.user_factors = None if self.user_factors is None else self.user_factors[users]
        out.item_factors = None if self.item_factors is None else self.item_factors[items]
        out.item_popularity = None if self.item_popularity is None else self.item_popularity[items]
        return out


@register("dataset", "synthetic")
class SyntheticDataset:
    """Seeded synthetic interactions from latent factors and power-law popularity, with known true scores."""

    def __init__(
        self,
        n_users: int = 500,
        n_items: int = 300,
        dim: int = 16,
        interactions_per_user: float = 20.0,
        popularity_exponent: float = 1.0,
        noise: float = 0.5,
        n_genres: int = 8,
        seed: int = 0,
        display_name: str = "synthetic",
        sampler: str = "exact",
        oversample: float = 4.0,
    ) -> None:
        if n_users < 1 or n_items < 2 or dim < 1 or n_genres < 1:
            raise ValueError("need n_users >= 1, n_items >= 2, dim >= 1 and n_genres >= 1")
        if not 1 <= interactions_per_user <= n_items:
            raise ValueError(
                f"interactions_per_user must be in [1, n_items={n_items}], got {interactions_per_user}"
            )
        if popularity_exponent < 0 or noise < 0:
            raise ValueError("popularity_exponent and noise must be >= 0")
        if sampler not in SAMPLERS:
            raise ValueError(f"dataset.sampler={sampler!r} must be one of {', '.join(SAMPLERS)} (candidates: "
                             "for worlds too large for a dense users x items matrix)")
        if oversample < 1:
            raise ValueError(f"dataset.oversample={oversample} must be >= 1 (candidates drawn per wanted item)")
        self.sampler, self.oversample = str(sampler), float(oversample)
        self.n_users, self.n_items, self.dim = int(n_users), int(n_items), int(dim)
        self.interactions_per_user = float(interactions_per_user)
        self.popularity_exponent, self.noise = float(popularity_exponent), float(noise)
        self.n_genres, self.seed, self.name = int(n_genres), int(seed), display_name

    def settings(self) -> dict[str, Any]:
        extra = ("sampler", "oversample") if self.sampler != "exact" else ()  # the exact sampler's record as before
        return {
            k: getattr(self, k)
            for k in (
                "n_users",
                "n_items",
                "dim",
                "interactions_per_user",
                "popularity_exponent",
                "noise",
                "n_genres",
                "seed",
                *extra,
            )
        }

    def load(self) -> SyntheticData:
        rng = np.random.default_rng(self.seed)
        nu, ni, d = self.n_users, self.n_items, self.dim
        uf = rng.standard_normal((nu, d)).astype(np.float32)
        itf = rng.standard_normal((ni, d)).astype(np.float32)
        if self.sampler == "candidates":
            return self._load_candidates(rng, uf, itf)
        true = (uf @ itf.T) / np.float32(np.sqrt(d))  # unit-variance preference

        log_pop, pop = self._popularity(rng)
        k = self._activity(rng)

        # Gumbel-top-k = sampling k items without replacement from softmax(logits), one row per user.
        logits = (
            true + self.noise * rng.standard_normal((nu, ni)).astype(np.float32) + log_pop.astype(np.float32)
        )
        perturbed = logits - np.log(-np.log(rng.random((nu, ni))))
        order = np.argsort(-perturbed, axis=1, kind="stable")
        take = np.arange(ni)[None, :] < k[:, None]
        user = np.repeat(np.arange(nu), k)
        item = order[take]  # row-major: each user's k items

        rating = self._ratings(rng, true[user, item])
        # Times are independent of the sampling order (which favours preferred items first); rows are then put
        # in chronological order within each user.
        ts = T0 + rng.integers(0, SPAN, len(user))
        chrono = np.lexsort((ts, user))
        frame = pl.DataFrame(
            {
                "user_id": user[chrono].astype(np.int64),
                "item_id": item[chrono].astype(np.int64),
                "rating": rating[chrono],
                "timestamp": ts[chrono].astype(np.int64),
            }
        )

        item_feats, user_feats = self._features(rng, uf, itf)
        info = {
            "dataset": self.name,
            "source": "synthetic",
            "generator": self.settings(),
            "sha256_verified": None,
        }
        base = Dataset.from_frame(
            self.name, frame, user_features=user_feats, item_features=item_feats, info=info
        )
        # Raw ids are the generator's indices, so the latent state aligns with codes through them.
        users, items = base.user_ids.astype(np.int64), base.item_ids.astype(np.int64)
        return SyntheticData(
            name=base.name,
            interactions=base.interactions,
            user_ids=base.user_ids,
            item_ids=base.item_ids,
            user_features=base.user_features,
            item_features=base.item_features,
            true_scores=np.ascontiguousarray(true[np.ix_(users, items)], dtype=np.float32),
            info=base.info,
            user_factors=uf[users],
            item_factors=itf[items],
            item_popularity=pop[items],
        )

    def _popularity(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """(log prior, prior): Zipf over a random popularity rank of each item (0 = most popular; codes carry no
        order)."""
        rank = rng.permutation(self.n_items)
        log_pop = -self.popularity_exponent * np.log1p(rank)
        pop = np.exp(log_pop - log_pop.max())
        pop /= pop.sum()
        return log_pop, pop

    def _activity(self, rng: np.random.Generator) -> np.ndarray:
        """Interactions per user: log-normal around the requested mean, at least 3 so leave-one-out has data."""
        sigma = 0.6
        k = np.exp(rng.normal(np.log(self.interactions_per_user) - sigma**2 / 2, sigma, self.n_users))
        return np.clip(np.rint(k), min(3, self.n_items), self.n_items).astype(np.int64)

    def _ratings(self, rng: np.random.Generator, true: np.ndarray) -> np.ndarray:
        """Ratings 1-5 from the observed (noisy) preference."""
        observed = true + self.noise * rng.standard_normal(len(true)).astype(np.float32)
        z = (observed - observed.mean()) / (observed.std() + 1e-9)
        return np.clip(np.rint(3.0 + 1.2 * z), 1, 5).astype(np.float32)

    def _load_candidates(self, rng: np.random.Generator, uf: np.ndarray, itf: np.ndarray) -> SyntheticData:
        """The candidate sampler's world, built straight into integer codes (no frame of raw ids)."""
        from recux.plugins.datasets._candidate_sampler import sample_interactions

        _, pop = self._popularity(rng)
        k = self._activity(rng)
        user, item, true, offset = sample_interactions(rng, uf, itf, pop, k, self.noise, self.oversample, SPAN)
        rating = self._ratings(rng, true)
        del true
        item_feats, user_feats = self._features(rng, uf, itf)
        user_ids, user_codes = _codes(user, self.n_users)
        item_ids, item_codes = _codes(item, self.n_items)
        inter = Interactions(user=user_codes, item=item_codes, n_users=len(user_ids), n_items=len(item_ids),
                             rating=rating, timestamp=offset + T0)
        info = {"dataset": self.name, "source": "synthetic", "generator": self.settings(), "sha256_verified": None}
        return SyntheticData(
            name=self.name, interactions=inter, user_ids=user_ids, item_ids=item_ids,
            user_features=user_feats[user_ids], item_features=item_feats[item_ids], true_scores=None, info=info,
            user_factors=uf[user_ids], item_factors=itf[item_ids], item_popularity=pop[item_ids],
        )

    def _features(
        self, rng: np.random.Generator, uf: np.ndarray, itf: np.ndarray
    ) -> tuple[pl.DataFrame, pl.DataFrame]:
        """Genres follow the item factors (nearest genre centroids), so content carries preference signal."""
        names = [GENRE_NAMES[g] if g < len(GENRE_NAMES) else f"Genre-{g}" for g in range(self.n_genres)]
        centroids = rng.standard_normal((self.n_genres, self.dim)).astype(np.float32)
        affinity = itf @ centroids.T
        ranked = np.argsort(-affinity, axis=1, kind="stable")
        n_genres_item = 1 + (rng.random(self.n_items) < 0.5) * (self.n_genres > 1)
        genres = [sorted(names[g] for g in ranked[i, : n_genres_item[i]]) for i in range(self.n_items)]
        titles = [f"Item {i}" for i in range(self.n_items)]
        items = pl.DataFrame(
            {
                "item_id": np.arange(self.n_items, dtype=np.int64),
                "title": titles,
                "genres": genres,
                "text": [f"{t}. Genres: {', '.join(g)}" for t, g in zip(titles, genres, strict=True)],
            },
            schema_overrides={"genres": pl.List(pl.String)},
        )
        favourite = np.argmax(uf @ centroids.T, axis=1)
        users = pl.DataFrame(
            {
                "user_id": np.arange(self.n_users, dtype=np.int64),
                "favourite_genre": pl.Series(names, dtype=pl.String).gather(favourite),
            }
        )
        return items, users


def _codes(raw: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(raw ids that occur, sorted as int64; the dense code of each row): ``Dataset.from_frame``'s coding
    without a sort of the rows (raw ids here are 0..n-1)."""
    present = np.bincount(raw, minlength=n) > 0
    ids = np.flatnonzero(present).astype(np.int64)
    if len(ids) == n:
        return ids, raw
    code = np.cumsum(present) - 1
    return ids, code[raw].astype(np.int32)
