"""Hybrid: a weighted sum of two or more registered models' scores after per-user normalisation, the weights
chosen on validation (score-level fusion, "weighted hybrid" in Burke 2002, "Hybrid Recommender Systems: Survey
and Experiments", UMUAI 12(4); normalise-then-combine as CombSUM in Fox & Shaw 1994 / Montague & Aslam 2001).

For user u and member m with raw scores s_m(u, .) over all n items:

    z-score: n_m(u, j) = (s_m(u, j) - mean_j s_m(u, .)) / std_j s_m(u, .)   (0 where the std is 0)
    rank:    n_m(u, j) = (rank of s_m(u, j) among the user's n scores, ties averaged, 1 = lowest - 1) / (n - 1)

    score(u, j) = sum_m w_m n_m(u, j),   w on the simplex (w_m >= 0, sum w_m = 1).

Non-finite raw scores (e.g. -inf) are replaced by the row's lowest finite score first. The statistics run over
the whole catalogue, training items included (the model does not know which items the ranker will mask).

Weights: unless ``weights`` is given, every point of the simplex grid with spacing ``step`` is scored by
``ctx.validate`` (validation users, training items masked) and the best by the validation metric is kept (ties:
the first in grid order). Test data is never read. Member scores for the validation batches are normalised
once and cached across grid points (``cache_mb`` caps that memory). The grid and each point's validation
metrics are in ``describe()``.

Members are built through the registry with their parameters and fitted one after another on copies of the
same FitContext (fresh ``history`` each). The hybrid declares ``text_encoder`` so a text member (``content``)
receives the item texts/embeddings; ``FitContext.item_embeddings`` is a callable, so nothing is encoded unless a
member calls it.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy.stats import rankdata

from recux import registry
from recux.errors import ConfigError
from recux.model import FitContext, Recommender
from recux.registry import register

NORMALISATIONS = ("zscore", "rank")


def finite_rows(s: np.ndarray) -> np.ndarray:
    """float64 copy with each row's non-finite entries set to that row's lowest finite value (0 if none)."""
    s = np.array(s, dtype=np.float64)
    bad = ~np.isfinite(s)
    if bad.any():
        low = np.where(bad, np.inf, s).min(axis=1, keepdims=True)
        low[~np.isfinite(low)] = 0.0
        s = np.where(bad, low, s)
    return s


def zscore_rows(s: np.ndarray) -> np.ndarray:
    """Per-row (s - mean) / std (population std); rows with std 0 become 0."""
    s = finite_rows(s)
    mu = s.mean(axis=1, keepdims=True)
    sd = s.std(axis=1, keepdims=True)
    return np.divide(s - mu, sd, out=np.zeros_like(s), where=sd > 0)


def rank_rows(s: np.ndarray) -> np.ndarray:
    """Per-row average ranks mapped to [0, 1]: (rank - 1) / (n - 1), the lowest score 0, the highest 1."""
    s = finite_rows(s)
    n = s.shape[1]
    return (rankdata(s, method="average", axis=1) - 1.0) / max(n - 1, 1)


def simplex_grid(n_members: int, step: float) -> list[tuple[float, ...]]:
    """All weight vectors with entries in {0, step, 2 step, ..., 1} summing to 1 (1/step must be an integer)."""
    parts = round(1.0 / step)
    return [tuple(c / parts for c in combo) + ((parts - sum(combo)) / parts,)
            for combo in itertools.product(range(parts + 1), repeat=n_members - 1) if sum(combo) <= parts]


def _to_numpy(s: Any) -> np.ndarray:
    if hasattr(s, "detach"):  # a torch tensor from a Lightning member
        s = s.detach().float().cpu().numpy()
    return np.asarray(s)


@register("model", "hybrid", training="closed_form", capabilities={"text_encoder"})
class Hybrid(Recommender):
    """Weighted fusion of registered models' per-user-normalised scores, weights chosen on validation."""

    def __init__(self, members: Sequence[Mapping[str, Any]] = ({"name": "ease"}, {"name": "content_genres"}),
                 normalisation: str = "zscore", step: float = 0.1, weights: Sequence[float] | None = None,
                 cache_mb: float = 2048.0) -> None:
        """members: [{name: <model>, **params}, ...] (two or more); normalisation: zscore or rank;
        step: spacing of the weight grid on the simplex (1/step an integer); weights: fixed weights (one per
        member, >= 0, summing to 1) instead of the validation search; cache_mb: memory cap of the cache of
        normalised validation scores (MB)."""
        self.specs = _check_members(members)
        if normalisation not in NORMALISATIONS:
            raise ConfigError(f"model.normalisation={normalisation!r}: use one of {list(NORMALISATIONS)}")
        if not (isinstance(step, int | float) and 0 < step <= 1 and abs(1 / step - round(1 / step)) < 1e-9):
            raise ConfigError(f"model.step={step!r}: it must divide 1 into whole parts, e.g. 0.1, 0.05 or 0.25")
        self.fixed = None if weights is None else _check_weights(weights, len(self.specs))
        self.normalisation, self.step, self.cache_mb = normalisation, float(step), float(cache_mb)
        self.labels = _labels(self.specs)
        self.models: list[Recommender] = []
        self.weights: tuple[float, ...] | None = None
        self.selection: list[dict[str, Any]] = []
        self.member_histories: dict[str, list[dict[str, float]]] = {}

    def fit(self, ctx: FitContext) -> None:
        if self.fixed is None and ctx.validate is None:  # refused before any member is fitted
            raise ConfigError("hybrid chooses its weights on validation data and this split has no validation "
                              "users; use a split with validation, or give model.weights=[...] (one per member)")
        for spec in self.specs:
            if registry.get("model", spec["name"]).meta["protocol"] == "sequential" and not ctx.split.time_ordered:
                raise ConfigError(f"hybrid member '{spec['name']}' is sequential and this split is not time-ordered; "
                                  "use a time-ordered split (e.g. split=loo) or drop that member")
        self.n_users, self.n_items = ctx.split.train.n_users, ctx.split.train.n_items
        self.models = []
        for label, spec in zip(self.labels, self.specs, strict=True):
            params = {k: v for k, v in spec.items() if k != "name"}
            model = registry.build("model", spec["name"], params)
            sub = dataclasses.replace(ctx, history=[])
            model.fit(sub)
            self.models.append(model)
            self.member_histories[label] = sub.history
        self.weights = self.fixed if self.fixed is not None else self._choose(ctx)

    def _choose(self, ctx: FitContext) -> tuple[float, ...]:
        cache: dict[bytes, np.ndarray] = {}
        budget = [self.cache_mb * 2**20]
        best, best_value = None, -np.inf
        self.selection = []
        for w in simplex_grid(len(self.models), self.step):
            vals = ctx.validate(lambda users, w=w: self._fused(users, w, cache, budget))
            self.selection.append({"weights": dict(zip(self.labels, w, strict=True)), "valid": vals})
            if vals[ctx.monitor] > best_value:
                best, best_value = w, vals[ctx.monitor]
        return best

    def _normalised(self, users: np.ndarray) -> np.ndarray:
        """(members, batch, n_items) normalised member scores."""
        norm = zscore_rows if self.normalisation == "zscore" else rank_rows
        return np.stack([norm(_to_numpy(m.score(users))) for m in self.models])

    def _fused(self, users: np.ndarray, w: Sequence[float], cache: dict | None = None,
               budget: list[float] | None = None) -> np.ndarray:
        users = np.asarray(users, dtype=np.int64)
        key = users.tobytes()
        stack = cache.get(key) if cache is not None else None
        if stack is None:
            stack = self._normalised(users)
            if cache is not None and budget is not None and stack.nbytes <= budget[0]:
                cache[key] = stack
                budget[0] -= stack.nbytes
        return np.tensordot(np.asarray(w, dtype=np.float64), stack, axes=1).astype(np.float32)

    def score(self, users: np.ndarray) -> np.ndarray:
        if self.weights is None:
            raise RuntimeError("Hybrid.score called before fit")
        return self._fused(users, self.weights)

    def condition_on(self, history: Any) -> None:
        for m in self.models:
            m.condition_on(history)

    def describe(self) -> dict[str, Any]:
        """The chosen weights per member and every grid point's validation metrics (empty for fixed weights)."""
        return {"weights": None if self.weights is None else dict(zip(self.labels, self.weights, strict=True)),
                "normalisation": self.normalisation, "step": self.step, "selection": self.selection}


def _check_members(members: Any) -> list[dict[str, Any]]:
    if isinstance(members, str | Mapping) or not isinstance(members, Sequence) or len(members) < 2:
        raise ConfigError(f"model.members={members!r}: give two or more models, e.g. "
                          "'[{name: ease}, {name: content, features: genres}]'")
    specs = []
    for m in members:
        if not isinstance(m, Mapping) or not m.get("name"):
            raise ConfigError(f"model.members entry {m!r} needs a 'name', e.g. {{name: ease, l2: 350}}")
        if m["name"] == "hybrid":
            raise ConfigError("model.members may not contain 'hybrid' itself; list the models to fuse")
        registry.get("model", str(m["name"]))  # unknown names fail here, with the registry's message
        specs.append(dict(m))
    return specs


def _check_weights(weights: Any, n: int) -> tuple[float, ...]:
    w = tuple(float(x) for x in weights)
    if len(w) != n or min(w) < 0 or abs(sum(w) - 1.0) > 1e-6:
        raise ConfigError(f"model.weights={list(weights)}: give {n} numbers >= 0 summing to 1 (one per member), "
                          "or leave it null to choose the weights on validation")
    return w


def _labels(specs: list[dict[str, Any]]) -> list[str]:
    """'ease', 'content[features=genres]'; a repeated label gets its position appended."""
    raw = [s["name"] + ("[" + ",".join(f"{k}={v}" for k, v in s.items() if k != "name") + "]"
                        if len(s) > 1 else "") for s in specs]
    return [f"{r}#{i}" if raw.count(r) > 1 else r for i, r in enumerate(raw)]
