"""The "Learning curves" view (recux.leaderboard.curves): per curve family a Markdown table (mean ± 95% CI over
seeds and the relative loss against 100% per variant and fraction), the paired comparisons at each fraction, CSV
records and one PNG (x: fraction, log scale; y: the metric, error bars the CI; one line per variant; one panel per
metric)."""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import Any

from recux.identity import describe_settings
from recux.leaderboard.aggregate import Leaderboard
from recux.leaderboard.curves import Curve, learning_curves
from recux.leaderboard.render import _fmt_diff, _fmt_p, _md_escape, sanitize_filename


def _pct(f: float) -> str:
    return f"{f * 100:g}%"


def _cell(curve: Curve, name: str, f: float) -> str:
    p = curve.lines[name].get(f)
    if p is None:
        return "—"
    ci = "" if math.isnan(p.ci_low) else f" ± {(p.ci_high - p.ci_low) / 2:.4f}"
    loss = "" if f == 1.0 or math.isnan(p.rel_loss) else f" ({-p.rel_loss * 100:+.0f}%)"
    return f"{p.mean:.4f}{ci} (n={p.n}){loss}"


def curve_table(curve: Curve) -> list[str]:
    fr = curve.fractions
    head = "| variant | " + " | ".join(_pct(f) for f in fr) + " |"
    lines = [head, "|---|" + "---:|" * len(fr)]
    for name in curve.lines:
        lines.append(f"| {_md_escape(name)} | " + " | ".join(_cell(curve, name, f) for f in fr) + " |")
    return lines


def significance_table(curve: Curve, alpha: float = 0.05) -> list[str]:
    return _comparison_table(curve.comparisons, "mean(A − B) per user", alpha)


def drop_table(curve: Curve, alpha: float = 0.05) -> list[str]:
    """"Does A lose less than B": per-user drop from 100% of A minus that of B (negative: A loses less)."""
    return _comparison_table(curve.drop_comparisons, "drop A − drop B per user", alpha)


def _comparison_table(comparisons: list, label: str, alpha: float) -> list[str]:
    """One row per Holm-corrected pairwise comparison; ``*`` marks permutation p <= alpha."""
    if not comparisons:
        return []
    lines = [f"| fraction | A | B | {label} [95% CI] | p permutation (Holm) | p t-test (Holm) | "
             "users | seeds |", "|---:|---|---|---:|---:|---:|---:|---:|"]
    for c in comparisons:
        mark = " *" if not math.isnan(c.p_permutation_holm) and c.p_permutation_holm <= alpha else ""
        diff = _fmt_diff(c.test) if c.test else f"n/a — {_md_escape(c.note)}"
        lines.append(f"| {_pct(c.fraction)} | {_md_escape(c.a)} | {_md_escape(c.b)} | {diff} | "
                     f"{_fmt_p(c.p_permutation_holm)}{mark} | {_fmt_p(c.p_ttest_holm)} | "
                     f"{c.test.n if c.test else 0} | {c.n_seeds} |")
    return lines


def plot_name(stem: str, curve: Curve) -> str:
    return f"{stem}_curve_{sanitize_filename(curve.protocol)}_{curve.key.replace('/', '-')[:8]}.png"


def _families(curves: Sequence[Curve]) -> dict[tuple[str, str], list[Curve]]:
    out: dict[tuple[str, str], list[Curve]] = {}
    for c in curves:
        out.setdefault((c.protocol, c.key), []).append(c)
    return out


def render_markdown(curves: Sequence[Curve], plots: dict[tuple[str, str], str] | None = None) -> str:
    """The "Learning curves" section ("" without curves)."""
    if not curves:
        return ""
    out = ["", "## Learning curves", "",
           "Accuracy against the share of each user's training interactions kept (`data.train_fraction`, "
           "recux.subsample; validation, test and the masked items unchanged). Cells: mean over seeds ± half the "
           "95% t-interval, seeds n, and in brackets the change against the same variant at 100%. Comparisons: "
           "every pair of variants at each fraction, paired per user on the same seeds; p-values Holm-corrected "
           "over the pairs of that fraction (* at p <= 0.05). Loss comparisons: the same pairs on each user's drop "
           "from 100% to the fraction (seeds shared by all four runs); a negative difference means A loses less."]
    for (protocol, key), fam in _families(curves).items():
        out += ["", f"### {fam[0].dataset} — protocol `{protocol}` — curve `{key[:8]}`", "",
                f"Data: {_md_escape(describe_settings(fam[0].settings))}."]
        if plots and (protocol, key) in plots:
            out += ["", f"![learning curves]({plots[(protocol, key)]})"]
        for c in fam:
            out += ["", f"#### {c.metric} ({'higher' if c.higher_is_better else 'lower'} is better)", "",
                    *curve_table(c)]
            sig = significance_table(c)
            out += ["", *sig] if sig else []
            drops = drop_table(c)
            out += ["", f"Loss from 100% ({c.metric} at 100% − at the fraction, per user), A vs B:", "", *drops] \
                if drops else []
    return "\n".join(out) + "\n"


def curve_records(curves: Sequence[Curve]) -> list[dict[str, Any]]:
    """One flat record per (curve, metric, variant, fraction) (CSV)."""
    return [{"dataset": c.dataset, "protocol": c.protocol, "curve": c.key, "metric": c.metric, "variant": name,
             "variant_hash": p.row.variant_hash, "train_fraction": f, "mean": p.mean, "std": _none(p.std),
             "n_seeds": p.n, "ci_low": _none(p.ci_low), "ci_high": _none(p.ci_high),
             "rel_loss_vs_100": _none(p.rel_loss), "seeds": " ".join(str(s) for s in p.row.seeds)}
            for c in curves for name, line in c.lines.items() for f, p in sorted(line.items())]


def comparison_records(curves: Sequence[Curve], kind: str = "comparisons") -> list[dict[str, Any]]:
    return [{"dataset": c.dataset, "protocol": c.protocol, "curve": c.key, "metric": c.metric,
             "train_fraction": k.fraction, "a": k.a, "b": k.b, "n_users": k.test.n if k.test else None,
             "n_seeds": k.n_seeds, "mean_diff": k.test.mean_diff if k.test else None,
             "ci_low": k.test.ci_low if k.test else None, "ci_high": k.test.ci_high if k.test else None,
             "p_permutation_holm": _none(k.p_permutation_holm), "p_ttest_holm": _none(k.p_ttest_holm),
             "note": k.note} for c in curves for k in getattr(c, kind)]


def drop_records(curves: Sequence[Curve]) -> list[dict[str, Any]]:
    return [{**rec, "compares": "drop from 100% (a - b)"} for rec in comparison_records(curves, "drop_comparisons")]


def _none(v: float) -> float | None:
    return None if v is None or math.isnan(v) else v


def plot_family(fam: Sequence[Curve]) -> bytes:
    """One panel per metric: x the fraction (log), y the mean with its CI as error bars, a line per variant."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.2 * len(fam), 4.2))
    for i, c in enumerate(fam):
        ax = fig.add_subplot(1, len(fam), i + 1)
        for name, line in c.lines.items():
            pts = [line[f] for f in sorted(line)]
            err = [[0 if math.isnan(p.ci_low) else p.mean - p.ci_low for p in pts],
                   [0 if math.isnan(p.ci_high) else p.ci_high - p.mean for p in pts]]
            ax.errorbar([p.fraction for p in pts], [p.mean for p in pts], yerr=err, marker="o", capsize=3,
                        label=name)
        ax.set_xscale("log")
        ax.set_xticks(c.fractions, [_pct(f) for f in c.fractions])
        ax.set_xlabel("training fraction (log)")
        ax.set_ylabel(f"{c.metric} {'↑' if c.higher_is_better else '↓'}")
        ax.set_title(f"{c.metric}", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(f"{fam[0].dataset} — {fam[0].protocol} — learning curves (mean ± 95% CI over seeds)",
                 fontsize=10)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120, bbox_inches="tight")
    return buf.getvalue()


def render_curves(stem: str, boards: Sequence[Leaderboard], plots: bool = True,
                  curves: Sequence[Curve] | None = None) -> tuple[str, dict[str, bytes]]:
    """The Markdown section and the files (CSV of points and of comparisons, PNG per family) of a dataset's
    learning curves; ("", {}) when no section has another training fraction."""
    from recux.leaderboard.render import render_csv

    curves = learning_curves(boards) if curves is None else curves
    if not curves:
        return "", {}
    fams = _families(curves)
    names = {k: plot_name(stem, fam[0]) for k, fam in fams.items()} if plots else {}
    files = {f"{stem}_curves.csv": render_csv(curve_records(curves)).encode("utf-8"),
             f"{stem}_curves_significance.csv": render_csv(comparison_records(curves)).encode("utf-8"),
             f"{stem}_curves_loss_significance.csv": render_csv(drop_records(curves)).encode("utf-8")}
    files.update({names[k]: plot_family(fam) for k, fam in fams.items() if k in names})
    return render_markdown(curves, names), files
