"""Files: write each dataset's Markdown, CSV and (optionally) PNG plots (primary metric per variant, accuracy vs
popularity bias, and per section with a UX view the Pareto plots of accuracy against the UX measures) to the
output folder; with sections at several training fractions, the learning curves (recux.leaderboard.curves)."""

from __future__ import annotations

import io
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from recux.leaderboard.aggregate import Leaderboard
from recux.leaderboard.collect import FailedRun
from recux.leaderboard.curves_render import render_curves
from recux.leaderboard.manifest import build_manifest, manifest_path, run_entry
from recux.leaderboard.render import (
    _file_stems,
    board_records,
    render_csv,
    render_markdown,
    sanitize_filename,
)
from recux.leaderboard.ux import UxConfig, finite_pairs, has_ux_view, pareto_table
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


def plot_ux_pareto(dataset: str, board: Leaderboard, config: UxConfig) -> bytes:
    """One section's Pareto plots: accuracy (y) against each drawable UX panel's metric (x), one subplot each;
    every variant a labelled point with std error bars, the Pareto-optimal ones filled and joined by a line."""
    from matplotlib.figure import Figure

    acc, fronts = config.accuracy, pareto_table(board, config)
    fig = Figure(figsize=(5.5 * len(fronts), 4.8))
    axes = fig.subplots(1, len(fronts), squeeze=False)[0]
    for ax, (metric, flags) in zip(axes, fronts.items(), strict=True):
        rows = finite_pairs(board, (acc, metric))
        for i in rows:
            xs, ys, best = board.rows[i].stats[metric], board.rows[i].stats[acc], flags[i]
            ax.errorbar(xs.mean, ys.mean, xerr=np.nan_to_num(xs.std), yerr=np.nan_to_num(ys.std), fmt="o",
                        capsize=3, color="tab:red" if best else "tab:blue", mfc="tab:red" if best else "white")  # fmt: skip
            ax.annotate(board.rows[i].display, (xs.mean, ys.mean), textcoords="offset points", xytext=(4, 4),
                        fontsize=7)  # fmt: skip
        front = sorted((board.rows[i].stats[metric].mean, board.rows[i].stats[acc].mean) for i in rows if flags[i])
        if len(front) > 1:
            ax.plot(*zip(*front, strict=True), color="tab:red", alpha=0.5, linewidth=1, zorder=0)
        ax.set_xlabel(f"{metric} {'↑' if board.higher_is_better(metric) else '↓'}")
        ax.set_ylabel(f"{acc} {'↑' if board.higher_is_better(acc) else '↓'}")
        ax.set_title(f"{acc} vs {metric} (filled: Pareto-optimal)", fontsize=9)
        ax.grid(alpha=0.3)
    fig.suptitle(f"{dataset} — {board.protocol} — data {board.data_hash[:8]}", fontsize=10)
    fig.tight_layout()
    return _png(fig)


def ux_plot_name(stem: str, board: Leaderboard) -> str:
    """The file name of a section's UX Pareto plot."""
    return f"{stem}_ux_{sanitize_filename(board.protocol)}_{board.data_hash[:8]}.png"


def _ux_plots(dataset: str, stem: str, dboards: Sequence[Leaderboard], config: UxConfig) -> dict[str, bytes]:
    """The Pareto plot of every section of a dataset that has a UX view and at least one drawable panel."""
    return {
        ux_plot_name(stem, b): plot_ux_pareto(dataset, b, config)
        for b in dboards
        if has_ux_view(b, config) and pareto_table(b, config)
    }


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
    ux_plots: dict[tuple[str, str], str] = field(default_factory=dict)  # (protocol, data hash) -> file name

    def manifest(self, command: str, roots: Sequence[str], built: datetime) -> dict:
        return build_manifest(self.dataset, self.entries, self.files, command, roots, built.isoformat())


def render_files(
    boards: Sequence[Leaderboard],
    command: str,
    plots: bool = True,
    built: datetime | None = None,
    failed: Sequence[FailedRun] = (),
    ux: UxConfig | None = None,
) -> list[DatasetFiles]:
    """Render every dataset's Markdown, CSV and (optionally) PNG plots in memory, without writing; with ``ux``,
    the UX view of every section that has UX metrics (and, with plots, its Pareto plot)."""
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
        ux_files = _ux_plots(dataset, stem, dboards, ux) if plots and ux is not None else {}
        names = {(b.protocol, b.data_hash): ux_plot_name(stem, b) for b in dboards}
        ux_plots = {key: name for key, name in names.items() if name in ux_files}
        md = render_markdown(dataset, dboards, command, built, dfailed, ux=ux, ux_plots=ux_plots)
        curves_md, curve_files = render_curves(stem, dboards, plots)  # sections at several data.train_fraction
        files = {
            f"{stem}.md": (md + curves_md).encode("utf-8"),
            f"{stem}.csv": render_csv([rec for b in dboards for rec in board_records(b)]).encode("utf-8"),
        }
        files.update(curve_files)
        if plots:
            files.update(_plots(dataset, stem, dboards))
            files.update(ux_files)
        entries = [run_entry(r) for b in dboards for row in b.rows for r in row.runs]
        out.append(DatasetFiles(dataset, stem, files, entries + [run_entry(f) for f in dfailed], ux_plots))
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
    ux: UxConfig | None = None,
) -> list[Path]:
    """Write ``<dataset>.md``, ``<dataset>.csv``, the PNG plots (optional) and ``<dataset>.manifest.json`` for
    every dataset, unchecked (the CLI checks existing manifests first); return the paths."""
    built = built or datetime.now(timezone.utc)
    return write_files(render_files(boards, command, plots, built, failed, ux), out, command, roots, built)
