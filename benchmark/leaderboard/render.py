"""Rendering: a leaderboard as Markdown (table, legend, provenance) and as flat records / CSV; file-name-safe
names for datasets and metrics."""

from __future__ import annotations

import csv
import hashlib
import io
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from recux.identity import describe_settings
from recux.leaderboard.aggregate import Leaderboard, Row, Stat
from recux.leaderboard.collect import FailedRun, _seed_key
from recux.leaderboard.compression import render_compression
from recux.leaderboard.faithfulness import render_faithfulness
from recux.leaderboard.pairing import CI_LEVEL, SIGNIFICANCE_SEED
from recux.leaderboard.robustness import render_robustness
from recux.leaderboard.ux import UxConfig, has_ux_view, pareto_table, ux_columns
from recux.significance import N_RESAMPLES, PairedTest


def sanitize_filename(name: str) -> str:
    """A file-name-safe version of a dataset (or metric) name: keeps letters, digits and ``._@+=-``."""
    safe = re.sub(r"[^A-Za-z0-9._@+=-]+", "_", name).strip("._")
    return safe or "dataset"


def _file_stems(datasets: Iterable[str]) -> dict[str, str]:
    """Sanitised file stems, with a short hash appended where two names would collide."""
    datasets = sorted(set(datasets))
    stems = {d: sanitize_filename(d) for d in datasets}
    counts: dict[str, int] = {}
    for s in stems.values():
        counts[s] = counts.get(s, 0) + 1
    return {
        d: (f"{s}-{hashlib.sha256(d.encode()).hexdigest()[:6]}" if counts[s] > 1 else s)
        for d, s in stems.items()
    }


def _fmt(v: float, digits: int = 4) -> str:
    return "—" if v is None or math.isnan(v) else f"{v:.{digits}f}"


def _fmt_p(p: float) -> str:
    if p is None or math.isnan(p):
        return "n/a"
    return f"{p:.3g}" if p >= 1e-4 else f"{p:.1e}"


def _is_best(value: float, values: list[float], higher: bool) -> bool:
    finite = [v for v in values if not math.isnan(v)]
    if math.isnan(value) or not finite:
        return False
    return value == (max(finite) if higher else min(finite))


def _md_escape(s: str) -> str:
    return s.replace("|", "\\|").replace("\n", " ")


def _significance_marks(row: Row, alpha: float) -> str:
    """Marks (" †‡§") for the tests (t, Wilcoxon, permutation) that find ``row`` not different from the best."""
    ps = (row.p_ttest_holm, row.p_wilcoxon_holm, row.p_permutation_holm)
    marks = "".join(m for m, p in zip("†‡§", ps, strict=True) if p >= alpha)
    return f" {marks}" if marks else ""


def _fmt_diff(test: PairedTest | None) -> str:
    """Mean per-user difference vs the best row and its bootstrap CI, e.g. "-0.0025 [-0.0061, +0.0010]"."""
    if test is None or math.isnan(test.mean_diff):
        return "n/a"
    return f"{test.mean_diff:+.4f} [{test.ci_low:+.4f}, {test.ci_high:+.4f}]"


def render_table(board: Leaderboard) -> str:
    """The Markdown table (best value of each column in bold, significance markers on the primary metric)."""
    cols = board.columns
    header = (
        ["#", "Variant"]
        + [f"{m} {'↑' if board.higher_is_better(m) else '↓'}" for m in cols]
        + ["n seeds", "fit s", "s/epoch"] + (["trainable params"] if _has_params(board) else [])
        + [f"Δ vs best [{CI_LEVEL:.0%} CI]", f"p vs best ({board.primary}; t / W / perm, Holm)"]
    )
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join(["---:", ":---"] + ["---:"] * (len(header) - 2)) + "|",
    ]
    col_values = {m: [r.stats[m].mean for r in board.rows] for m in cols}
    fit_values = [r.fit_seconds.mean for r in board.rows]
    spe_values = [r.seconds_per_epoch.mean for r in board.rows]
    best = board.best
    for i, row in enumerate(board.rows, 1):
        cells = [str(i), _md_escape(row.display)]
        for m in cols:
            s = row.stats[m]
            mean = _fmt(s.mean)
            if _is_best(s.mean, col_values[m], board.higher_is_better(m)):
                mean = f"**{mean}**"
            cell = _empty(s) if math.isnan(s.mean) else f"{mean} ± {_fmt(s.std)}"
            if m == board.primary and best is not None and row is not best:
                cell += _significance_marks(row, board.alpha)
            cells.append(cell)
        cells.append(str(len(row.runs)))
        for v, values in ((row.fit_seconds.mean, fit_values), (row.seconds_per_epoch.mean, spe_values)):
            txt = _fmt(v, 2)
            cells.append(f"**{txt}**" if _is_best(v, values, higher=False) else txt)
        if _has_params(board):
            n = row.trainable_params.mean
            cells.append("—" if math.isnan(n) else f"{n:,.0f}")
        if best is None:
            cells += ["n/a", "n/a"]
        elif row is best:
            cells += ["—", "best"]
        else:
            cells.append(_fmt_diff(row.test))
            ps = (row.p_ttest_holm, row.p_wilcoxon_holm, row.p_permutation_holm)
            cells.append(" / ".join(_fmt_p(p) for p in ps))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _stat_cell(board: Leaderboard, metric: str, row: Row) -> str:
    """``mean ± std`` of one metric of one row, the mean in bold where it is the column's best."""
    s = row.stats[metric]
    mean = _fmt(s.mean)
    if _is_best(s.mean, [r.stats[metric].mean for r in board.rows], board.higher_is_better(metric)):
        mean = f"**{mean}**"
    return _empty(s) if math.isnan(s.mean) else f"{mean} ± {_fmt(s.std)}"


NOT_SCORED = "not scored"


def _has_params(board: Leaderboard) -> bool:
    """Whether any row reports its trainable parameters (then the table has that column)."""
    return any(r.trainable_params.n for r in board.rows)


def _empty(s: Stat) -> str:
    """The cell of a metric without a value: "not scored" when its runs recorded it as null (the model
    cannot score it), else "—" (the runs do not have it)."""
    return NOT_SCORED if s.not_scored else "—"


def _has_not_scored(board: Leaderboard) -> bool:
    return any(math.isnan(st.mean) and st.not_scored for r in board.rows for st in r.stats.values())


def render_ux_table(board: Leaderboard, config: UxConfig) -> str:
    """The UX view's Markdown table: the section's UX columns per variant (rows in the accuracy table's order),
    best value per column in bold, and the Pareto panels on which each variant is optimal."""
    cols, fronts = ux_columns(board, config), pareto_table(board, config)
    header = ["#", "Variant"] + [f"{m} {'↑' if board.higher_is_better(m) else '↓'}" for m in cols]
    header += ["n seeds"] + ([f"Pareto-optimal ({config.accuracy} vs)"] if fronts else [])
    lines = [
        "| " + " | ".join(_md_escape(h) for h in header) + " |",
        "|" + "|".join(["---:", ":---"] + ["---:"] * (len(cols) + 1) + [":---"] * bool(fronts)) + "|",
    ]
    for i, row in enumerate(board.rows, 1):
        cells = [str(i), _md_escape(row.display)] + [_stat_cell(board, m, row) for m in cols]
        cells.append(str(len(row.runs)))
        if fronts:
            cells.append(", ".join(m for m, flags in fronts.items() if flags[i - 1]) or "—")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def render_ux_section(board: Leaderboard, config: UxConfig, plot: str | None = None) -> list[str]:
    """The "UX view" subsection of a section (table, legend, link to its Pareto plot ``plot``), or [] when the
    section has no UX metric beyond its accuracy table."""
    if not has_ux_view(board, config):
        return []
    acc, axes = config.accuracy, list(pareto_table(board, config))
    out = [
        "",
        "### UX view",
        "",
        f"Accuracy next to the user-experience measures, per variant in the order of the table above: the UX "
        f"metrics ({', '.join(config.metrics)}) that at least one run of this section has.",
        "",
        render_ux_table(board, config),
        "",
        "Values are mean ± sample standard deviation (ddof=1) over seeds; — = a single seed (after a value) or "
        "no value. **Bold** = best value in its column (↑ higher is better, ↓ lower is better)."
        + (
            f" Pareto-optimal vs a metric: no other variant is at least as good on both {acc} and that metric "
            "and strictly better on one (means over seeds)."
            if axes else ""
        ),  # fmt: skip
    ]
    if plot and axes:
        out += ["", f"![{acc} against {', '.join(axes)}: Pareto-optimal variants marked]({plot})"]
    elif not axes:
        panels = ", ".join(" or ".join(choice) for choice in config.pareto) or "none configured"
        out += ["", f"No Pareto plot: this section lacks {acc} or every Pareto metric ({panels})."]
    return out


def render_legend(board: Leaderboard) -> str:
    best = board.best
    n_tests = sum(1 for r in board.rows if r.test is not None)
    parts = [
        "Values are mean ± sample standard deviation (ddof=1) over seeds; — = a single seed. "
        "**Bold** = best value in its column (↑ higher is better, ↓ lower is better; fit s and s/epoch: lower).",
    ]
    if best is not None:
        parts.append(
            f"† = not significantly different from the best row ({_md_escape(best.display)}) on per-user "
            f"{board.primary} at α = {board.alpha:g} by a two-sided paired t-test; ‡ = the same by a Wilcoxon "
            "signed-rank test; § = the same by a Fisher randomization (paired sign-flip permutation) test. "
            "Each user is one pair: the user's mean over the seeds both variants have (a user missing from a seed "
            "in either variant is averaged over the shared seeds where it has a value in both), so a user counts "
            f"once, not once per seed. p-values are Holm–Bonferroni corrected across the {n_tests} comparison(s) "
            f"of this table, per test. Δ = mean over users of (row − best) with a {CI_LEVEL:.0%} percentile "
            f"bootstrap CI (paired: users resampled; not corrected for multiplicity); bootstrap and permutation "
            f"use {N_RESAMPLES} draws, seed {SIGNIFICANCE_SEED}. n/a = no per-user values to pair (see notes)."
        )
    if _has_not_scored(board):
        parts.append(f"{NOT_SCORED} = the runs recorded no value: the model cannot score it (e.g. an ID model "
                     "has no representation of cold items), which is not a score of zero.")
    return "\n\n".join(parts)


def render_failed(
    failed: Sequence[FailedRun], finished: set[tuple[str, str, str]] = frozenset()
) -> list[str]:
    """The "Failed runs" section: one row per run that failed or was terminated (not ranked); its status says
    "rerun ok" where ``finished`` (data hash, variant hash, seed) holds a ranked run of the same variant and seed."""
    if not failed:
        return []
    lines = [
        "",
        "## Failed runs",
        "",
        f"{len(failed)} run(s) did not finish (status failed or terminated). They are not ranked or aggregated "
        'above; their folders hold the error, traceback and config. "rerun ok": a ranked run of the same variant '
        "and seed finished.",
        "",
        "| Variant | Seed | Status | Data | Error (first line) | Folder |",
        "|:---|---:|:---|:---|:---|:---|",
    ]
    key = lambda f: (f.label, _seed_key(f.seed), str(f.folder))  # noqa: E731
    for f in sorted(failed, key=key):
        error = f.error if len(f.error) <= 200 else f.error[:199] + "…"
        rerun = (f.data_hash, f.variant_hash, str(f.seed)) in finished
        cells = [f.label, str(f.seed), f.status + (" (rerun ok)" if rerun else ""), f"`{f.data_hash[:8]}`" if f.data_hash else "—",
                 error or "(no error recorded)", f"`{f.folder}`"]  # fmt: skip
        lines.append("| " + " | ".join(_md_escape(c) for c in cells) + " |")
    return lines


def render_markdown(
    dataset: str,
    boards: Sequence[Leaderboard],
    command: str,
    built: datetime,
    failed: Sequence[FailedRun] = (),
    ux: UxConfig | None = None,
    ux_plots: Mapping[tuple[str, str], str] | None = None,
) -> str:
    """One Markdown document per dataset: a section per protocol with table, legend and provenance (and, with
    ``ux``, its UX view where it has UX metrics; ``ux_plots``: (protocol, data hash) -> Pareto plot file name),
    then the runs that failed (if any)."""
    n_runs = sum(b.n_runs for b in boards)
    out = [
        f"# recux leaderboard: {dataset}",
        "",
        f"Built {built.strftime('%Y-%m-%d %H:%M:%S %Z')} with `{command}`; {n_runs} run(s) in "
        f"{len(boards)} section(s) (one per protocol and data)."
        + (f" {len(failed)} failed run(s) are listed at the end." if failed else ""),
    ]
    for b in boards:
        seeds = sorted({s for r in b.rows for s in r.seeds}, key=_seed_key)
        out += [
            "",
            f"## {b.title}",
            "",
            f"Data `{b.data_hash}`: {_md_escape(describe_settings(b.data_settings))}.",
            "",
            f"Sorted by {b.primary} ({'higher' if b.higher_is_better(b.primary) else 'lower'} is better). "
            f"{b.n_runs} run(s), {len(b.rows)} variant(s), seeds: {', '.join(map(str, seeds))}.",
            "",
            render_table(b),
            "",
            render_legend(b),
        ]
        notes = list(b.notes) + [
            f"{r.display}: significance n/a — {r.significance_note}" for r in b.rows if r.significance_note
        ]
        if notes:
            out += ["", "Notes:", ""] + [f"- {_md_escape(n)}" for n in notes]
        if ux is not None:
            out += render_ux_section(b, ux, (ux_plots or {}).get((b.protocol, b.data_hash)))
        out += render_serving_cost(b)
        out += render_robustness(b)  # runs of task=robustness only
        out += render_faithfulness(b)  # runs with explainer=...: the deletion test per model and explainer
        out += render_compression(b)  # compressed variants against their uncompressed rows (if any)
    finished = {
        (b.data_hash, r.variant_hash, str(run.seed)) for b in boards for r in b.rows for run in r.runs
    }
    out += render_failed(failed, finished)
    return "\n".join(out) + "\n"


def _nan_to_none(v: float | None) -> float | None:
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else v


def board_records(board: Leaderboard) -> list[dict[str, Any]]:
    """One flat record per row (CSV / W&B): metric means, stds and counts, timings, p-values, CI of the difference."""
    best = board.best
    records = []
    for rank, row in enumerate(board.rows, 1):
        rec: dict[str, Any] = {
            "dataset": board.dataset,
            "protocol": board.protocol,
            "data_hash": board.data_hash,
            "rank": rank,
            "variant": row.display,
            "label": row.label,
            "finetune": row.finetune,
            "variant_hash": row.variant_hash,
            "n_seeds": len(row.runs),
            "seeds": ";".join(str(s) for s in row.seeds),
        }
        for m in board.all_metrics:
            s = row.stats[m]
            rec[f"{m}_mean"], rec[f"{m}_std"], rec[f"{m}_n"] = _nan_to_none(s.mean), _nan_to_none(s.std), s.n
        timings = [("fit_seconds", row.fit_seconds), ("seconds_per_epoch", row.seconds_per_epoch)]
        if row.trainable_params.n:
            timings.append(("trainable_params", row.trainable_params))
        for name, s in timings:
            rec[f"{name}_mean"], rec[f"{name}_std"], rec[f"{name}_n"] = (
                _nan_to_none(s.mean),
                _nan_to_none(s.std),
                s.n,
            )
        t = row.test
        rec.update(
            primary_metric=board.primary,
            is_best=row is best,
            n_pairs=t.n if t else None,
            mean_diff_vs_best=_nan_to_none(t.mean_diff) if t else None,
            p_ttest=_nan_to_none(t.p_ttest) if t else None,
            p_wilcoxon=_nan_to_none(t.p_wilcoxon) if t else None,
            p_ttest_holm=_nan_to_none(row.p_ttest_holm),
            p_wilcoxon_holm=_nan_to_none(row.p_wilcoxon_holm),
            significance_note=row.significance_note,
            n_paired_seeds=row.n_paired_seeds if t else None,
            diff_ci_low=_nan_to_none(t.ci_low) if t else None,
            diff_ci_high=_nan_to_none(t.ci_high) if t else None,
            p_permutation=_nan_to_none(t.p_permutation) if t else None,
            p_permutation_holm=_nan_to_none(row.p_permutation_holm),
        )
        records.append(rec)
    return records


def ux_records(board: Leaderboard, config: UxConfig) -> list[dict[str, Any]]:
    """One flat record per row of the UX view (W&B): rank, variant, the UX columns' means and stds, and per
    Pareto panel whether the variant is optimal."""
    cols, fronts = ux_columns(board, config), pareto_table(board, config)
    records = []
    for i, row in enumerate(board.rows):
        rec: dict[str, Any] = {"rank": i + 1, "variant": row.display, "variant_hash": row.variant_hash,
                               "n_seeds": len(row.runs)}  # fmt: skip
        for m in cols:
            rec[f"{m}_mean"], rec[f"{m}_std"] = _nan_to_none(row.stats[m].mean), _nan_to_none(row.stats[m].std)
        rec.update({f"pareto_{config.accuracy}_vs_{m}": flags[i] for m, flags in fronts.items()})
        records.append(rec)
    return records


def render_csv(records: Sequence[dict[str, Any]]) -> str:
    """CSV text over the union of the records' keys (first-seen order); None -> empty cell, floats exact."""
    keys: list[str] = []
    for rec in records:
        keys += [k for k in rec if k not in keys]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(keys)
    for rec in records:
        w.writerow(
            ["" if rec.get(k) is None else (repr(v) if isinstance(v := rec[k], float) else v) for k in keys]
        )
    return buf.getvalue()


# (results.json efficiency key, column header, format) of the serving-cost view
SERVING = (("parameters", "parameters", "{:,.0f}"), ("size_bytes", "size MB", "{:.2f}"),
           ("latency_p50", "latency p50 ms", "{:.3f}"), ("latency_p99", "latency p99 ms", "{:.3f}"),
           ("throughput_users_per_s", "users/s", "{:,.0f}"))


def render_serving_cost(board: Leaderboard) -> list[str]:
    """A "Serving cost" view (runs that recorded ``efficiency``): per variant the mean over its seeds of the
    parameters, size on disk, one user's top-k latency p50/p99 and batch throughput; none when no run has it."""
    rows = []
    for i, row in enumerate(board.rows, 1):
        cells = []
        for key, _, fmt in SERVING:
            vals = [v for v in (run.efficiency(key) for run in row.runs) if v is not None]
            scale = 1 / 2**20 if key == "size_bytes" else 1.0
            cells.append(fmt.format(sum(vals) / len(vals) * scale) if vals else "—")
        if any(c != "—" for c in cells):
            rows.append(f"| {i} | {_md_escape(row.display)} | " + " | ".join(cells) + f" | {len(row.runs)} |")
    if not rows:
        return []
    header = "| # | Variant | " + " | ".join(h for _, h, _ in SERVING) + " | n seeds |"
    return ["", "### Serving cost", "",
            "Mean over seeds of what each run recorded (results.json `efficiency`): parameters, size on disk, one "
            "user's score → mask → top-k latency (p50/p99 after warm-up) and batch ranking throughput, on the "
            "device and load of that run.", "", header, "|---:|:---|" + "---:|" * (len(SERVING) + 1), *rows]
