"""The robustness view of a leaderboard section (runs of task=robustness, recux.plugins.tasks.robustness): per
variant (model) and seed-averaged, the primary metric's degradation under each training-data variant (noise,
sparsity, attacks), the attacks' target-item exposure, and the perturbation stability of the lists. Sections
without robustness metrics get no view, so other leaderboards are unchanged."""

from __future__ import annotations

import math
import re

from recux.leaderboard.aggregate import Leaderboard, Stat

_VARIANT = re.compile(r"^robustness/(?P<v>[^/]+)/delta/(?P<m>.+)$")


def variants(board: Leaderboard, metric: str) -> list[str]:
    """The section's injected variants that have a degradation of ``metric``, in the task's configured order
    (its ``variants`` setting, part of the section's data settings), others after them by name."""
    found = {hit["v"] for hit in map(_VARIANT.match, board.all_metrics) if hit and hit["m"] == metric}
    configured = list(((board.data_settings or {}).get("task") or {}).get("variants") or {})
    return [v for v in configured if v in found] + sorted(found - set(configured))


def _pm(s: Stat | None, digits: int = 4, sign: bool = False) -> str:
    if s is None or math.isnan(s.mean):
        return "—"
    mean = f"{s.mean:+.{digits}f}" if sign else f"{s.mean:.{digits}f}"
    return mean if math.isnan(s.std) else f"{mean} ± {s.std:.{digits}f}"


def _cell(board: Leaderboard, row, v: str, metric: str) -> str:
    delta = row.stats.get(f"robustness/{v}/delta/{metric}")
    rel = row.stats.get(f"robustness/{v}/relative/{metric}")
    text = _pm(delta, sign=True)
    if rel is not None and not math.isnan(rel.mean) and text != "—":
        text += f" ({100 * rel.mean:+.1f}%)"
    return text


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|:---|" + "---:|" * (len(header) - 1),
            *["| " + " | ".join(r) + " |" for r in rows]]


def degradation_table(board: Leaderboard, metric: str) -> list[str]:
    vs = variants(board, metric)
    rows = [[row.display, _pm(row.stats.get(metric)), *[_cell(board, row, v, metric) for v in vs],
             str(len(row.runs))] for row in board.rows]
    return _table(["Variant", f"clean {metric}", *vs, "n seeds"], rows)


def attack_table(board: Leaderboard, k: str) -> list[str]:
    attacks = [v for v in variants(board, board.primary) if f"robustness/{v}/target_hit_lift@{k}" in board.all_metrics]
    if not attacks:
        return []
    rows = [[row.display, *[f"{_pm(row.stats.get(f'robustness/{v}/clean_target_hit@{k}'))} → "
                            f"{_pm(row.stats.get(f'robustness/{v}/target_hit@{k}'))} "
                            f"(lift {_pm(row.stats.get(f'robustness/{v}/target_hit_lift@{k}'), sign=True)})"
                            for v in attacks]] for row in board.rows]
    return ["", f"Attacks: hit ratio of the target items in the real users' top {k} (mean over targets of the share "
            "of test users whose list holds it), clean → attacked (lift = attacked − clean; lower is better for "
            "the defender).", "", *_table(["Variant", *attacks], rows)]


def stability_table(board: Leaderboard, k: str) -> list[str]:
    cols = [c for c in (f"stability/remove/jaccard@{k}", f"stability/remove/rbo@{k}", f"stability/add/jaccard@{k}",
                        f"stability/add/rbo@{k}") if c in board.all_metrics]
    if not cols:
        return []
    rows = [[row.display, *[_pm(row.stats.get(c)) for c in cols]] for row in board.rows]
    return ["", f"Perturbation stability: overlap of each test user's top {k} before and after one random history "
            "item is removed / added (Jaccard; rank-biased overlap, extrapolated, Webber et al. 2010); 1 = "
            "unchanged. — : the model cannot score an edited history without refitting (e.g. BPR).", "",
            *_table(["Variant", *[c.removeprefix("stability/") for c in cols]], rows)]


def render_robustness(board: Leaderboard) -> list[str]:
    """The "Robustness" view of a section with robustness runs (none otherwise)."""
    metric = board.primary
    if not variants(board, metric):
        return []
    k = metric.rpartition("@")[2]
    return ["", "### Robustness", "",
            f"Change of {metric} when the model is trained on perturbed training data (validation and test "
            "unchanged; same seed), against the clean run: mean ± std over seeds of (variant − clean), and the "
            "mean relative change. Variants as configured in the task (results.json `robustness`): noise_r = r × "
            "|train| random unobserved pairs added; sparsity_r = r × |train| training rows removed; "
            "<attack>_s = s % fake profiles.", "", *degradation_table(board, metric), *attack_table(board, k),
            *stability_table(board, k)]
