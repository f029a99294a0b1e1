"""Manifests: the record, beside each leaderboard (``<stem>.manifest.json``), of the runs it was built from (run
id, config/variant/data hashes, seed, label, status and the folder each was read from) and of the files it
vouches for (SHA-256), and the check that a rebuild into a folder holding one neither replaces nor silently drops
those runs."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from recux.leaderboard.collect import FAILED_FILE, FAILED_STATUSES, RESULTS_FILE, FailedRun, Run

MANIFEST_SUFFIX = ".manifest.json"
MANIFEST_VERSION = 1
MODES = ("exact", "merge", "replace")


class ManifestError(ValueError):
    """A rebuild refused because it does not match the manifest of the leaderboard it would overwrite."""


def manifest_path(out: str | Path, stem: str) -> Path:
    return Path(out) / f"{stem}{MANIFEST_SUFFIX}"


def run_entry(run: Run | FailedRun) -> dict[str, Any]:
    """What identifies one run in a manifest (``folder`` is where it was read from, resolved)."""
    data = run.data
    return {
        "run_id": str(data.get("run_id") or ""),
        "config_hash": str(data.get("config_hash") or ""),
        "variant_hash": str(data.get("variant_hash") or ""),
        "data_hash": str(run.data_hash or ""),
        "seed": run.seed,
        "label": run.label,
        "status": str(data.get("status")),
        "folder": str(run.folder.resolve()),
    }


def entry_key(entry: dict[str, Any]) -> tuple[str, str]:
    """A run's identity: its run id and config hash (its folder when it records neither)."""
    if entry.get("run_id") or entry.get("config_hash"):
        return (str(entry.get("run_id") or ""), str(entry.get("config_hash") or ""))
    return ("", f"folder:{entry.get('folder')}")


def build_manifest(
    dataset: str,
    entries: Iterable[dict[str, Any]],
    files: dict[str, bytes],
    command: str,
    roots: Sequence[str],
    built: str,
) -> dict[str, Any]:
    """The manifest of one dataset's leaderboard: its runs (sorted) and the SHA-256 of each file written."""
    runs = sorted(
        entries, key=lambda e: (e["data_hash"], e["label"], str(e["seed"]), e["run_id"], e["folder"])
    )
    return {
        "manifest": MANIFEST_VERSION,
        "dataset": dataset,
        "built": built,
        "command": command,
        "roots": list(roots),
        "files": {name: hashlib.sha256(content).hexdigest() for name, content in sorted(files.items())},
        "n_runs": len(runs),
        "runs": runs,
    }


def read_manifest(path: str | Path) -> dict[str, Any]:
    """Parse a manifest; raises ManifestError saying what is wrong with it."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ManifestError(f"{path}: unreadable manifest ({type(e).__name__}: {e})") from e
    if not isinstance(data, dict) or not isinstance(data.get("runs"), list):
        raise ManifestError(f"{path}: not a leaderboard manifest (no 'runs' list)")
    return data


def manifest_results(out: str | Path) -> list[Path]:
    """The record file of every run listed by the manifests in ``out`` (whether or not they still exist):
    results.json for finished runs, failed.json for failed or terminated ones."""
    paths = []
    for path in sorted(Path(out).glob(f"*{MANIFEST_SUFFIX}")):
        for e in read_manifest(path)["runs"]:
            if e.get("folder"):
                name = FAILED_FILE if e.get("status") in FAILED_STATUSES else RESULTS_FILE
                paths.append(Path(e["folder"]) / name)
    return paths


def _describe(entries: Sequence[dict[str, Any]], limit: int = 5) -> str:
    shown = [f"{e.get('label')} seed {e.get('seed')} ({e.get('folder')})" for e in entries[:limit]]
    more = f"; and {len(entries) - limit} more" if len(entries) > limit else ""
    return "; ".join(shown) + more


def check_rebuild(
    path: Path, existing: dict[str, Any], new_entries: Sequence[dict[str, Any]], mode: str, target: str = ""
) -> str:
    """Compare a rebuild's runs with the manifest at ``path``. Returns what the write will do; raises
    ManifestError when ``mode`` does not allow it: "exact" needs the same runs, "merge" every listed run
    (it may add runs), "replace" allows anything (and says what it drops). ``target``: the option that names
    the folder, for the hint (default ``--out <folder>``)."""
    old = {entry_key(e): e for e in existing["runs"]}
    new = {entry_key(e): e for e in new_entries}
    missing = [e for k, e in old.items() if k not in new]
    added = [e for k, e in new.items() if k not in old]
    if mode == "replace":
        dropped = f", dropping {len(missing)} run(s) it listed: {_describe(missing)}" if missing else ""
        return f"replaced {path.name} ({len(old)} run(s)) with {len(new)} run(s){dropped}"
    if not missing and (mode == "merge" or not added):
        return (
            f"{path.name}: same {len(new)} run(s)"
            if not added
            else (f"{path.name}: merged {len(added)} new run(s) into its {len(old)}")
        )
    roots = " ".join(existing.get("roots") or ["<folders of the listed runs>"])
    lines = [f"refused to overwrite the leaderboard recorded by {path}: it lists {len(old)} run(s)."]
    if missing:
        lines.append(
            f"{len(missing)} of them are not in this build (not found under the folders searched, or replaced by "
            f"a newer run of the same variant and seed): {_describe(missing)}."
        )
    if added:
        lines.append(f"{len(added)} run(s) of this build are not listed: {_describe(added)}.")
    if missing and mode == "merge":
        lines.append("--merge adds runs but never drops listed ones.")
    lines.append(
        f"Rebuild it from its runs: `recux-leaderboard {roots} {target or f'--out {path.parent}'}`; "
        + ("" if missing else "add the new runs with --merge; ")
        + "or replace it with --replace (drops the runs not found). Without --out, leaderboards are written "
        "to a local folder that is not checked."
    )
    raise ManifestError("\n".join(lines))
