"""Collection: find results.json files under folders, parse them into runs (``Run``), and keep the newest run of
each (section, variant, seed)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from recux.record import RecordError, ResultsRecord

DEFAULT_ROOTS = ("outputs", "multirun")
RESULTS_FILE = "results.json"
FAILED_FILE = "failed.json"  # a run that did not finish (recux.failure): status "failed" or "terminated"
PER_USER_FILE = "per_user_metrics.parquet"
FAILED_STATUSES = ("failed", "terminated")


@dataclass
class Run:
    """One finished run: its results.json path, parsed content and typed record (schema 1 or 2)."""

    path: Path
    data: dict[str, Any]
    record: ResultsRecord = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.record = ResultsRecord.from_dict(self.data)

    @property
    def folder(self) -> Path:
        return self.path.parent

    @property
    def dataset(self) -> str:
        return self.record.dataset_name

    @property
    def protocol(self) -> str:
        return str(self.record.protocol or "unknown")

    @property
    def data_hash(self) -> str:
        """Hash of the settings that define the run's data and protocol (recux.identity.data_hash)."""
        return self.record.data_hash

    @property
    def section(self) -> tuple[str, str, str]:
        """The leaderboard section: runs are compared (and their users paired) only within one."""
        return (self.dataset, self.protocol, self.data_hash)

    @property
    def variant_hash(self) -> str:
        return str(self.record.variant_hash)

    @property
    def seed(self) -> Any:
        return self.record.seed

    @property
    def label(self) -> str:
        return str(self.record.label or self.record.model.get("name") or self.variant_hash)

    @property
    def finetune(self) -> str:
        return str(self.record.finetune.get("name") or "")

    @property
    def finetune_is_baseline(self) -> bool:
        return bool(self.record.finetune.get("baseline", not self.finetune))

    @property
    def created(self) -> datetime:
        """Creation time (UTC); the file's modification time when ``created`` is missing or unparseable."""
        raw = self.record.created
        if isinstance(raw, str) and raw:
            try:
                t = datetime.fromisoformat(raw.replace("Z", "+00:00"))
                return t if t.tzinfo else t.replace(tzinfo=timezone.utc)
            except ValueError:
                pass
        return datetime.fromtimestamp(self.path.stat().st_mtime, tz=timezone.utc)

    @property
    def metrics(self) -> dict[str, float]:
        """Numeric test metrics only."""
        m = self.record.metrics or {}
        return {k: float(v) for k, v in m.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}

    @property
    def not_scored(self) -> set[str]:
        """Metrics the run recorded as null: the model cannot score them (e.g. an ID model on cold items)."""
        return {k for k, v in (self.record.metrics or {}).items() if v is None}

    @property
    def trainable_params(self) -> float | None:
        """Trainable parameters the model reported (``model.describe.params.trainable``; text models), else None."""
        v = (((self.record.model or {}).get("describe") or {}).get("params") or {}).get("trainable")
        return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None

    def efficiency(self, key: str) -> float | None:
        """A serving-cost figure of results.json ``efficiency`` (recux.efficiency): parameters, size_bytes,
        throughput_users_per_s, or latency_ms's p50/p99 as ``latency_p50``/``latency_p99``; None if absent."""
        eff = self.record.extra.get("efficiency") or {}
        v = (eff.get("latency_ms") or {}).get(key[len("latency_"):]) if key.startswith("latency_") else eff.get(key)
        return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None

    def timing(self, key: str) -> float | None:
        v = (self.record.timing or {}).get(key)
        return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None

    @property
    def per_user_path(self) -> Path:
        name = (self.record.files or {}).get("per_user_metrics") or PER_USER_FILE
        return self.folder / name


def find_results(roots: Iterable[str | os.PathLike]) -> list[Path]:
    """Every results.json and failed.json under the roots (recursive, symlinked folders not followed), sorted."""
    found: set[Path] = set()
    names = (RESULTS_FILE, FAILED_FILE)
    for root in roots:
        root = Path(root)
        if root.is_file() and root.name in names:
            found.add(root)
            continue
        for dirpath, _dirnames, filenames in os.walk(root):
            found.update(Path(dirpath) / name for name in names if name in filenames)
    return sorted(found)


@dataclass
class FailedRun:
    """A run that wrote a results record but did not finish (status "failed" or "terminated"): listed apart
    from the ranking, never aggregated. Read leniently (a failed run may lack metrics and hashes)."""

    path: Path
    data: dict[str, Any]

    @property
    def folder(self) -> Path:
        return self.path.parent

    @property
    def status(self) -> str:
        return str(self.data.get("status"))

    def _config(self, group: str) -> dict[str, Any]:
        config = self.data.get("config")
        value = config.get(group) if isinstance(config, dict) else None
        return value if isinstance(value, dict) else {}

    @property
    def dataset(self) -> str:
        ds = self.data.get("dataset")
        name = ds.get("name") if isinstance(ds, dict) else ds
        return str(name if name is not None else self._config("dataset").get("name", "unknown"))

    @property
    def label(self) -> str:
        model = self.data.get("model")
        name = model.get("name") if isinstance(model, dict) else model
        return str(self.data.get("label") or name or self._config("model").get("name") or "?")

    @property
    def seed(self) -> Any:
        return self.data.get("seed")

    @property
    def data_hash(self) -> str:
        return str(self.data.get("data_hash") or "")

    @property
    def variant_hash(self) -> str:
        return str(self.data.get("variant_hash") or "")

    @property
    def error(self) -> str:
        """The first non-empty line of the recorded error ("" when none was recorded). The error is a text or,
        as recux.failure writes it, a mapping with the exception's ``type`` and ``message``."""
        err = self.data.get("error") or ""
        if isinstance(err, dict):
            err = f"{err.get('type', 'Error')}: {err.get('message', '')}"
        lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
        return lines[0] if lines else ""


def load_results(paths: Iterable[Path]) -> tuple[list[Run], list[FailedRun], list[str]]:
    """Parse results files; returns the finished runs (status "ok"), the runs that failed or were terminated
    (status in FAILED_STATUSES, listed apart) and one warning per skipped file (unreadable JSON, another
    status, or missing required fields)."""
    runs, failed, skipped = [], [], []
    for path in paths:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            skipped.append(f"{path}: unreadable ({type(e).__name__}: {e}); skipped")
            continue
        if not isinstance(data, dict):
            skipped.append(f"{path}: not a JSON object; skipped")
            continue
        status = data.get("status")
        if status in FAILED_STATUSES:
            failed.append(FailedRun(Path(path), data))
            continue
        if status != "ok":
            skipped.append(f"{path}: status {status!r} (not 'ok'); skipped")
            continue
        try:
            runs.append(Run(Path(path), data))
        except RecordError as e:
            skipped.append(f"{path}: {e}; skipped")
    return runs, failed, skipped


def load_runs(paths: Iterable[Path]) -> tuple[list[Run], list[str]]:
    """The finished runs and one warning per file not used (failed runs included; see load_results)."""
    runs, failed, skipped = load_results(paths)
    return runs, skipped + [f"{f.path}: status {f.status!r} (not 'ok'); not ranked" for f in failed]


def _seed_key(seed: Any) -> tuple:
    return (seed is None, str(type(seed)), seed if isinstance(seed, (int, float)) else str(seed))


def deduplicate(runs: Sequence[Run]) -> tuple[list[Run], dict[tuple[str, str, str], list[str]]]:
    """Keep the newest run (by ``created``) of each (section, variant, seed); return the kept runs and, per
    section (dataset, protocol, data hash), one note per duplicated key naming what was kept and ignored."""
    by_key: dict[tuple, list[Run]] = {}
    for r in runs:
        by_key.setdefault((r.section, r.variant_hash, _seed_key(r.seed)), []).append(r)
    kept: list[Run] = []
    notes: dict[tuple[str, str, str], list[str]] = {}
    for key, group in by_key.items():
        group = sorted(group, key=lambda r: (r.created, str(r.path)), reverse=True)
        kept.append(group[0])
        if len(group) > 1:
            ignored = ", ".join(str(r.path) for r in group[1:])
            notes.setdefault(key[0], []).append(
                f"{len(group)} runs of variant {group[0].label} ({key[1]}) seed {group[0].seed}: kept the newest, "
                f"{group[0].path} (created {group[0].created.isoformat()}); ignored {ignored}"
            )
    return kept, notes
