"""PNG plots of a simulated A/B test (matplotlib, Agg canvas, no pyplot state): each arm's metric means with the
lifts' confidence intervals, and the p-values at the sequential looks (naive peeking vs mSPRT)."""

from __future__ import annotations

import io
from typing import Any


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return buf.getvalue()


def plot_lifts(result: dict[str, Any], alpha: float) -> bytes:
    """One panel per metric: each treatment's relative lift over the control with its CI (plain and CUPED)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    treatments = list(result["comparisons"])
    metrics = list(result["comparisons"][treatments[0]]) if treatments else []
    fig = Figure(figsize=(3.2 * max(len(metrics), 1), 0.5 * len(treatments) + 2.0))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, max(len(metrics), 1), squeeze=False)[0]
    for ax, metric in zip(axes, metrics, strict=False):
        for y, name in enumerate(treatments):
            cmp = result["comparisons"][name][metric]
            for dy, key, color in ((0.1, "plain", "tab:blue"), (-0.1, "cuped", "tab:orange")):
                if key not in cmp:
                    continue
                c = cmp[key]
                base = c["control"]
                lo, hi = c["ci_low"] / base, c["ci_high"] / base  # the absolute CI on the relative scale
                ax.errorbar(c["diff"] / base, y + dy, xerr=[[c["diff"] / base - lo], [hi - c["diff"] / base]],
                            fmt="o", color=color, capsize=2, markersize=4, label=key if y == 0 else None)
        ax.axvline(0, color="grey", linestyle="--")
        ax.set_ylim(-0.6, len(treatments) - 0.4)
        ax.set_yticks(range(len(treatments)), treatments, fontsize=7)
        ax.set_title(f"{metric}: lift vs control", fontsize=8)
        ax.set_xlabel(f"(treatment - control) / control, {1 - alpha:.0%} CI", fontsize=7)
    if metrics:
        axes[0].legend(fontsize=7)
    return _png(fig)


def plot_looks(result: dict[str, Any], alpha: float) -> bytes:
    """p-value against users arrived: naive Welch at each look vs the always-valid mSPRT p-value."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.0, 3.5))
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    for name, seq in result["sequential"].items():
        ax.plot(seq["users"], seq["naive_p"], "o-", label=f"{name}: naive t-test at each look")
        ax.plot(seq["users"], seq["msprt_p"], "s--", label=f"{name}: mSPRT (always valid)")
    ax.axhline(alpha, color="red", linestyle=":", label=f"alpha = {alpha}")
    ax.set_yscale("log")
    ax.set_xlabel("users arrived (both arms)")
    ax.set_ylabel("p-value")
    ax.legend(fontsize=7)
    return _png(fig)
