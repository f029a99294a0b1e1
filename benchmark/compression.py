"""Post-training compression of a fitted model (config group ``compress``; plugins of kind "compress").

A run fits (or loads, ``compress.from_model``) its model, then the compress stage replaces it by a
``CompressedModel`` before ranking, so ranking, evaluation and the efficiency record (size on disk, latency,
throughput) all see the compressed model. ``compress=none`` (the default) returns the model untouched.

What is compressed is what the model scores with: its *serving module* (``model.serving_module()``), a torch
module with ``score(users)``; the base ``Recommender`` has none (refused with the fix), Lightning models serve
their network (BPR: the user/item embedding tables; SASRec: the transformer and its tied item embeddings) and
LightGCN serves its propagated final embeddings (``FactorScorer``), since those, not the ego embeddings, are
what its scores read. The stage deep-copies the serving module, a compressor plugin rewrites the copy in place
and returns the compact encodings of the tensors it compressed; every other tensor of the copy (biases, layer
norms, buffers such as SASRec's scoring sequences) is stored as it is. ``CompressedModel.save`` writes the
encodings (the run's model.pkl and the efficiency record's size on disk).

The compact encodings of tensors are in recux.tensor_codecs.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from recux.errors import ConfigError
from recux.model import Recommender
from recux.tensor_codecs import dense, stored_elements

NONE = "none"
RUN_KEYS = ("name", "from_model", "export_onnx")  # settings of the group that are not the method's parameters
NOT_IN_VARIANT = ("from_model", "export_onnx")  # how the run gets its model / what it also measures


# ---------------------------------------------------------------------------------------------- plugins


class Compressor:
    """Base of compress plugins (``@register("compress", name)``): ``compress(module)`` rewrites a deep copy of
    a model's serving module in place (its ``score`` then reads the compressed values) and returns
    {state-dict key: encoding} for the tensors it compressed; the rest are stored as they are."""

    name = NONE
    fails_for = ""  # what the method needs, for the refusal message

    def params(self) -> dict[str, Any]:
        return {}

    def compress(self, module: Any) -> dict[str, dict[str, Any]]:
        raise NotImplementedError


def weight_modules(module: Any) -> list[tuple[str, Any]]:
    """(name, module) of the nn.Embedding and nn.Linear modules: the weight matrices of a scoring network."""
    from torch import nn

    return [(n, m) for n, m in module.named_modules() if isinstance(m, (nn.Embedding, nn.Linear))]


# ---------------------------------------------------------------------------------------------- serving modules


def factor_scorer(user: Any, item: Any) -> Any:
    """A serving module for dot-product models: score(u, i) = <user[u], item[i]> from two embedding tables
    (e.g. LightGCN's propagated final embeddings)."""
    from recux._factor_scorer import FactorScorer

    return FactorScorer(user, item)


class CompressedModel(Recommender):
    """A fitted model with its serving module replaced by a compressed copy (see the module docstring).

    ``base`` is kept for conditioning only: ``condition_on`` lets the base model set its scoring state (e.g.
    SASRec's sequences of train + valid) and copies the serving module's buffers into the compressed copy."""

    FORMAT = "recux-compressed/1"

    def __init__(self, base: Recommender, module: Any, encoded: dict[str, dict[str, Any]], method: str,
                 settings: Mapping[str, Any], seconds: float) -> None:
        self.base, self.module, self.encoded = base, module, encoded
        self.method, self.settings, self.seconds = method, dict(settings), seconds
        self.n_users, self.n_items = base.n_users, base.n_items
        self._param_names = {n for n, _ in base.serving_module().named_parameters()}

    def fit(self, ctx: Any) -> None:
        raise RuntimeError("CompressedModel wraps a fitted model; fit the base model, then compress it")

    def score(self, users: np.ndarray) -> np.ndarray:
        return self.module.score(users)

    def serving_module(self) -> Any:
        return self.module

    def condition_on(self, history: Any) -> None:
        self.base.condition_on(history)
        source = dict(self.base.serving_module().named_buffers())
        for name, buf in self.module.named_buffers():
            if name in source and (source[name].shape != buf.shape or not bool((source[name] == buf).all())):
                _set_buffer(self.module, name, source[name].clone())

    def state(self) -> dict[str, dict[str, Any]]:
        """Every tensor the compressed serving module scores from: the encodings, then the rest as stored."""
        import torch

        out = dict(self.encoded)
        tensors = dict(self.module.state_dict())
        tensors.update(dict(self.module.named_buffers()))  # non-persistent buffers (scoring state) too
        for key, value in tensors.items():
            if key not in out and isinstance(value, torch.Tensor) and not value.is_quantized:
                out[key] = dense(value)
        return out

    def n_parameters(self) -> int:
        """Stored parameter numbers: encoded tensors (non-zeros of sparse ones) and the other parameters."""
        state = self.state()
        return sum(stored_elements(enc) for key, enc in state.items()
                   if key in self.encoded or key in self._param_names)

    def describe(self) -> dict[str, Any]:
        base = self.base.describe() if callable(getattr(self.base, "describe", None)) else {}
        return {**base, "compressed": {"method": self.method, **self.settings}}

    def save(self, path: str | Path) -> None:
        import torch

        torch.save({"format": self.FORMAT, "method": self.method, "settings": self.settings,
                    "model": type(self.base).__name__, "base_format": getattr(self.base, "FORMAT", None),
                    "hparams": getattr(self.base, "hparams", None), "n_users": self.n_users,
                    "n_items": self.n_items, "tensors": self.state()}, path)

    def record(self) -> dict[str, Any]:
        """results.json ``compression``: method, settings and what was encoded how."""
        kinds: dict[str, list[str]] = {}
        for key, enc in self.encoded.items():
            kinds.setdefault(enc["kind"], []).append(key)
        return {"method": self.method, **self.settings, "seconds": round(self.seconds, 4), "encoded": kinds}


def _copy(module: Any) -> Any:
    """A deep copy of a module without the Lightning trainer a fitted LightningModule still points to."""
    trainer = getattr(module, "_trainer", None)
    if trainer is None:
        return copy.deepcopy(module)
    module._trainer = None
    try:
        return copy.deepcopy(module)
    finally:
        module._trainer = trainer


def _set_buffer(module: Any, name: str, value: Any) -> None:
    owner, _, leaf = name.rpartition(".")
    target = module.get_submodule(owner) if owner else module
    if hasattr(target, "set_sequences") and leaf == "seqs":
        target.set_sequences(value)
    else:
        setattr(target, leaf, value)


# ---------------------------------------------------------------------------------------------- the stage


def settings_of(resolved: Mapping[str, Any]) -> dict[str, Any]:
    """The ``compress`` node of a resolved config ({"name": "none"} when absent)."""
    node = dict(resolved.get("compress") or {})
    node.setdefault("name", NONE)
    return node


def build_compressor(node: Mapping[str, Any]) -> Compressor:
    from recux import registry

    return registry.build("compress", str(node["name"]), {k: v for k, v in node.items() if k not in RUN_KEYS})


def check(resolved: Mapping[str, Any], model_info: Any) -> Compressor | None:
    """Before any fitting: the compressor builds (its settings are valid) and the model has a torch serving
    module to compress; None for compress=none."""
    node = settings_of(resolved)
    if node["name"] == NONE:
        return None
    compressor = build_compressor(node)
    if "torch_module" not in model_info.meta.get("capabilities", ()):
        raise ConfigError(
            f"compress={node['name']} compresses a torch scoring network, but model '{model_info.name}' has none "
            f"(it scores with NumPy/SciPy arrays). Use compress=none for it, or a torch model (bpr, lightgcn, "
            "sasrec, bert4rec, multvae, ...)."
        )
    return compressor


def check_task(resolved: Mapping[str, Any], task_info: Any) -> None:
    """A compress setting other than none needs a task that applies it (registered with ``compresses=True``)."""
    name = settings_of(resolved)["name"]
    if name == NONE or task_info.meta.get("compresses"):
        return
    from recux import registry

    able = [t for t in registry.names("task") if registry.get("task", t).meta.get("compresses")]
    raise ConfigError(f"compress={name}: task '{task_info.name}' does not apply post-training compression (tasks "
                      f"that do: {', '.join(able)}); use compress=none with it")


def compress(resolved: Mapping[str, Any], model: Recommender, model_name: str) -> Recommender:
    """The model the run ranks with: ``model`` itself for compress=none, else a CompressedModel."""
    node = settings_of(resolved)
    if node["name"] == NONE:
        return model
    compressor = build_compressor(node)
    serving = model.serving_module()
    if serving is None:
        raise ConfigError(f"compress={node['name']}: model '{model_name}' exposes no serving module to compress "
                          "(Recommender.serving_module returns None); use compress=none")
    t0 = time.perf_counter()
    module = _copy(serving).eval()
    encoded = compressor.compress(module)
    return CompressedModel(model, module, encoded, compressor.name, compressor.params(), time.perf_counter() - t0)


# ---------------------------------------------------------------------------------------------- reuse a fitted model


def check_source(resolved: Mapping[str, Any], path: str) -> dict[str, Any]:
    """``compress.from_model``: the results.json beside the file must be the same variant (minus compress),
    data and seed as this run; returns it."""
    from recux import identity

    file = Path(path)
    results = file.parent / "results.json"
    if not file.is_file() or not results.is_file():
        raise ConfigError(f"compress.from_model={path}: expected a model file saved by a finished run "
                          "(run.save_model=true writes <run folder>/model.pkl beside results.json)")
    rec = json.loads(results.read_text())
    base = {**resolved, "compress": None}
    want = {"variant_hash": identity.variant_hash(base), "data_hash": identity.data_hash(resolved),
            "seed": resolved.get("seed")}
    got = {k: rec.get(k) for k in want}
    if got != want:
        raise ConfigError(
            f"compress.from_model={path} was saved by a run with {got}, but this run is {want} (variant without "
            "compress, data, seed). Give the same model/trainer/data settings and seed as that run, or drop "
            "compress.from_model to fit here."
        )
    if str(rec.get("compression", {}).get("method", NONE)) != NONE:
        raise ConfigError(f"compress.from_model={path} is itself a compressed model; give the uncompressed run's")
    return rec


def load_fitted(spec: Any, model_info: Any, data: Any) -> Any:
    """``compress.from_model``: the fitted model of the uncompressed run of this variant and seed, loaded
    instead of fitting (a ``recux.stages.Fitted`` with no epoch history and no validator: the record's
    valid_metrics stay empty, since the saved model scores from train + valid; None when the setting is null)."""
    path = settings_of(spec.resolved).get("from_model")
    if path is None:
        return None
    if spec.init_from is not None:
        raise ConfigError("compress.from_model loads a fitted model and run.init_from gives starting weights to "
                          "train from; set only one of them")
    check_source(spec.resolved, str(path))
    from recux import registry, stages
    from recux.model import FitContext

    t0 = time.perf_counter()
    model = model_info.obj.load(path)
    ctx = FitContext(dataset=data.dataset, split=data.split, seed=spec.seed,
                     finetune=registry.build("finetune", spec.finetune.name, spec.finetune.params),
                     monitor=spec.optimized.name)
    return stages.Fitted(model, ctx, None, time.perf_counter() - t0)


def record(resolved: Mapping[str, Any], model: Recommender) -> dict[str, Any]:
    """results.json ``compression`` (method, settings, encodings, the source model file): {} for an
    uncompressed model fitted by the run itself (records as before)."""
    node = settings_of(resolved)
    out = model.record() if isinstance(model, CompressedModel) else {"method": NONE} if node.get("from_model") else {}
    if out and node.get("from_model"):
        out["from_model"] = str(node["from_model"])
    return {"compression": out} if out else {}
