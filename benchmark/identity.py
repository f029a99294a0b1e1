"""What a run's numbers depend on, in two parts: the *data* (which users, items and interactions are ranked and
scored, and how) and the *variant* (the model and how it was trained).

The leaderboard puts runs in one section only when their data hashes agree, and pairs their per-user values
only there; within a section rows are variants. The data hash covers
  - the dataset config, minus ``name``-like display settings (``display_name``) and the parameters its plugin
    declares as ``fetch_params`` (how to obtain the data, e.g. a download timeout),
  - the preprocessing config, the split config, the evaluation mask (``eval.exclude_valid``),
  - the training-data injection (``inject``, recux.injection), only when set,
  - the task config (another kind of experiment is another table), less the settings its plugin declares as
    ``variant_params`` (how the model is trained, e.g. the continual task's mode: part of the variant hash),
  - the training-data fraction (``data.train_fraction`` and ``data.train_keep``, recux.subsample) when it is not
    1.0: each fraction of a learning curve is its own section (same test set, fewer training interactions).
The metric cut-offs (``metrics``) are not data: they choose which columns exist, not what the values are.
A dataset plugin may declare ``added_defaults`` ({parameter: value}): parameters added after runs were published,
left out of the data hash while at that value (it reads the data as before), so earlier runs keep their hash.
The variant hash covers the model, the fine-tuning strategy, the trainer settings (minus progress-bar display
keys and keys set to null, which mean "not set", e.g. ``trainer.max_epochs: null``) and ``optimized_metric`` (it
drives early stopping), the post-training compression (``compress`` other than none, minus ``from_model`` and
``export_onnx``, which say where the fitted model comes from and what else is measured); for models that use a text encoder (capability ``text_encoder``) also the ``encoder``
group and ``item_text`` (the template), which other models ignore, so their hashes stay as published. Only models trained with Lightning (``training="lightning"``) use the trainer: for every
other model the trainer settings are replaced by the default trainer's (``UNUSED_TRAINER``, what conf/trainer/cpu
contributed to every earlier run), so ``trainer=gpu`` on EASE is the same variant as a default run, and existing
hashes stay as they were. The device a run actually used is recorded in its results (``device``). Seeds,
loggers, batch sizes and output settings are in neither (they do not change results, or, for the seed, are what
the leaderboard aggregates over).

Both are computed from a run's resolved config, so results written before these hashes existed (schema 1, whose
``config`` is stored) get the same hashes as new runs of the same settings.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from recux import subsample
from recux.results import config_hash

DEFAULT_TASK = "offline_ranking"
DEFAULT_OPTIMIZED_METRIC = "ndcg@10"
DISPLAY_KEYS = ("display_name",)  # dataset config keys that name the data without changing it
_TRAINER_DISPLAY_KEYS = ("enable_progress_bar", "progress_refresh_rate")
UNUSED_TRAINER = {"accelerator": "cpu", "devices": 1}  # stands for the trainer of a model that does not use one
TEXT_CAPABILITY = "text_encoder"  # models declaring it also vary with the encoder and the item-text template


def _plugin_meta(kind: str, name: Any) -> dict[str, Any] | None:
    """A plugin's registered metadata, or None when no name is given or the plugin is not installed here."""
    from recux import registry
    from recux.errors import PluginError

    if name is None:
        return None
    try:
        return dict(registry.get(kind, str(name)).meta)
    except PluginError:
        return None


def _fetch_params(dataset_plugin: str | None) -> tuple[str, ...]:
    """The dataset plugin's declared ``fetch_params`` (none when the plugin is not installed here)."""
    from recux import registry
    from recux.errors import PluginError

    if dataset_plugin is None:
        return ()
    try:
        return tuple(registry.get("dataset", str(dataset_plugin)).meta.get("fetch_params", ()))
    except PluginError:
        return ()


def _added_defaults(dataset: Mapping[str, Any]) -> list[str]:
    """The dataset's parameters that sit at their declared ``added_defaults`` value (left out of the hash)."""
    added = (_plugin_meta("dataset", dataset.get("name")) or {}).get("added_defaults") or {}
    return [k for k, v in added.items() if k in dataset and dataset[k] == v]


def data_settings(config: Mapping[str, Any]) -> dict[str, Any]:
    """The settings that define a run's data and protocol (see the module docstring), as a plain dict."""
    dataset = dict(config.get("dataset") or {})
    for key in (*DISPLAY_KEYS, *_fetch_params(dataset.get("name")), *_added_defaults(dataset)):
        dataset.pop(key, None)
    train = subsample.identity_settings(config)  # data.train_fraction: {} at 1.0, so earlier hashes stay
    return {
        "task": {k: v for k, v in _task(config).items() if k not in _task_variant_params(config)},
        "dataset": dataset,
        "preprocess": _by_class_name(config.get("preprocess")),
        "split": _by_class_name(config.get("split")),
        "eval": {"exclude_valid": bool((config.get("eval") or {}).get("exclude_valid", True))},
        **({"inject": dict(config["inject"])} if config.get("inject") else {}),  # absent: hashes as published
        **({"data": train} if train else {}),
    }


def _task(config: Mapping[str, Any]) -> dict[str, Any]:
    return dict(config.get("task") or {"name": DEFAULT_TASK})


def _task_variant_params(config: Mapping[str, Any]) -> tuple[str, ...]:
    """Task settings that choose how the model is trained, not the data (a task plugin's ``variant_params``,
    e.g. the continual task's mode): they belong to the variant, so e.g. continual and retrain runs share a
    section."""
    return tuple((_plugin_meta("task", _task(config).get("name")) or {}).get("variant_params", ()))


def _by_class_name(node: Mapping[str, Any] | None) -> dict[str, Any]:
    """A ``_target_`` node with the target reduced to its class name, so that moving or renaming the module
    (``benchmark.splitting.X`` became ``recux.splitting.X``) does not change the hash."""
    out = dict(node or {})
    if isinstance(out.get("_target_"), str):
        out["_target_"] = out["_target_"].rsplit(".", 1)[-1]
    return out


def variant_settings(config: Mapping[str, Any]) -> dict[str, Any]:
    """The settings that define a variant within a data section: model, fine-tuning, training."""
    trainer = {k: v for k, v in dict(config.get("trainer") or {}).items()
               if k not in _TRAINER_DISPLAY_KEYS and v is not None}
    model_meta = _plugin_meta("model", (config.get("model") or {}).get("name"))
    if model_meta is not None and model_meta.get("training") != "lightning":
        trainer = dict(UNUSED_TRAINER)
    task = {k: v for k, v in _task(config).items() if k in _task_variant_params(config)}
    out = {
        **({"task": task} if task else {}),  # only tasks that declare variant_params: other hashes unchanged
        "model": dict(config.get("model") or {}),
        "finetune": dict(config.get("finetune") or {}),
        "trainer": trainer,
        "optimized_metric": str(config.get("optimized_metric") or DEFAULT_OPTIMIZED_METRIC),
    }
    if model_meta is not None and TEXT_CAPABILITY in model_meta.get("capabilities", ()):
        out["encoder"] = dict(config.get("encoder") or {})
        out["item_text"] = dict(config.get("item_text") or {})
    compress = dict(config.get("compress") or {})
    if compress.get("name", "none") != "none":  # compress=none (and runs before the group existed): hash unchanged
        out["compress"] = {k: v for k, v in compress.items() if k not in ("from_model", "export_onnx")}
    run = dict(config.get("run") or {})
    if run.get("init_from") is not None:  # starting weights change the variant; the seed's own file does not
        out["init_from"] = run.get("init_from_variant") or str(run["init_from"])
    return out


def init_from_source(path: str) -> dict[str, str]:
    """What a run's starting weights are, independent of the seed: the variant hash and label of the run that
    saved them (its results.json beside the file), so the seeds of "LoRA from the frozen run of seed s" are one
    variant; a file outside a run folder is identified by its content (SHA-256)."""
    import hashlib
    import json
    from pathlib import Path

    file = Path(path)
    results = file.parent / "results.json"
    if results.is_file():
        rec = json.loads(results.read_text())
        if rec.get("variant_hash"):
            return {"init_from_variant": f"variant:{rec['variant_hash']}", "init_from_label": str(rec.get("label"))}
    if not file.is_file():
        from recux.errors import ConfigError

        raise ConfigError(f"run.init_from={path}: no such file; give a model file saved by a run with "
                          "run.save_model=true (<run folder>/model.pkl)")
    digest = hashlib.sha256(file.read_bytes()).hexdigest()[:16]
    return {"init_from_variant": f"sha256:{digest}", "init_from_label": file.name}


def data_hash(config: Mapping[str, Any]) -> str:
    return config_hash(data_settings(config))


def variant_hash(config: Mapping[str, Any]) -> str:
    return config_hash(variant_settings(config))


def describe_settings(settings: Mapping[str, Any]) -> str:
    """``dataset: n_users=300, seed=0; split: ...`` — one line naming every data setting (for section titles)."""
    parts = []
    for group, node in settings.items():
        if isinstance(node, Mapping):
            items = ", ".join(f"{k}={_short(v)}" for k, v in sorted(node.items(), key=lambda kv: str(kv[0])))
            parts.append(f"{group}: {items or '(defaults)'}")
        else:
            parts.append(f"{group}: {_short(node)}")
    return "; ".join(parts)


def _short(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return str(value).lower() if value is not None else "null"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_short(v) for v in value) + "]"
    return str(value)
