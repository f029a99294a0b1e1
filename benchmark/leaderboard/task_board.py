"""A leaderboard file for tasks whose results are not a ranking table (ope, ab_test): read the given run folders
of one task, write <out>/<name>.md from a per-run section renderer and <name>.manifest.json listing the runs
(run id, folder, hashes, label), as the published leaderboards do. Used by scripts/ope_board.py and
scripts/ab_board.py."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

Section = Callable[[dict[str, Any], Path], list[str]]


def read_task_runs(runs: Sequence[str], task: str, prog: str) -> list[tuple[dict[str, Any], Path]] | None:
    """(results.json, folder) of each run; None (after saying which run) if one is not a ``task`` run."""
    out = []
    for run in map(Path, runs):
        rec = json.loads((run / "results.json").read_text())
        if rec.get("task") != task:
            print(f"{prog}: {run} is a task={rec.get('task')} run, not task={task}", file=sys.stderr)
            return None
        out.append((rec, run))
    return out


def write_task_board(recs: list[tuple[dict[str, Any], Path]], out: str | Path, name: str, title: str,
                     command: str, intro: str, section: Section) -> tuple[Path, Path]:
    """<out>/<name>.md (title, build line, intro, one section per run) and <out>/<name>.manifest.json."""
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    lines = [f"# recux leaderboard: {title}", "", f"Built {now} with `{command}`. {intro}", ""]
    for rec, run in recs:
        lines += section(rec, run)
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    md, manifest = folder / f"{name}.md", folder / f"{name}.manifest.json"
    md.write_text("\n".join(lines), encoding="utf-8")
    keys = ("run_id", "data_hash", "variant_hash", "config_hash", "label")
    runs = [{"run_id": r["run_id"], "folder": str(f), **{k: r[k] for k in keys[1:]}} for r, f in recs]
    manifest.write_text(json.dumps({"built": now, "runs": runs}, indent=2), encoding="utf-8")
    return md, manifest
