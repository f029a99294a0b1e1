"""The "Explanation faithfulness" view of a leaderboard section: per variant and explainer (runs with
``explainer=...``, recux.explanations), the deletion test's mean score and rank drops when the explainer's top-m
history items are deleted against m random ones, and the paired comparison over users.

As in the accuracy table's pairing (recux.leaderboard.pairing), each user's values are first averaged over the
variant's seeds (one independent pair per user), then compared with ``significance.paired_compare``: mean
difference, bootstrap CI and paired t / Wilcoxon / permutation p-values. Sections without explanation runs get
no view, so leaderboards of other runs are unchanged."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from recux.leaderboard.aggregate import Leaderboard
from recux.leaderboard.pairing import CI_LEVEL, SIGNIFICANCE_SEED
from recux.significance import paired_compare

MEASURES = ("score_drop", "rank_drop")


def explanation_groups(row: Any) -> dict[tuple[str, int], list[Any]]:
    """The row's runs that recorded explanations, by (explainer, m)."""
    groups: dict[tuple[str, int], list[Any]] = {}
    for run in row.runs:
        ex = run.record.extra.get("explanations")
        if isinstance(ex, dict) and ex.get("explainer"):
            groups.setdefault((str(ex["explainer"]), int(ex["settings"]["m"])), []).append(run)
    return groups


def per_user_means(runs: list[Any]) -> Any:
    """Each user's drops averaged over the runs (seeds) where the user was tested; None if a file is missing."""
    import polars as pl

    frames = []
    for run in runs:
        name = ((run.record.extra.get("explanations") or {}).get("files") or {}).get("faithfulness")
        path = run.folder / str(name or "explanation_faithfulness.parquet")
        if not path.is_file():
            return None
        frames.append(pl.read_parquet(path).drop_nans())
    cols = [f"{m}{s}" for m in MEASURES for s in ("", "_random")]
    return pl.concat(frames).group_by("user_id").agg([pl.col(c).mean() for c in cols]).sort("user_id")


def faithfulness_row(runs: list[Any]) -> dict[str, Any]:
    """Means and the paired comparison of each measure (None where a run's per-user file is missing)."""
    means = per_user_means(runs)
    out: dict[str, Any] = {"n_seeds": len(runs), "users": None if means is None else means.height}
    for m in MEASURES:
        if means is None:
            vals = [r.record.extra["explanations"]["deletion_test"][m] for r in runs]
            out[m] = {"explainer": float(np.mean([v["explainer"] for v in vals])),
                      "random": float(np.mean([v["random"] for v in vals])), "test": None}
            continue
        a, b = means[m].to_numpy(), means[f"{m}_random"].to_numpy()
        out[m] = {"explainer": float(a.mean()), "random": float(b.mean()),
                  "test": paired_compare(a, b, level=CI_LEVEL, seed=SIGNIFICANCE_SEED)}
    return out


def _f(v: float) -> str:
    return "—" if v is None or math.isnan(v) else f"{v:.4g}"


def _p(p: float) -> str:
    return "n/a" if p is None or math.isnan(p) else (f"{p:.3g}" if p >= 1e-4 else f"{p:.1e}")


def _cells(stat: dict[str, Any]) -> list[str]:
    t = stat["test"]
    diff = "n/a" if t is None else f"{t.mean_diff:+.4g} [{t.ci_low:+.4g}, {t.ci_high:+.4g}]"
    ps = "n/a" if t is None else " / ".join(_p(p) for p in (t.p_ttest, t.p_wilcoxon, t.p_permutation))
    return [f"{_f(stat['explainer'])} / {_f(stat['random'])}", diff, ps]


def render_faithfulness(board: Leaderboard) -> list[str]:
    """The Markdown view (none when no run of the section recorded explanations)."""
    lines = []
    for i, row in enumerate(board.rows, 1):
        for (explainer, m), runs in sorted(explanation_groups(row).items()):
            r = faithfulness_row(runs)
            cells = [str(i), row.display.replace("|", "\\|"), f"`{explainer}`", str(m), str(r["n_seeds"]),
                     "—" if r["users"] is None else str(r["users"])]
            for measure in MEASURES:
                cells += _cells(r[measure])
            lines.append("| " + " | ".join(cells) + " |")
    if not lines:
        return []
    header = ("| # | Variant | explainer | m | n seeds | users | score drop: explainer / random | Δ score "
              f"[{CI_LEVEL:.0%} CI] | p (t / W / perm) | rank drop: explainer / random | Δ rank [{CI_LEVEL:.0%} CI] "
              "| p (t / W / perm) |")
    return ["", "### Explanation faithfulness", "",
            "Deletion test (runs with `explainer=...`): for each user's top recommended items, delete the "
            "explainer's top-m history items, or m random ones of the same items (mean over the random draws), "
            "and re-score: how much the item's score falls and how many places it drops. Each user's values are "
            "averaged over seeds; Δ = explainer − random, paired over users (bootstrap CI; t / Wilcoxon / "
            "permutation p). A faithful explainer has Δ > 0.", "",
            header, "|---:|:---|:---|---:|---:|---:|" + "---:|" * 6, *lines]
