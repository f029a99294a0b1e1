"""The record of a run that did not finish: ``failed.json`` (a results record with status "failed" or
"terminated", the error, and the identity fields a leaderboard groups by), ``traceback.txt`` beside it, and the
error in the run's log. A failed run never writes results.json."""

from __future__ import annotations

import logging
import shutil
import traceback
import uuid
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from recux import identity
from recux.errors import RecuxError
from recux.record import ResultsRecord
from recux.results import (
    FAILED_FILE,
    RESULTS_FILE,
    TRACEBACK_FILE,
    RunFolderConflict,
    library_versions,
    run_config_hash,
    write_json_atomic,
)
from recux.signals import Terminated

log = logging.getLogger("recux")


def _name(node: Any) -> str | None:
    return str(node.get("name")) if isinstance(node, Mapping) and node.get("name") is not None else None


def _label(resolved: Mapping[str, Any], overrides: list[str]) -> tuple[str, bool]:
    """The run's label as a finished run would have it, and whether its fine-tuning is the baseline."""
    from recux import registry
    from recux.stages import build_label

    model, finetune = _name(resolved.get("model")) or "unknown", _name(resolved.get("finetune"))
    try:
        baseline = not finetune or bool(registry.get("finetune", finetune).meta.get("baseline", False))
    except RecuxError:
        baseline = False
    return build_label(model, None if baseline else finetune, overrides), baseline


def failure_record(resolved: Mapping[str, Any], overrides: list[str], exc: BaseException) -> ResultsRecord:
    """A results record for a run that raised ``exc``: status "terminated" for SIGTERM, else "failed"."""
    now = datetime.now(timezone.utc)
    label, baseline = _label(resolved, overrides)
    model, finetune = dict(resolved.get("model") or {}), dict(resolved.get("finetune") or {})
    return ResultsRecord(
        run_id=f"{now:%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}", created=now.isoformat(timespec="seconds"),
        status="terminated" if isinstance(exc, Terminated) else "failed",
        error={"type": type(exc).__name__, "message": str(exc), "recux_error": isinstance(exc, RecuxError),
               "traceback": TRACEBACK_FILE},
        task=_name(resolved.get("task")) or identity.DEFAULT_TASK, label=label,
        variant_hash=identity.variant_hash(resolved), data_hash=identity.data_hash(resolved),
        config_hash=run_config_hash(resolved), seed=resolved.get("seed"),
        dataset={"name": _name(resolved.get("dataset")) or "unknown"},
        model={"name": model.pop("name", None), "params": model},
        finetune={"name": finetune.pop("name", None), "params": finetune, "baseline": baseline},
        optimized_metric=str(resolved.get("optimized_metric") or identity.DEFAULT_OPTIMIZED_METRIC),
        versions=library_versions(), config=dict(resolved), files={"traceback": TRACEBACK_FILE},
    )


def record_failure(run_dir: str | Path, resolved: Mapping[str, Any], overrides: list[str],
                   exc: BaseException) -> Path:
    """Write failed.json and traceback.txt into ``run_dir``, log the error to the run's log files, and remove
    any staging folder left in ``run_dir``. Returns the record's path. When another run took the folder
    (RunFolderConflict) this run's finished results are kept in ``unpublished-<run_id>/`` and only the error
    is logged (no failed.json beside another run's results)."""
    run_dir = Path(run_dir)
    if isinstance(exc, RunFolderConflict):
        log_to_files(f"run not published: {exc}", logging.ERROR)
        return exc.kept / RESULTS_FILE
    for stage in run_dir.glob(".staging-*"):  # the run folder is this run's own: any staging is its leftover
        shutil.rmtree(stage, ignore_errors=True)
    (run_dir / TRACEBACK_FILE).write_text("".join(traceback.format_exception(exc)), encoding="utf-8")
    record = failure_record(resolved, overrides, exc)
    path = write_json_atomic(run_dir / FAILED_FILE, record.to_dict())
    log_to_files(f"run {record.status}: {type(exc).__name__}: {exc}\n"
                 f"  record: {path}\n  traceback: {run_dir / TRACEBACK_FILE}", logging.ERROR)
    return path


def log_to_files(message: str, level: int = logging.INFO) -> None:
    """Write ``message`` to the log files only (Hydra's run.log), not to the console, which already shows
    it (errors go to stderr without the logger's prefix)."""
    record = log.makeRecord(log.name, level, __file__, 0, message, None, None)
    for handler in logging.getLogger().handlers + log.handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)
