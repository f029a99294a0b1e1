"""Run artefacts written atomically: files are staged in a hidden folder and moved into the run folder only
when the whole run succeeded, ``results.json`` last, so a failed run leaves no half-written results."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import tempfile
import uuid
from collections.abc import Callable, Mapping
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np

from recux.errors import RecuxError

RESULTS_FILE = "results.json"  # its content: recux.record.ResultsRecord
FAILED_FILE = "failed.json"  # a failed or terminated run's record (status "failed"/"terminated", see recux.failure)
TRACEBACK_FILE = "traceback.txt"
# settings that steer how a run is launched, not what it computes: left out of the config hash
RUN_CONTROL_KEYS = ("run.skip_existing",)
_TRACKED_PACKAGES = ("recux", "numpy", "numba", "polars", "scipy", "torch", "pytorch-lightning", "hydra-core",
                     "wandb", "pyarrow")


def config_hash(config: Mapping[str, Any], drop: tuple[str, ...] = ()) -> str:
    """sha256 (first 12 hex digits) of a config with the given dotted keys removed."""
    cfg = json.loads(json.dumps(config, default=str))
    for key in drop:
        node = cfg
        parts = key.split(".")
        for p in parts[:-1]:
            node = node.get(p, {}) if isinstance(node, dict) else {}
        if isinstance(node, dict):
            node.pop(parts[-1], None)
    blob = json.dumps(cfg, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def run_config_hash(resolved: Mapping[str, Any]) -> str:
    """The config hash a results record stores: the whole resolved config less ``RUN_CONTROL_KEYS``."""
    return config_hash(resolved, drop=RUN_CONTROL_KEYS)


def library_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in _TRACKED_PACKAGES:
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (Path, set, frozenset)):
        return str(obj) if isinstance(obj, Path) else sorted(obj)
    return str(obj)


def atomic_write(path: str | Path, data: bytes | str | Callable[[Path], None]) -> Path:
    """Write ``path`` so that readers see the old file or the whole new one, never a part: the content goes
    to a temporary file in the same folder, is fsynced, then renamed over ``path`` (the usual permissions,
    from the umask). ``data``: bytes, text (UTF-8), or a function that writes the temporary path it is given
    (e.g. ``frame.write_parquet``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        if callable(data):
            data(tmp)
        else:
            with open(tmp, "xb") as fh:  # plain open: the umask applies (mkstemp would make the file 0600)
                fh.write(data.encode("utf-8") if isinstance(data, str) else data)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_json_atomic(path: str | Path, payload: Mapping[str, Any]) -> Path:
    """``payload`` as indented JSON (numpy values converted), written with ``atomic_write``."""
    return atomic_write(path, json.dumps(payload, indent=2, sort_keys=False, default=_json_default,
                                         allow_nan=True))


class RunFolderConflict(RecuxError):
    """Another run published results into this run's folder while it ran."""

    def __init__(self, message: str, kept: Path) -> None:
        super().__init__(message)
        self.kept = kept  # where this run's own files are


OWNER_FILE = ".recux-owner"  # the token of the run that last started in a folder (see claim_folder)
_claims: dict[Path, str] = {}


def claim_folder(run_dir: str | Path) -> None:
    """Mark ``run_dir`` as this run's (called when a run starts, after Hydra wrote the run's config there): if
    another run starts in the same folder later, it takes the folder over and this run will not publish into
    it (RunArtifacts.publish checks the claim)."""
    token = uuid.uuid4().hex
    atomic_write(Path(run_dir) / OWNER_FILE, token)
    _claims[Path(run_dir).resolve()] = token


def _taken_by_another_run(run_dir: Path) -> bool:
    token = _claims.get(run_dir.resolve())
    if token is None:
        return False
    try:
        return (run_dir / OWNER_FILE).read_text(encoding="utf-8") != token
    except OSError:
        return True


def move_aside_previous(run_dir: str | Path) -> Path | None:
    """Before a run starts in ``run_dir``: move an earlier run's record and files (results.json or failed.json
    and everything beside them, except Hydra's ``.hydra/`` and the log) into ``previous-<run_id>/``, so a
    folder never pairs one run's config with another run's results. Returns that folder, or None."""
    run_dir = Path(run_dir)
    old = next((run_dir / f for f in (RESULTS_FILE, FAILED_FILE) if (run_dir / f).is_file()), None)
    if old is None:
        return None
    try:
        run_id = str(json.loads(old.read_text(encoding="utf-8")).get("run_id") or "")
    except (OSError, ValueError, AttributeError):
        run_id = ""
    aside = run_dir / f"previous-{run_id or uuid.uuid4().hex[:8]}"
    while aside.exists():
        aside = run_dir / f"{aside.name}-{uuid.uuid4().hex[:4]}"
    aside.mkdir()
    for entry in sorted(run_dir.iterdir()):
        if entry.name in (".hydra", "run.log", OWNER_FILE) or entry.name.startswith(("previous-", ".staging-")):
            continue
        os.replace(entry, aside / entry.name)
    return aside


class RunArtifacts:
    """Stage a run's files, then publish them all at once (or discard them on failure).

    Use as a context manager: files written under ``stage`` appear in ``run_dir`` only if the block
    finishes without an exception; an existing results.json in ``run_dir`` is never clobbered by a failure.
    """

    def __init__(self, run_dir: str | Path):
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.stage = Path(tempfile.mkdtemp(prefix=".staging-", dir=self.run_dir))
        self._results: dict[str, Any] | None = None
        self._cancelled = False

    def cancel(self) -> None:
        """Discard the staged files on exit even without an exception (e.g. a non-zero DDP rank)."""
        self._cancelled = True

    def path(self, relative: str) -> Path:
        p = self.stage / relative
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def set_results(self, results: Mapping[str, Any]) -> None:
        self._results = dict(results)

    def publish(self) -> Path:
        if self._results is None:
            raise RuntimeError("RunArtifacts.publish() called without results")
        if (self.run_dir / RESULTS_FILE).exists() or _taken_by_another_run(self.run_dir):
            self._refuse_conflict()
        for entry in sorted(self.stage.iterdir()):
            target = self.run_dir / entry.name
            if target.is_dir() and entry.is_dir():
                shutil.rmtree(target)
            os.replace(entry, target)
        shutil.rmtree(self.stage, ignore_errors=True)
        return write_json_atomic(self.run_dir / RESULTS_FILE, self._results)

    def _refuse_conflict(self) -> None:
        """Another run started in (or published into) this run's folder while it ran: keep this run's files,
        results.json included, in ``unpublished-<run_id>/`` and refuse, never mixing two runs in one folder."""
        kept = self.run_dir / f"unpublished-{(self._results or {}).get('run_id') or uuid.uuid4().hex[:8]}"
        write_json_atomic(self.stage / RESULTS_FILE, self._results or {})
        os.replace(self.stage, kept)
        raise RunFolderConflict(
            f"another run started in or wrote results into {self.run_dir} while this one ran; this run's files "
            f"are kept in {kept}. Give each run its own folder (the default hydra.run.dir and "
            "hydra.sweep.subdir end with a unique suffix; do not point two runs at one hydra.run.dir).", kept)

    def discard(self) -> None:
        shutil.rmtree(self.stage, ignore_errors=True)

    def __enter__(self) -> RunArtifacts:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None and not self._cancelled:
            self.publish()
        else:
            self.discard()
