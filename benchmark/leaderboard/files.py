"""Files: write each dataset's Markdown, CSV and (optionally) PNG plots (primary metric per variant, accuracy vs
popularity bias) to the output folder."""

from __future__ import annotations

import io
import math
import os
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from recux.leaderboard.aggregate import Leaderboard
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


def write_leaderboards(
    boards: Sequence[Leaderboard],
    out: str | os.PathLike,
    command: str,
    plots: bool = True,
    built: datetime | None = None,
) -> list[Path]:
    """Write ``<dataset>.md``, ``<dataset>.csv`` and (optionally) the PNG plots for every dataset; return paths."""
    out = Path(out)
    built = built or datetime.now(timezone.utc)
    by_dataset: dict[str, list[Leaderboard]] = {}
    for b in boards:
        by_dataset.setdefault(b.dataset, []).append(b)
    stems = _file_stems(by_dataset)
    written = []
    for dataset, dboards in by_dataset.items():
        stem = stems[dataset]
        md, csv_path = out / f"{stem}.md", out / f"{stem}.csv"
        atomic_write(md, render_markdown(dataset, dboards, command, built))
        atomic_write(csv_path, render_csv([rec for b in dboards for rec in board_records(b)]))
        written += [md, csv_path]
        if not plots:
            continue
        for primary in sorted({b.primary for b in dboards}):
            sub = [b for b in dboards if b.primary == primary and b.primary in b.all_metrics and b.rows]
            if not sub:
                continue
            path = out / f"{stem}_{sanitize_filename(primary)}.png"
            atomic_write(path, plot_primary(dataset, sub))
            written.append(path)
        for acc in sorted({b.primary for b in dboards}):  # accuracy (the primary) vs popularity bias at its k
            bias = f"arp@{acc.rpartition('@')[2]}"
            sub = [b for b in dboards if b.primary == acc and acc in b.all_metrics and bias in b.all_metrics]
            if sub:
                path = out / f"{stem}_{sanitize_filename(acc)}_vs_{sanitize_filename(bias)}.png"
                atomic_write(path, plot_tradeoff(dataset, sub, acc, bias))
                written.append(path)
    return written
