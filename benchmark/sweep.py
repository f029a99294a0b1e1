"""Sweeps (``recux -m``) that survive failed jobs and resume.

* Each job's outcome ("ok", "failed", "skipped") is appended to a tally file whose path the CLI puts in the
  environment (``RECUX_SWEEP_TALLY``) before the sweep starts, so jobs that a parallel launcher (joblib) runs in
  other processes are counted too; the CLI reads it when the sweep returns and exits 3 if any job failed.
* ``run.skip_existing`` (multirun only): a job whose successful results.json already exists in the sweep folder
  for the same config hash and seed is skipped. Rerun an interrupted sweep with the same
  ``hydra.sweep.dir=<its folder>``; ``run.skip_existing=false`` reruns every job.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from recux.results import FAILED_FILE, RESULTS_FILE

TALLY_ENV = "RECUX_SWEEP_TALLY"


def start_tally() -> Path:
    """Create an empty tally file and name it in the environment (inherited by launcher worker processes)."""
    fd, path = tempfile.mkstemp(prefix="recux-sweep-", suffix=".tally")
    os.close(fd)
    os.environ[TALLY_ENV] = path
    return Path(path)


def note(outcome: str, run_dir: str | Path) -> None:
    """Append one job's outcome to the tally (no-op outside a CLI sweep). One short O_APPEND write per job, so
    lines from parallel jobs do not interleave."""
    path = os.environ.get(TALLY_ENV)
    if path:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        try:
            os.write(fd, f"{outcome}\t{run_dir}\n".encode())
        finally:
            os.close(fd)


def read_tally(path: Path) -> tuple[Counter[str], list[str]]:
    """Counts per outcome, and the folders of the failed jobs."""
    counts: Counter[str] = Counter()
    failed = []
    for line in path.read_text(encoding="utf-8").splitlines():
        outcome, _, folder = line.partition("\t")
        counts[outcome] += 1
        if outcome == "failed":
            failed.append(folder)
    return counts, failed


def read_record(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def existing_results(sweep_dir: str | Path, config_hash: str, seed: Any) -> Path | None:
    """A successful results.json under ``sweep_dir`` (any depth, including moved-aside ``previous-*`` folders)
    for this config hash and seed, or None."""
    for path in sorted(Path(sweep_dir).rglob(RESULTS_FILE)):
        data = read_record(path)
        if data and data.get("status") == "ok" and data.get("config_hash") == config_hash \
                and data.get("seed") == seed:
            return path
    return None


def folder_record(run_dir: str | Path) -> dict[str, Any] | None:
    """The record an earlier run left in ``run_dir`` (results.json, else failed.json), or None."""
    for name in (RESULTS_FILE, FAILED_FILE):
        if (Path(run_dir) / name).is_file():
            return read_record(Path(run_dir) / name) or {}
    return None
