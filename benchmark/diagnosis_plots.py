"""PNG plots of a Diagnosis (matplotlib, Agg canvas, no pyplot state): per metric, each segment's mean with its
95% CI against the overall mean; significant shortfalls (Holm) in red."""

from __future__ import annotations

import io
import math
import re

import numpy as np

from recux.diagnosis import Diagnosis


def plot_name(metric: str) -> str:
    """File name of a metric's plot, e.g. ndcg@10 -> diagnosis_ndcg_at_10.png."""
    return "diagnosis_" + re.sub(r"[^A-Za-z0-9_.-]", "_", metric.replace("@", "_at_")) + ".png"


def plot_metric(diag: Diagnosis, metric: str) -> bytes:
    """Horizontal error bars: one row per segment, the overall mean as a vertical line."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = [r for r in diag.rows if r.metric == metric and r.n > 0]
    fig = Figure(figsize=(7.5, 0.28 * len(rows) + 1.6))
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    y = np.arange(len(rows))[::-1]
    means = np.array([r.mean for r in rows])
    lo = np.array([r.mean - r.ci[0] if math.isfinite(r.ci[0]) else 0.0 for r in rows])
    hi = np.array([r.ci[1] - r.mean if math.isfinite(r.ci[1]) else 0.0 for r in rows])
    worst = {id(r) for r in diag.worst()}
    colors = ["tab:red" if id(r) in worst else "tab:blue" for r in rows]
    for yi, m, l_, h_, c in zip(y, means, lo, hi, colors, strict=True):
        ax.errorbar(m, yi, xerr=[[l_], [h_]], fmt="o", color=c, capsize=2, markersize=4)
    ax.axvline(diag.overall[metric][1], color="grey", linestyle="--", label="all users")
    ax.set_yticks(y, [f"{r.name} (n={r.n})" for r in rows], fontsize=7)
    arrow = "↑" if diag.directions[metric] else "↓"
    ax.set_xlabel(f"{metric} {arrow} (mean, 95% CI; red: significant shortfall, Holm)")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return buf.getvalue()
