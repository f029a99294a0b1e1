"""The replay task's plots (PNG, matplotlib Agg canvas, no pyplot state) and markdown report: metrics, drift and
latency per window, with the windows where an alert fired shaded."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

PLOTS = {"metrics": "replay_metrics.png", "drift": "replay_drift.png", "latency": "replay_latency.png"}


def _figure(n_panels: int):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8.5, 2.3 * n_panels + 0.6))
    FigureCanvasAgg(fig)
    axes = fig.subplots(n_panels, 1, sharex=True, squeeze=False)[:, 0]
    return fig, axes


def _shade(ax, rows: list[dict[str, Any]], own: set[int]) -> None:
    """Windows where an alert on this panel's columns fired (``own``): red; where another alert fired: pale."""
    for row in rows:
        if row.get("alert"):
            w = row["window"]
            ax.axvspan(w - 0.5, w + 0.5, color="tab:red", alpha=0.18 if w in own else 0.05, lw=0)


def _panel(ax, rows, columns: list[str], ylabel: str, bounds: dict[str, list[float]],
           fired: list[dict[str, Any]]) -> None:
    x = [r["window"] for r in rows]
    for col in columns:
        ax.plot(x, [r.get(col, math.nan) for r in rows], marker="o", markersize=3, label=col)
        for bound in bounds.get(col, ()):
            ax.axhline(bound, color="tab:red", linestyle="--", lw=0.8)
    _shade(ax, rows, {f["window"] for f in fired if f["column"] in columns})
    step = max(1, len(rows) // 12)
    ax.set_xticks(x[::step], [f"{r['window']}\n{r.get('start', '')[5:10]}" for r in rows[::step]], fontsize=7)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")


def _save(fig, path: Path, title: str) -> None:
    fig.axes[-1].set_xlabel("window and start date (red: an alert on the panel fired; pale: another alert; "
                            "dashed: threshold)", fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def plot_all(rows: list[dict[str, Any]], art, panels: dict[str, list[list[str]]], bounds: dict[str, list[float]],
             fired: list[dict[str, Any]], title: str) -> dict[str, str]:
    """One PNG per kind (metrics, drift, latency); ``panels[kind]``: the column groups, one panel each."""
    out = {}
    for kind, groups in panels.items():
        groups = [g for g in groups if g]
        if not groups or not rows:
            continue
        fig, axes = _figure(len(groups))
        for ax, cols in zip(axes, groups, strict=True):
            _panel(ax, rows, cols, cols[0].split("@")[0] if len(cols) == 1 else kind, bounds, fired)
        _save(fig, art.path(PLOTS[kind]), f"{title}: {kind}")
        out[kind] = PLOTS[kind]
    return out


def _fmt(v: Any) -> str:
    if isinstance(v, bool):
        return "yes" if v else ""
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.4g}"
    return str(v)


def markdown(title: str, settings: dict[str, Any], overall: dict[str, float], latency: dict[str, float],
             validation: dict[str, float] | None, rows: list[dict[str, Any]], columns: list[str],
             fired: list[dict[str, Any]], alerts: list[Any], plots: dict[str, str], notes: list[str]) -> str:
    """The replay report: settings, the whole replay's metrics (and the validation period's replay), the window
    table, the alerts, the plots."""
    lines = [f"# Replay report: {title}", ""]
    lines += [f"- {k}: {v}" for k, v in settings.items()] + [""]
    lines += notes + ([""] if notes else [])
    valid = validation or {}
    lines += ["## Whole replay", "", "| metric | test period | validation period |", "|---|---|---|"]
    lines += [f"| {k} | {_fmt(v)} | {_fmt(valid.get(k, ''))} |" for k, v in {**overall, **latency}.items()]
    lines += [""]
    cols = ["window", "start", "n_requests", *columns, "alerts"]
    lines += ["## Windows", "", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(_fmt(r.get(c, "")) for c in cols) + " |" for r in rows] + [""]
    lines += ["## Alerts", ""]
    lines += [f"- `{a.name}`: {a.describe()}" for a in alerts] or ["- none configured"]
    lines += [""]
    if fired:
        lines += ["| window | alert | value | threshold |", "|---|---|---|---|"]
        lines += [f"| {f['window']} | {f['alert']} | {_fmt(f['value'])} | {_fmt(f['threshold'])} |" for f in fired]
    else:
        lines += ["No alert fired."]
    lines += ["", "## Plots", ""] + [f"![{k}]({v})" for k, v in plots.items()] + [""]
    return "\n".join(lines)
