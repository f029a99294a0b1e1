"""Aggregation: group runs by section (dataset, protocol, data hash) and variant, aggregate each metric over seeds
(``Stat``, ``Row``, ``Leaderboard``) and sort the rows best first (``build_leaderboards``)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from recux.leaderboard.collect import Run, _seed_key, deduplicate
from recux.leaderboard.pairing import add_significance
from recux.significance import PairedTest

DEFAULT_PRIMARY = "ndcg@10"  # when the runs do not record their optimized_metric
DEFAULT_METRICS = (
    "ndcg@10", "recall@10", "precision@10", "mrr@10", "map@10",
    "hit@10", "coverage@10", "arp@10", "gini@10", "novelty@10",
)  # fmt: skip
# Used only when no results.json states a metric's direction: base names (before "@") where lower is better,
# and the user-group fairness keys "fairness/<group>/gap/<metric>" (lower) and ".../ratio/..." (higher).
LOWER_IS_BETTER = frozenset({"arp", "gini", "miscalibration", "pop_lift"})


@dataclass(frozen=True)
class Stat:
    """Mean, sample standard deviation (ddof=1; NaN when n < 2) and count of one quantity over seeds."""

    mean: float
    std: float
    n: int
    not_scored: int = 0  # runs that recorded the metric as null (the model cannot score it, e.g. cold items)

    @staticmethod
    def of(values: Iterable[float | None], not_scored: int = 0) -> Stat:
        v = np.array([x for x in values if x is not None and math.isfinite(x)], dtype=np.float64)
        if v.size == 0:
            return Stat(math.nan, math.nan, 0, not_scored)
        return Stat(float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else math.nan, int(v.size), not_scored)


@dataclass
class Row:
    """One variant of a leaderboard: its runs (one per seed) and aggregates."""

    variant_hash: str
    label: str
    finetune: str
    display: str
    runs: list[Run]
    stats: dict[str, Stat]
    fit_seconds: Stat
    seconds_per_epoch: Stat
    test: PairedTest | None = None
    p_ttest_holm: float = math.nan
    p_wilcoxon_holm: float = math.nan
    significance_note: str = ""
    p_permutation_holm: float = math.nan
    n_paired_seeds: int = 0  # seeds this row shares with the best row (the per-user means average over them)
    trainable_params: Stat = field(default_factory=lambda: Stat(math.nan, math.nan, 0))  # text models report it

    @property
    def seeds(self) -> list[Any]:
        return [r.seed for r in self.runs]


@dataclass
class Leaderboard:
    """The rows of one section (dataset, protocol, data hash: runs on the same data), sorted best first by
    ``primary``."""

    dataset: str
    protocol: str
    primary: str
    columns: list[str]
    all_metrics: list[str]
    directions: dict[str, bool]
    rows: list[Row]
    notes: list[str] = field(default_factory=list)
    alpha: float = 0.05
    data_hash: str = ""
    data_settings: dict[str, Any] = field(default_factory=dict)  # what defines the data (recux.identity)

    @property
    def title(self) -> str:
        """``<dataset> — protocol `<protocol>` — data `<short hash>```: unique per section."""
        return f"{self.dataset} — protocol `{self.protocol}` — data `{self.data_hash[:8]}`"

    @property
    def n_runs(self) -> int:
        return sum(len(r.runs) for r in self.rows)

    @property
    def best(self) -> Row | None:
        if self.rows and not math.isnan(self.rows[0].stats.get(self.primary, Stat.of([])).mean):
            return self.rows[0]
        return None

    def higher_is_better(self, metric: str) -> bool:
        return self.directions.get(metric, default_higher_is_better(metric))


def default_higher_is_better(metric: str) -> bool:
    """A metric's direction when no run records it (see LOWER_IS_BETTER)."""
    parts = metric.split("/")
    if len(parts) >= 4 and parts[0] == "fairness" and parts[2] in ("gap", "ratio"):
        return parts[2] == "ratio"
    return metric.split("@")[0].lower() not in LOWER_IS_BETTER


def _directions(runs: Sequence[Run]) -> dict[str, bool]:
    out: dict[str, bool] = {}
    for r in runs:
        for k, v in (r.data.get("directions") or {}).items():
            if isinstance(v, bool):
                out.setdefault(k, v)
    return out


def _display_names(variants: dict[str, list[Run]]) -> dict[str, str]:
    names = {}
    for h, runs in variants.items():
        newest = max(runs, key=lambda r: r.created)
        named = newest.finetune_is_baseline or f"+{newest.finetune}" in newest.label  # labels name it since schema 2
        names[h] = newest.label if named else f"{newest.label} [finetune={newest.finetune}]"
    counts: dict[str, int] = {}
    for n in names.values():
        counts[n] = counts.get(n, 0) + 1
    return {h: (f"{n} #{h[:6]}" if counts[n] > 1 else n) for h, n in names.items()}


def _section_primary(group: Sequence[Run]) -> str:
    """The optimized_metric most runs of a section record (ties: the first seen), else DEFAULT_PRIMARY."""
    counts: dict[str, int] = {}
    for r in group:
        counts[r.record.optimized_metric] = counts.get(r.record.optimized_metric, 0) + 1
    return max(counts, key=lambda m: counts[m]) if counts else DEFAULT_PRIMARY


def _columns(group: Sequence[Run], metrics: Sequence[str] | None, primary: str,
             notes: list[str]) -> tuple[list[str], list[str], str]:
    """The table's columns, every metric present (columns first) and the primary metric actually used;
    appends a note for requested metrics that no run has."""
    present: list[str] = []
    for r in group:
        present += [m for m in r.metrics if m not in present]
    wanted = list(metrics) if metrics else list(DEFAULT_METRICS) + _group_columns(present, primary)
    columns = [m for m in wanted if m in present]
    if metrics and len(columns) < len(wanted):
        missing = [m for m in wanted if m not in present]
        notes.append(f"metrics not found in any run of this table: {', '.join(missing)}")
    if not columns:
        columns = sorted(present)
    prim = primary
    if prim not in present:
        fallback = f"sorted by {columns[0]} instead" if columns else "rows are unsorted"
        notes.append(f"primary metric {primary} is absent from these runs; {fallback}")
        prim = columns[0] if columns else prim
    if prim in present and prim not in columns:
        columns.insert(0, prim)
    return columns, columns + sorted(m for m in present if m not in columns), prim


def _group_columns(present: Sequence[str], primary: str) -> list[str]:
    """The primary metric of each item group a task reports (cold_start: ``cold/``, ``cold_in_catalogue/``,
    ``warm/``), shown by default next to the overall metrics; user-group fairness values and the robustness
    task's per-variant values (its own view, recux.leaderboard.robustness) are not."""
    return [m for m in present if m.endswith(f"/{primary}") and not m.startswith(("fairness/", "robustness/"))]


def _variant_rows(group: Sequence[Run], all_metrics: Sequence[str]) -> list[Row]:
    """One row per variant hash, its runs in seed order, aggregated over seeds."""
    variants: dict[str, list[Run]] = {}
    for r in group:
        variants.setdefault(r.variant_hash, []).append(r)
    names = _display_names(variants)
    rows = []
    for h, vruns in variants.items():
        vruns = sorted(vruns, key=lambda r: _seed_key(r.seed))
        newest = max(vruns, key=lambda r: r.created)
        rows.append(
            Row(
                variant_hash=h,
                label=newest.label,
                finetune=newest.finetune,
                display=names[h],
                runs=vruns,
                stats={m: Stat.of((r.metrics.get(m) for r in vruns),
                                  not_scored=sum(m in r.not_scored for r in vruns))
                       for m in all_metrics},
                fit_seconds=Stat.of(r.timing("fit_seconds") for r in vruns),
                seconds_per_epoch=Stat.of(r.timing("seconds_per_epoch") for r in vruns),
                trainable_params=Stat.of(r.trainable_params for r in vruns),
            )
        )
    return rows


def _sort_rows(board: Leaderboard) -> None:
    """Best first by the primary metric (in its direction); rows without it last; ties by display name."""
    prim = board.primary
    sign = 1.0 if board.higher_is_better(prim) else -1.0

    def key(row: Row) -> tuple:
        m = row.stats[prim].mean if prim in row.stats else math.nan
        return (math.isnan(m), -sign * m if not math.isnan(m) else 0.0, row.display)

    board.rows.sort(key=key)


def build_leaderboards(
    runs: Sequence[Run],
    primary: str | None = None,
    metrics: Sequence[str] | None = None,
    alpha: float = 0.05,
    significance: bool = True,
) -> list[Leaderboard]:
    """Deduplicate, group by section (dataset, protocol, data hash) and variant, aggregate over seeds, sort by
    ``primary`` (default: the runs' optimized_metric) and (optionally) attach paired significance tests against
    the best row. Sorted by dataset, protocol, data hash."""
    kept, dup_notes = deduplicate(runs)
    groups: dict[tuple[str, str, str], list[Run]] = {}
    for r in kept:
        groups.setdefault(r.section, []).append(r)

    boards = []
    for (dataset, protocol, dhash), group in sorted(groups.items()):
        notes = list(dup_notes.get((dataset, protocol, dhash), []))
        columns, all_metrics, prim = _columns(group, metrics, primary or _section_primary(group), notes)
        newest = max(group, key=lambda r: r.created)
        board = Leaderboard(
            dataset, protocol, prim, columns, all_metrics, _directions(group), _variant_rows(group, all_metrics),
            notes, alpha, data_hash=dhash, data_settings=newest.record.data_settings,
        )
        _sort_rows(board)
        if significance:
            add_significance(board)
        boards.append(board)
    return boards
