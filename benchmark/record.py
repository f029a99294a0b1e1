"""The results record: what one run writes to results.json and what every reader (leaderboard, scripts) parses.

Schema 2 (this version) adds to schema 1: ``task``, ``data_hash`` (see recux.identity), ``optimized_metric``,
``metrics_stderr`` (standard error of each per-user mean) and ``metrics_ci`` (bootstrap intervals where
configured, else null), ``finetune.baseline``; and ``variant_hash`` now covers only the model, fine-tuning and
training settings. Schema-1 files still load: the missing fields are derived from their stored ``config``.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recux import identity

SCHEMA_VERSION = 2


class RecordError(ValueError):
    """A results.json that is not a usable results record (the message says what is missing)."""


@dataclass
class ResultsRecord:
    """One run's results.json. Field order is the file's key order."""

    schema: int = SCHEMA_VERSION
    run_id: str = ""
    created: str = ""
    status: str = "ok"  # "ok"; "failed" or "terminated" in failed.json (recux.failure), never in results.json
    error: dict[str, Any] | None = None  # failed runs: type, message, traceback file; omitted when None
    task: str = identity.DEFAULT_TASK
    label: str = ""
    variant_hash: str = ""  # model + fine-tuning + training settings (identity.variant_hash)
    data_hash: str = ""  # dataset + preprocessing + split + masking + task (identity.data_hash)
    config_hash: str = ""  # the whole resolved config
    seed: Any = None
    dataset: dict[str, Any] = field(default_factory=dict)  # name (display), n_users, n_items, ...
    protocol: str = "unknown"
    split: dict[str, Any] = field(default_factory=dict)
    preprocessing: Any = None
    model: dict[str, Any] = field(default_factory=dict)
    finetune: dict[str, Any] = field(default_factory=dict)  # name, baseline, params, ...
    optimized_metric: str = identity.DEFAULT_OPTIMIZED_METRIC
    metrics: dict[str, float] = field(default_factory=dict)
    metrics_stderr: dict[str, float] = field(default_factory=dict)
    metrics_ci: dict[str, list[float]] | None = None
    directions: dict[str, bool] = field(default_factory=dict)
    valid_metrics: dict[str, float] = field(default_factory=dict)
    users: dict[str, int] = field(default_factory=dict)
    timing: dict[str, Any] = field(default_factory=dict)
    device: dict[str, Any] = field(default_factory=dict)  # where the model ran (stages.actual_device)
    peak_memory_mb: float | None = None
    versions: dict[str, str] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)  # keys this version does not know (kept on rewrite)

    @property
    def dataset_name(self) -> str:
        name = self.dataset.get("name")
        return str(name) if name is not None else "unknown"

    @property
    def data_settings(self) -> dict[str, Any]:
        return identity.data_settings(self.config)

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "extra"}
        if out["error"] is None:
            del out["error"]
        return {**out, **self.extra}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ResultsRecord:
        """Parse a results.json object of schema 1 or 2; raises RecordError naming what is missing."""
        if not isinstance(data, dict):
            raise RecordError("not a JSON object")
        if not data.get("variant_hash") or not isinstance(data.get("metrics"), dict):
            raise RecordError("lacks 'variant_hash' or 'metrics' (see the results.json schema)")
        names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        known = {k: v for k, v in data.items() if k in names and v is not None}
        known["dataset"] = _as_dict(data.get("dataset"), "name")
        known["finetune"] = _as_dict(data.get("finetune"), "name")
        known["model"] = _as_dict(data.get("model"), "name")
        record = cls(**known, extra={k: v for k, v in data.items() if k not in names})
        if int(data.get("schema", 1) or 1) < 2:
            record._upgrade_from_schema_1()
        return record

    def _upgrade_from_schema_1(self) -> None:
        """Derive schema 2's fields from a schema-1 record's stored config (the identity of its data and
        variant as a new run would compute it)."""
        self.data_hash = identity.data_hash(self.config)
        if self.config:
            self.variant_hash = identity.variant_hash(self.config)
            self.optimized_metric = str(self.config.get("optimized_metric") or self.optimized_metric)
        self.finetune.setdefault("baseline", _is_baseline(self.finetune.get("name")))


def _as_dict(value: Any, key: str) -> dict[str, Any]:
    """A nested object, or (old files) a bare name turned into ``{key: name}``."""
    if isinstance(value, dict):
        return dict(value)
    return {} if value is None else {key: value}


def _is_baseline(finetune_name: Any) -> bool:
    """Whether a fine-tuning strategy is registered as the baseline (False when unknown or not installed)."""
    from recux import registry
    from recux.errors import PluginError

    if not finetune_name:
        return True  # no strategy recorded: the model trained on its own
    try:
        return bool(registry.get("finetune", str(finetune_name)).meta.get("baseline", False))
    except PluginError:
        return False


def load_record(path: str | Path) -> ResultsRecord:
    """Read and parse one results.json (schema 1 or 2)."""
    with open(path, encoding="utf-8") as fh:
        return ResultsRecord.from_dict(json.load(fh))
