"""Training-data injection: noise, sparsity and shilling attacks applied to the *training* interactions of a
split, after splitting and before fitting; validation and test are never touched.

An injector is a plugin (kind ``injector``, ``plugins/injectors``, one YAML each in ``conf/inject``) with
``inject(ctx) -> Injection``. A run names its injectors in the top-level ``inject`` setting, a mapping
``{key: {name: <injector>, ...params}}`` composed from config groups (``recux +inject=[noise,bandwagon_attack]
inject.noise.rate=0.3``); absent or empty by default, so existing runs are unchanged. They are applied in the
order of their keys, sorted (a list, as the robustness task's variants are, in its order), each to the result
of the previous one, each with its own seeded generator (``[seed, crc32(key)]``; a list item's key is its
injector name), so adding one injector does not change the draws of another, and a variant
``[{name: noise, rate: 0.2}]`` draws exactly as ``+inject=noise inject.noise.rate=0.2``. Counts given as a rate
are of the training data as the injector receives it. The ``inject`` mapping is
part of the run's data hash (recux.identity): injected runs form their own leaderboard sections.

Fake users (shilling profiles) get new user codes after the real ones (``n_users`` grows; their raw ids follow
the largest real id, or are ``shill_<i>`` for string ids). They have no validation or test interactions, so they
are never validated or evaluated.
"""

from __future__ import annotations

import zlib
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import polars as pl
import scipy.sparse as sp

from recux.data import Dataset, Interactions, Split
from recux.errors import ConfigError


@dataclass(frozen=True)
class InjectionContext:
    """What an injector may read: the training interactions to perturb, every (user, item) pair of the user's
    whole log (``known``: train + valid + test, so that added pairs never coincide with a held-out one), a
    seeded generator and the number of real users (noise goes to real users; attack sizes count them)."""

    train: Interactions
    known: sp.csr_matrix  # (n_users x n_items) binary: pairs an injector must not add
    rng: np.random.Generator
    n_real_users: int  # users of the dataset (codes below it); fake users added by earlier injectors follow


@dataclass(frozen=True)
class Injection:
    """An injector's result: the new training interactions (``n_users`` may grow by ``n_fake_users``, whose
    codes follow the others) and a JSON-able description (counts, target items)."""

    train: Interactions
    n_fake_users: int = 0
    info: dict[str, Any] = field(default_factory=dict)
    targets: np.ndarray | None = None  # item codes an attack promotes


class Injector(ABC):
    """Base class of injector plugins; parameters are constructor arguments (checked there)."""

    @abstractmethod
    def inject(self, ctx: InjectionContext) -> Injection:
        """Return the perturbed training interactions."""


def check_rate(name: str, setting: str, value: Any, upper: float = 1.0, closed: bool = False) -> float:
    """A rate in [0, upper) (or [0, upper]), refused with the setting's name otherwise."""
    v = float(value)
    if not (0.0 <= v <= upper if closed else 0.0 <= v < upper):
        bound = f"[0, {upper:g}]" if closed else f"[0, {upper:g})"
        raise ConfigError(f"injector '{name}': {setting}={value} must lie in {bound}; e.g. {setting}=0.1")
    return v


# ----------------------------------------------------------------------------------------------------------
# Building rows


def append_rows(train: Interactions, users: np.ndarray, items: np.ndarray, n_users: int | None = None,
                rating: np.ndarray | None = None, timestamp: np.ndarray | None = None) -> Interactions:
    """``train`` plus rows (users, items); rating and timestamp are required exactly when train has them."""
    for col, val in (("rating", rating), ("timestamp", timestamp)):
        if (getattr(train, col) is None) != (val is None):
            raise ValueError(f"append_rows: {col} must be given exactly when the training data has it")

    def cat(a, b):
        return None if a is None else np.concatenate([a, np.asarray(b, dtype=a.dtype)])

    return Interactions(user=np.concatenate([train.user, users]), item=np.concatenate([train.item, items]),
                        n_users=train.n_users if n_users is None else n_users, n_items=train.n_items,
                        rating=cat(train.rating, rating), timestamp=cat(train.timestamp, timestamp))


def sample_ratings(train: Interactions, n: int, rng: np.random.Generator) -> np.ndarray | None:
    """``n`` ratings drawn from the training ratings (None when the data has none)."""
    if train.rating is None:
        return None
    if not len(train.rating):
        return np.ones(n, dtype=np.float32)
    return rng.choice(train.rating, size=n).astype(np.float32)


def user_timestamps(train: Interactions, users: np.ndarray, rng: np.random.Generator) -> np.ndarray | None:
    """For each of ``users``, a time drawn uniformly within that user's training time range (the global range
    for a user without training rows), so added rows stay inside the training period; None without times."""
    if train.timestamp is None:
        return None
    t = train.timestamp
    lo_all, hi_all = (int(t.min()), int(t.max())) if len(t) else (0, 0)
    lo = np.full(train.n_users, lo_all, dtype=np.int64)
    hi = np.full(train.n_users, hi_all, dtype=np.int64)
    if len(t):
        seen = np.unique(train.user)
        lo[seen] = np.full(len(seen), np.iinfo(np.int64).max)
        hi[seen] = np.iinfo(np.int64).min
        np.minimum.at(lo, train.user, t)
        np.maximum.at(hi, train.user, t)
    u = np.asarray(users, dtype=np.int64)
    return lo[u] + np.floor(rng.random(len(u)) * (hi[u] - lo[u] + 1)).astype(np.int64)


# ----------------------------------------------------------------------------------------------------------
# Applying the configured injectors to a split


@dataclass(frozen=True)
class Injected:
    """A dataset and split after injection, and what was injected (per key, in order)."""

    dataset: Dataset
    split: Split
    info: dict[str, Any]
    targets: np.ndarray | None  # the union of the attacks' target items (None without an attack)
    n_fake_users: int


def _rng(seed: int, key: str) -> np.random.Generator:
    return np.random.default_rng([int(seed), zlib.crc32(str(key).encode())])


def _list_keys(configs: list[Any]) -> list[str]:
    """Keys of a list of injector configs: the injector's name (as under ``inject``, so a one-item list draws as
    ``+inject=<name>`` does), ``<name>#<i>`` for the second and later uses of a name."""
    names = [str(c.get("name")) if isinstance(c, Mapping) else str(i) for i, c in enumerate(configs)]
    return [n if names.index(n) == i else f"{n}#{i}" for i, n in enumerate(names)]


def injector_specs(configs: Mapping[str, Any] | list[Any] | None, setting: str) -> list[tuple[str, str, dict]]:
    """(key, injector name, params) per configured injector: a mapping in sorted key order, a list in its
    order (keyed by ``_list_keys``)."""
    if not configs:
        return []
    configs = list(configs) if not isinstance(configs, Mapping) else configs
    items = sorted(configs.items()) if isinstance(configs, Mapping) else list(zip(_list_keys(configs), configs, strict=True))
    out = []
    for key, node in items:
        if not isinstance(node, Mapping) or "name" not in node:
            raise ConfigError(f"{setting}.{key} must be an injector config with a 'name' (one of the injector "
                              f"plugins, `recux-plugins injector`), got {node!r}; e.g. +inject=noise")
        params = dict(node)
        out.append((str(key), str(params.pop("name")), params))
    return out


def build_injector(name: str, params: dict[str, Any], where: str) -> Injector:
    """The injector plugin ``name``; a refused setting names where it was configured (e.g. ``inject.noise``)."""
    from recux import registry

    try:
        return registry.build("injector", name, params)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from exc


def apply_injections(configs: Mapping[str, Any] | list[Any] | None, dataset: Dataset, split: Split, seed: int,
                     setting: str = "inject") -> Injected:
    """Apply each configured injector to the training part of ``split`` (validation and test unchanged, only
    their user code space grows with fake users)."""
    specs = injector_specs(configs, setting)
    if not specs:
        return Injected(dataset, split, {}, None, 0)
    known = (split.train.csr() + split.valid.csr() + split.test.csr()).tocsr()
    known.data[:] = 1.0
    train, info, targets, n_fake = split.train, {}, [], 0
    for key, name, params in specs:
        injector = build_injector(name, params, f"{setting}.{key}")
        out = injector.inject(InjectionContext(train, known, _rng(seed, key), split.train.n_users))
        if out.train.n_users != train.n_users + out.n_fake_users or out.train.n_items != train.n_items:
            raise RuntimeError(f"injector '{name}' returned a {out.train.n_users} x {out.train.n_items} code "
                               f"space for {train.n_users} x {train.n_items} plus {out.n_fake_users} fake users")
        known = sp.vstack([known, sp.csr_matrix((out.n_fake_users, known.shape[1]))]).tocsr()
        train, n_fake = out.train, n_fake + out.n_fake_users
        info[key] = {"name": name, **params, **out.info}
        if out.targets is not None:
            targets.append(np.asarray(out.targets))
    split2 = replace(split, train=train, valid=_grow(split.valid, train.n_users),
                     test=_grow(split.test, train.n_users))
    info = {"injectors": info, "n_fake_users": n_fake, "n_train_before": len(split.train),
            "n_train_after": len(train)}
    return Injected(add_fake_users(dataset, n_fake, info), split2, info,
                    np.unique(np.concatenate(targets)) if targets else None, n_fake)


def _grow(inter: Interactions, n_users: int) -> Interactions:
    return inter if inter.n_users == n_users else replace(inter, n_users=n_users)


def fake_user_ids(user_ids: np.ndarray, n: int) -> np.ndarray:
    """Raw ids for ``n`` fake users: after the largest integer id, or ``shill_<i>`` for other ids."""
    if np.issubdtype(user_ids.dtype, np.integer):
        start = int(user_ids.max()) + 1 if len(user_ids) else 0
        return np.arange(start, start + n, dtype=user_ids.dtype)
    return np.array([f"shill_{i}" for i in range(n)], dtype=object)


def add_fake_users(dataset: Dataset, n: int, info: dict[str, Any]) -> Dataset:
    """``dataset`` with ``n`` more user codes (no rows in its log; null user features) and ``info["injection"]``."""
    inter = dataset.interactions
    new_info = {**dataset.info, "injection": info}
    if n == 0:
        return replace(dataset, info=new_info)
    ids = fake_user_ids(dataset.user_ids, n)
    user_ids = np.concatenate([dataset.user_ids.astype(object) if ids.dtype == object else dataset.user_ids, ids])
    features = dataset.user_features
    if features is not None:
        extra = pl.DataFrame({"user_id": ids.tolist()})
        features = pl.concat([features, extra.cast({"user_id": features["user_id"].dtype}, strict=False)],
                             how="diagonal_relaxed")
    return replace(dataset, interactions=replace(inter, n_users=inter.n_users + n), user_ids=user_ids,
                   user_features=features,
                   true_scores=None if dataset.true_scores is None else np.vstack(
                       [dataset.true_scores, np.zeros((n, dataset.n_items), dataset.true_scores.dtype)]),
                   info=new_info)


def inject_training(config: Mapping[str, Any], dataset: Dataset, split: Split, seed: int) -> tuple[Dataset, Split]:
    """The pipeline hook: the run's top-level ``inject`` setting applied to the split (unchanged without it)."""
    configs = config.get("inject")
    if not configs:
        return dataset, split
    task = (config.get("task") or {}).get("name")
    if task == "cold_start":  # noise and attack fillers draw over all items: held-out cold items would enter training
        raise ConfigError("inject is not supported with task=cold_start: noise and attack profiles draw over the "
                          "whole catalogue and would put held-out cold items into training; drop the inject "
                          "setting or use task=offline_ranking / task=robustness")
    out = apply_injections(configs, dataset, split, seed)
    return out.dataset, out.split
