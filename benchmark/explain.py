"""Explanations: the explainer plugin contract, the ``explainer`` settings and the model pairing check.

An explainer (plugin kind ``explainer``, registered with ``models=(...)``, the model names it explains) takes a
fitted model, users, the histories the model scores them from (``Recommender.history``) and their recommended
items, and returns per user an ``Attribution``: the history items it weighs and one weight per (recommended
item, history item), larger = explains more. The offline_ranking task runs it when the config has an
``explainer`` group (``recux explainer=neighbourhood model=ease``; off by default), writes the explanations
beside the recommendations and runs the deletion test (recux.faithfulness) on them (recux.explanations).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from recux import registry
from recux.errors import ConfigError


@dataclass
class Attribution:
    """One user's explanation: ``candidates`` (h,) the distinct history item codes the explainer weighs (the
    deletion test's random baseline draws from the same set) and ``weights`` (n recommended items, h)."""

    candidates: np.ndarray
    weights: np.ndarray

    def __post_init__(self) -> None:
        self.candidates = np.asarray(self.candidates, dtype=np.int64)
        self.weights = np.asarray(self.weights, dtype=np.float64)
        if self.weights.ndim != 2 or self.weights.shape[1] != len(self.candidates):
            raise ValueError(f"Attribution weights have shape {self.weights.shape}; expected (n recommended "
                             f"items, {len(self.candidates)} candidates)")

    def top(self, row: int, m: int) -> np.ndarray:
        """The ``m`` candidates with the largest weights for recommended item ``row`` (ties: lower item code
        first)."""
        order = np.lexsort((self.candidates, -self.weights[row]))
        return self.candidates[order[:m]]


class Explainer(ABC):
    """Base class of explainer plugins; subclasses take their settings as constructor arguments."""

    @abstractmethod
    def explain(self, model: Any, users: np.ndarray, histories: Sequence[np.ndarray],
                items: np.ndarray) -> list[Attribution]:
        """One Attribution per user; ``items`` is (len(users), n) recommended item codes (-1: none), and row r
        of an Attribution's weights explains ``items[user, r]`` (rows of -1 items are ignored)."""

    def describe(self) -> str:
        """What the weights are, for results.json and the report (default: the class docstring's first line)."""
        doc = (type(self).__doc__ or "").strip()
        return doc.splitlines()[0] if doc else type(self).__name__


@dataclass(frozen=True)
class ExplainSettings:
    """``explainer.settings`` (conf/explainer/settings/default.yaml)."""

    items: int = 10  # recommended items explained per user (the top of each list)
    keep: int = 5  # explaining items written per recommended item (explanations.parquet)
    m: int = 3  # history items deleted per recommended item in the deletion test
    random_draws: int = 5  # random deletions of m items per recommended item (the baseline), seeded
    users: int | None = None  # explain a seeded sample of this many test users (null: all)
    report_users: int = 5  # users shown in explanations.md
    report_items: int = 3  # recommended items shown per user there
    batch_users: int = 64  # users explained and re-scored at once (results do not depend on it)

    @classmethod
    def of(cls, node: Mapping[str, Any] | None) -> ExplainSettings:
        node = dict(node or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(node) - known)
        if unknown:
            raise ConfigError(f"explainer.settings has unknown key(s) {unknown}; known: {sorted(known)}")
        out = cls(**node)
        for name in ("items", "keep", "m", "random_draws", "report_users", "report_items", "batch_users"):
            value = getattr(out, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < (0 if name.startswith("report")
                                                                               else 1):
                raise ConfigError(f"explainer.settings.{name}={value!r} must be a positive integer")
        if out.users is not None and (not isinstance(out.users, int) or out.users < 1):
            raise ConfigError(f"explainer.settings.users={out.users!r} must be a positive integer or null (all)")
        return out

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ExplainSetup:
    """The run's explainer: plugin name, its parameters and the settings."""

    name: str
    params: dict[str, Any]
    settings: ExplainSettings

    @classmethod
    def of(cls, resolved: Mapping[str, Any], model_name: str, ks: Sequence[int]) -> ExplainSetup | None:
        """None when the config has no ``explainer`` (the default); else checked against the model and the
        cut-offs before any fitting."""
        node = resolved.get("explainer")
        if not node:
            return None
        node = dict(node)
        name = node.pop("name", None)
        if name is None:
            raise ConfigError("the explainer config has no 'name'; pick one with explainer=<name> "
                              f"({', '.join(registry.names('explainer'))})")
        setup = cls(str(name), {k: v for k, v in node.items() if k != "settings"},
                    ExplainSettings.of(node.get("settings")))
        check_pairing(setup.name, model_name)
        if setup.settings.items > max(ks):
            raise ConfigError(f"explainer.settings.items={setup.settings.items} explains more items than the "
                              f"ranking keeps (max of metrics.ks = {max(ks)}); lower it or add a larger cut-off")
        return setup

    def build(self) -> Explainer:
        return registry.build("explainer", self.name, self.params)


def explainers_for(model_name: str) -> list[str]:
    """The registered explainers that declare ``model_name``."""
    return [n for n in registry.names("explainer") if model_name in registry.get("explainer", n).meta["models"]]


def check_pairing(explainer: str, model_name: str) -> None:
    """Refuse an explainer on a model it does not declare, naming the setting and the fix."""
    models = registry.get("explainer", explainer).meta["models"]
    if model_name in models:
        return
    fits = explainers_for(model_name)
    fix = (f"use explainer={fits[0]}" + (f" (or {', '.join(fits[1:])})" if fits[1:] else "") if fits else
           "no installed explainer explains this model; remove the explainer setting")
    raise ConfigError(f"explainer={explainer} explains models {', '.join(models)}, not model={model_name}: {fix}, "
                      f"or pick one of its models.")
