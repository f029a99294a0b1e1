"""diagnosis.md (Markdown tables and the ranked worst-served segments) and the W&B table rows of a Diagnosis."""

from __future__ import annotations

import math
from typing import Any

from recux.diagnosis import Diagnosis, SegmentRow

TABLE_COLUMNS = ["metric", "family", "segment", "n", "mean", "ci_low", "ci_high", "gap", "gap_ci_low",
                 "gap_ci_high", "p", "p_holm", "relative_shortfall", "vs_baseline", "vs_baseline_ci_low",
                 "vs_baseline_ci_high", "vs_baseline_p", "vs_baseline_p_holm"]


def _f(x: float, digits: int = 4) -> str:
    return "–" if x is None or not math.isfinite(x) else f"{x:.{digits}f}"


def _p(x: float) -> str:
    if x is None or not math.isfinite(x):
        return "–"
    return f"{x:.2g}" if x >= 1e-4 else f"{x:.1e}"


def _ci(lo: float, hi: float) -> str:
    return "–" if not (math.isfinite(lo) and math.isfinite(hi)) else f"[{lo:.4f}, {hi:.4f}]"


def _pct(x: float) -> str:
    return "–" if not math.isfinite(x) else f"{100 * x:.1f}%"


def describe(row: SegmentRow, diag: Diagnosis) -> str:
    """One line of the ranked list."""
    overall = diag.overall[row.metric][1]
    return (f"**{row.name}** ({row.metric}, n = {row.n}): mean {_f(row.mean)} vs overall {_f(overall)}, gap "
            f"{row.gap:+.4f} {_ci(*row.gap_ci)} (shortfall {_pct(row.relative_shortfall)} of the overall mean), "
            f"p = {_p(row.p)}, Holm p = {_p(row.p_holm)}")


def _table(diag: Diagnosis, metric: str) -> list[str]:
    has_base = bool(diag.overall_baseline)
    head = ["segment", "n", "mean", "95% CI", "gap to overall", "gap 95% CI", "p", "p Holm"]
    if has_base:
        head += ["vs baseline Δ", "Δ 95% CI", "p", "p Holm"]
    n, m, lo, hi = diag.overall[metric]
    first = ["**all users**", str(n), _f(m), _ci(lo, hi), "", "", "", ""]
    if has_base:
        b = diag.overall_baseline[metric]
        first += [f"{b.diff:+.4f}", _ci(*b.ci), _p(b.p), ""]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head), "| " + " | ".join(first) + " |"]
    for r in (r for r in diag.rows if r.metric == metric):
        cells = [r.name, str(r.n), _f(r.mean), _ci(*r.ci), _f(r.gap) if not math.isfinite(r.gap) else f"{r.gap:+.4f}",
                 _ci(*r.gap_ci), _p(r.p), _p(r.p_holm)]
        if has_base:
            b = r.baseline
            cells += ["–", "–", "–", "–"] if b is None else [
                f"{b.diff:+.4f}" if math.isfinite(b.diff) else "–", _ci(*b.ci), _p(b.p), _p(b.p_holm)]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def render_markdown(diag: Diagnosis, title: dict[str, Any], plots: dict[str, str]) -> str:
    """The whole diagnosis.md. ``title``: run label, run_id, dataset, data_hash, baseline (label/run_id) etc.;
    ``plots``: metric -> PNG file name beside it."""
    out = [f"# UX diagnosis: {title.get('label', '?')} on {title.get('dataset', '?')}", ""]
    out += [f"- {k}: `{v}`" for k, v in title.items()]
    out += ["", "## Worst-served segments", "",
            f"Segments whose metric falls short of the overall mean (in the metric's direction) with Holm-adjusted "
            f"p <= {diag.alpha}, ranked by shortfall relative to the overall mean.", ""]
    worst = diag.worst()
    out += [f"{i}. {describe(r, diag)}" for i, r in enumerate(worst, 1)] or [
        "None significant. Largest shortfalls (not significant):", "",
        *[f"- {describe(r, diag)}" for r in diag.largest_shortfalls()]]
    for metric in diag.metrics:
        better = "higher" if diag.directions[metric] else "lower"
        out += ["", f"## {metric} ({better} is better)", "", *_table(diag, metric)]
        if metric in plots:
            out += ["", f"![{metric} per segment]({plots[metric]})"]
    out += ["", "## Segment definitions", ""]
    for family, defs in diag.definitions.items():
        out += [f"- {family}: " + "; ".join(f"{lv}: {d}" for lv, d in defs.items())]
    out += ["", "## Statistics", "", _METHOD, ""]
    return "\n".join(out)


_METHOD = (
    "Segment mean: 95% Student t interval. User segments: gap = segment mean − overall mean = (1 − f)(mean(S) − "
    "mean(rest)) with f = n_S/N; its 95% CI is (1 − f) × the Welch interval, its p-value Welch's t-test of the "
    "segment against the other users (different users: unpaired). Item segments (cold_start runs): paired "
    "per-user difference to the same users' overall value (t interval, paired t-test). Against the baseline: "
    "paired per-user difference run − baseline on the segment's users present in both runs, percentile "
    "bootstrap 95% CI (10,000 resamples, seed 0) and paired t-test. Holm–Bonferroni adjustment across all "
    "segment × metric rows (separately for the gap and for the baseline difference)."
)


def table_rows(diag: Diagnosis) -> list[list[Any]]:
    """Rows for a W&B table (columns ``TABLE_COLUMNS``)."""
    rows = []
    for r in diag.rows:
        b = r.baseline
        base = [None] * 5 if b is None else [b.diff, b.ci[0], b.ci[1], b.p, b.p_holm]
        rows.append([r.metric, r.family, r.level, r.n, r.mean, r.ci[0], r.ci[1], r.gap, r.gap_ci[0], r.gap_ci[1],
                     r.p, r.p_holm, r.relative_shortfall, *base])
    return rows
