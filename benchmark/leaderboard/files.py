"""Files: write each dataset's Markdown, CSV and (optionally) PNG plots (primary metric per variant, accuracy vs
popularity bias) to the output folder."""

from __future__ import annotations

import io
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from recux.leaderboard.aggregate import Leaderboard
from recux.leaderboard.collect import FailedRun
from recux.leaderboard.manifest import build_manifest, manifest_path, run_entry
from recux.leaderboard.render import (
    _file_stems,
    board_records,
    render_csv,
    render_markdown,
    sanitize_filename,
)
from recux.results import atomic_write


def _png(fig) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120, bbox_inches="tight")
    return buf.getvalue()


def plot_primary(dataset: str, boards: Sequence[Leaderboard]) -> bytes:
    """Bar chart of the primary metric per variant (error bars = std over seeds), one panel per protocol."""
    from matplotlib.figure import Figure

    width = max(6.0, 0.6 * max(len(b.rows) for b in boards) + 2)
    fig = Figure(figsize=(width, 3.6 * len(boards)))
    axes = fig.subplots(len(boards), 1, squeeze=False)[:, 0]
    for ax, b in zip(axes, boards, strict=True):
        means = np.array([r.stats[b.primary].mean for r in b.rows])
        stds = np.nan_to_num(np.array([r.stats[b.primary].std for r in b.rows]))
        x = np.arange(len(b.rows))
        colors = ["tab:orange" if r is b.best else "tab:blue" for r in b.rows]
        ax.bar(x, np.nan_to_num(means), yerr=stds, capsize=3, color=colors)
        ax.set_xticks(x, [r.display for r in b.rows], rotation=35, ha="right", fontsize=8)
        arrow = "↑" if b.higher_is_better(b.primary) else "↓"
        ax.set_ylabel(f"{b.primary} {arrow}")
        ax.set_title(f"{dataset} — {b.protocol} — data {b.data_hash[:8]}", fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return _png(fig)


def plot_tradeoff(dataset: str, boards: Sequence[Leaderboard], acc: str, bias: str) -> bytes:
    """Scatter of accuracy vs popularity bias per variant (error bars both ways), one panel per protocol."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.5 * len(boards), 5))
    axes = fig.subplots(1, len(boards), squeeze=False)[0]
    for ax, b in zip(axes, boards, strict=True):
        for r in b.rows:
            xs, ys = r.stats[bias], r.stats[acc]
            if math.isnan(xs.mean) or math.isnan(ys.mean):
                continue
            ax.errorbar(
                xs.mean, ys.mean, xerr=np.nan_to_num(xs.std), yerr=np.nan_to_num(ys.std), fmt="o", capsize=3
            )
            ax.annotate(r.display, (xs.mean, ys.mean), textcoords="offset points", xytext=(4, 4), fontsize=7)
        ax.set_xlabel(f"{bias} (popularity bias {'↑' if b.higher_is_better(bias) else '↓'})")
        ax.set_ylabel(f"{acc} {'↑' if b.higher_is_better(acc) else '↓'}")
        ax.set_title(f"{dataset} — {b.protocol} — data {b.data_hash[:8]}", fontsize=10)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return _png(fig)


def _plots(dataset: str, stem: str, dboards: Sequence[Leaderboard]) -> dict[str, bytes]:
    """The PNG plots of one dataset: primary metric per variant, and accuracy vs popularity bias at its k."""
    files = {}
    for primary in sorted({b.primary for b in dboards}):
        sub = [b for b in dboards if b.primary == primary and b.primary in b.all_metrics and b.rows]
        if sub:
            files[f"{stem}_{sanitize_filename(primary)}.png"] = plot_primary(dataset, sub)
    for acc in sorted({b.primary for b in dboards}):  # accuracy (the primary) vs popularity bias at its k
        bias = f"arp@{acc.rpartition('@')[2]}"
        sub = [b for b in dboards if b.primary == acc and acc in b.all_metrics and bias in b.all_metrics]
        if sub:
            files[f"{stem}_{sanitize_filename(acc)}_vs_{sanitize_filename(bias)}.png"] = plot_tradeoff(
                dataset, sub, acc, bias
            )
    return files


@dataclass
class DatasetFiles:
    """One dataset's leaderboard, rendered but not yet written: its files (name -> content) and the manifest
    entries of its runs (ranked and failed)."""

    dataset: str
    stem: str
    files: dict[str, bytes]
    entries: list[dict]

    def manifest(self, command: str, roots: Sequence[str], built: datetime) -> dict:
        return build_manifest(self.dataset, self.entries, self.files, command, roots, built.isoformat())


def render_files(
    boards: Sequence[Leaderboard],
    command: str,
    plots: bool = True,
    built: datetime | None = None,
    failed: Sequence[FailedRun] = (),
) -> list[DatasetFiles]:
    """Render every dataset's Markdown, CSV and (optionally) PNG plots in memory, without writing."""
    built = built or datetime.now(timezone.utc)
    by_dataset: dict[str, list[Leaderboard]] = {}
    for b in boards:
        by_dataset.setdefault(b.dataset, []).append(b)
    failed_by: dict[str, list[FailedRun]] = {}
    for f in failed:
        failed_by.setdefault(f.dataset, []).append(f)
        by_dataset.setdefault(f.dataset, [])
    stems = _file_stems(by_dataset)
    out = []
    for dataset, dboards in sorted(by_dataset.items()):
        stem, dfailed = stems[dataset], failed_by.get(dataset, [])
        files = {
            f"{stem}.md": render_markdown(dataset, dboards, command, built, dfailed).encode("utf-8"),
            f"{stem}.csv": render_csv([rec for b in dboards for rec in board_records(b)]).encode("utf-8"),
        }
        if plots:
            files.update(_plots(dataset, stem, dboards))
        entries = [run_entry(r) for b in dboards for row in b.rows for r in row.runs]
        out.append(DatasetFiles(dataset, stem, files, entries + [run_entry(f) for f in dfailed]))
    return out


def write_files(
    rendered: Sequence[DatasetFiles],
    out: str | os.PathLike,
    command: str,
    roots: Sequence[str] = (),
    built: datetime | None = None,
) -> list[Path]:
    """Write each dataset's files, then its manifest last (each file atomically); return the paths."""
    out, built = Path(out), built or datetime.now(timezone.utc)
    written = []
    for d in rendered:
        for name, content in d.files.items():
            written.append(atomic_write(out / name, content))
        manifest = json.dumps(d.manifest(command, roots, built), indent=1, default=str) + "\n"
        written.append(atomic_write(manifest_path(out, d.stem), manifest))
    return written


def write_leaderboards(
    boards: Sequence[Leaderboard],
    out: str | os.PathLike,
    command: str,
    plots: bool = True,
    built: datetime | None = None,
    failed: Sequence[FailedRun] = (),
    roots: Sequence[str] = (),
) -> list[Path]:
    """Write ``<dataset>.md``, ``<dataset>.csv``, the PNG plots (optional) and ``<dataset>.manifest.json`` for
    every dataset, unchecked (the CLI checks existing manifests first); return the paths."""
    built = built or datetime.now(timezone.utc)
    return write_files(render_files(boards, command, plots, built, failed), out, command, roots, built)
