"""Plugin registry: one decorator registers a dataset, model, fine-tuning strategy, metric, task, text encoder
or compression method by name.

Plugins live in modules named by the entry-point group ``recux.plugins`` (built-ins included), so a
third-party package ships a plugin by declaring one entry point. Importing a plugin module must stay
cheap (no torch at module level) so that listing plugins is fast.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

from recux.errors import ConfigError, PluginError, RecuxError

ENTRY_POINT_GROUP = "recux.plugins"
KINDS = ("dataset", "model", "finetune", "metric", "task", "encoder", "explainer", "compress", "injector")

# What a metric may need from the evaluation context.
METRIC_NEEDS = frozenset({"topk", "ground_truth", "item_features", "train_popularity", "user_groups", "scores",
                          "graded_truth", "history", "item_embeddings"})
# How a model fits: "lightning" (a Lightning Trainer: the run's logger and trainer settings apply), "closed_form"
# (one solve), "iterative" (its own loop, e.g. ALS sweeps), "none" (nothing to learn).
MODEL_TRAINING = frozenset({"lightning", "closed_form", "iterative", "none"})
MODEL_PROTOCOLS = frozenset({"general", "sequential"})  # sequential: needs a time-ordered split (e.g. loo)


@dataclass(frozen=True)
class PluginInfo:
    """A registered plugin: its class (or factory), a one-line description and kind-specific metadata."""

    kind: str
    name: str
    obj: Callable[..., Any]
    description: str
    meta: Mapping[str, Any] = field(default_factory=dict)

    @property
    def origin(self) -> str:
        return f"{self.obj.__module__}.{self.obj.__qualname__}"

    def build(self, params: Mapping[str, Any] | None = None) -> Any:
        """Instantiate with keyword params, rejecting unknown ones with the list of accepted ones."""
        params = dict(params or {})
        sig = inspect.signature(self.obj)
        accepts_kwargs = any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())
        if not accepts_kwargs:
            known = [n for n, p in sig.parameters.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
            unknown = sorted(set(params) - set(known))
            if unknown:
                hints = []
                for u in unknown:
                    close = difflib.get_close_matches(u, known, n=1)
                    hints.append(f"'{u}'" + (f" (did you mean '{close[0]}'?)" if close else ""))
                raise ConfigError(
                    f"{self.kind} '{self.name}' got unknown parameter(s) {', '.join(hints)}. "
                    f"It accepts: {', '.join(known) or '(none)'}. Fix the {self.kind} config or the override."
                )
            missing = [
                n for n, p in sig.parameters.items()
                if p.default is p.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and n not in params
            ]
            if missing:
                raise ConfigError(
                    f"{self.kind} '{self.name}' needs parameter(s) {', '.join(missing)}; set them in its config "
                    f"(e.g. {self.kind}.{missing[0]}=...)."
                )
        try:
            return self.obj(**params)
        except RecuxError:
            raise  # its message already names the setting and the fix
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{self.kind} '{self.name}' rejected its parameters: {exc}") from exc


_REGISTRY: dict[str, dict[str, PluginInfo]] = {k: {} for k in KINDS}
_LOADED = False


def _first_line(obj: Any) -> str:
    doc = inspect.getdoc(obj) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def _check_meta(kind: str, name: str, meta: dict[str, Any]) -> dict[str, Any]:
    if kind == "metric":
        meta.setdefault("higher_is_better", True)
        needs = frozenset(meta.setdefault("needs", frozenset({"topk", "ground_truth"})))
        bad = needs - METRIC_NEEDS
        if bad:
            raise PluginError(f"metric '{name}' declares unknown needs {sorted(bad)}; known: {sorted(METRIC_NEEDS)}")
        meta["needs"] = needs
    elif kind == "model":
        training = meta.setdefault("training", "closed_form")
        if training not in MODEL_TRAINING:
            raise PluginError(f"model '{name}' declares training={training!r}; use one of {sorted(MODEL_TRAINING)}")
        caps = meta.get("capabilities") or ()
        meta["capabilities"] = frozenset([caps] if isinstance(caps, str) else caps)
        protocol = meta.setdefault("protocol", "general")
        if protocol not in MODEL_PROTOCOLS:
            raise PluginError(f"model '{name}' declares protocol={protocol!r}; use one of {sorted(MODEL_PROTOCOLS)}")
    elif kind == "finetune":
        meta["baseline"] = bool(meta.get("baseline", False))
    elif kind == "dataset":
        fetch = meta.setdefault("fetch_params", ())
        if isinstance(fetch, str) or not all(isinstance(p, str) for p in fetch):
            raise PluginError(f"dataset '{name}' declares fetch_params={fetch!r}; use a tuple of parameter names")
        meta["fetch_params"] = tuple(fetch)
    elif kind == "explainer":
        models = meta.get("models")
        if isinstance(models, str) or not models or not all(isinstance(m, str) for m in models):
            raise PluginError(f"explainer '{name}' declares models={models!r}; use a tuple of model names it explains")
        meta["models"] = tuple(models)
    return meta


def register(kind: str, name: str, **meta: Any) -> Callable[[Any], Any]:
    """Class/function decorator: ``@register("metric", "ndcg", higher_is_better=True, needs={...})``.

    Metric metadata: ``higher_is_better`` (bool), ``needs`` (subset of METRIC_NEEDS).
    Model metadata: ``training`` (one of MODEL_TRAINING), ``protocol`` ("general" or "sequential": evaluated
    on time-ordered splits only), ``capabilities`` (what fine-tuning strategies may rely on; see
    ``recux.finetune``).
    Fine-tuning metadata: ``baseline`` (bool, default False): the reference strategy (training from scratch);
    a variant's label names the strategy only when it is not the baseline.
    Dataset metadata: ``fetch_params`` (parameter names that say how to obtain the data, not which data, e.g.
    a download timeout): left out of the data hash that keys leaderboard sections; ``added_defaults``
    ({parameter: value}): parameters added later, left out of the data hash while at that value;
    ``item_text_template``: the item text of text models when ``item_text.template`` is null (recux.item_text).
    Explainer metadata: ``models`` (tuple of model names it explains; see ``recux.explain``).
    Task metadata: ``compresses`` (bool, default False): the task applies the ``compress`` stage (other tasks
    refuse compress settings other than none); see recux.task.
    Compress metadata: none (a compressor is a ``recux.compression.Compressor``; config group ``compress``).
    Injector metadata: none (a class with ``inject(ctx)``, perturbing training data; see recux.injection).
    """
    if kind not in KINDS:
        raise PluginError(f"unknown plugin kind {kind!r}; kinds are {', '.join(KINDS)}")

    def deco(obj: Any) -> Any:
        existing = _REGISTRY[kind].get(name)
        info = PluginInfo(kind, name, obj, meta.pop("description", None) or _first_line(obj),
                          _check_meta(kind, name, dict(meta)))
        if existing is not None:
            if existing.origin == info.origin:  # the same module imported again (e.g. reload): keep one entry
                _REGISTRY[kind][name] = info
                return obj
            raise PluginError(
                f"{kind} plugin '{name}' is registered twice: by {existing.origin} and by {info.origin}. "
                "Rename one of them."
            )
        _REGISTRY[kind][name] = info
        return obj

    return deco


def load_plugins() -> None:
    """Import every module named in the ``recux.plugins`` entry-point group (once per process)."""
    global _LOADED
    if _LOADED:
        return
    _LOADED = True
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        try:
            ep.load()
        except Exception as exc:  # a broken third-party plugin must not hide the others
            raise PluginError(
                f"plugin entry point '{ep.name} = {ep.value}' (group {ENTRY_POINT_GROUP}) failed to import: "
                f"{type(exc).__name__}: {exc}. Fix or uninstall the package that declares it."
            ) from exc


def names(kind: str) -> list[str]:
    load_plugins()
    return sorted(_REGISTRY[kind])


def get(kind: str, name: str) -> PluginInfo:
    """Look a plugin up; an unknown name raises with the known names and the closest match."""
    if kind not in KINDS:
        raise PluginError(f"unknown plugin kind {kind!r}; kinds are {', '.join(KINDS)}")
    load_plugins()
    try:
        return _REGISTRY[kind][name]
    except KeyError:
        known = sorted(_REGISTRY[kind])
        close = difflib.get_close_matches(str(name), known, n=1, cutoff=0.5)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise PluginError(
            f"unknown {kind} '{name}'.{hint} Known {kind} plugins: {', '.join(known) or '(none)'}. "
            f"List them with `recux-plugins`; third-party plugins register through the '{ENTRY_POINT_GROUP}' "
            "entry-point group."
        ) from None


def all_plugins() -> dict[str, list[PluginInfo]]:
    load_plugins()
    return {k: [v[n] for n in sorted(v)] for k, v in _REGISTRY.items()}


def build(kind: str, name: str, params: Mapping[str, Any] | None = None) -> Any:
    return get(kind, name).build(params)
