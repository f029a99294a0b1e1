"""The UX view of a leaderboard section: accuracy next to the user-experience measures (diversity, calibration,
novelty, long-tail share, personalisation, user-group gaps), and the Pareto fronts of accuracy against
diversity, calibration and long-tail share.

What the view shows is configuration (``UxConfig``: the default lists below, or the CLI's ``--ux-metrics`` and
``--ux-pareto``), never hard-wired: a column appears where at least one run of the section has the metric, and a
section gets a UX view only where it has a UX metric the accuracy table does not already show (so leaderboards
built from runs without the UX metric suite are unchanged)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from recux.leaderboard.aggregate import Leaderboard
from recux.leaderboard.pareto import pareto_optimal

# The first metric is the accuracy the others are set against (the Pareto plots' y-axis).
DEFAULT_UX_METRICS = (
    "ndcg@10", "ild@10", "semantic_ild@10", "miscalibration@10", "novelty@10", "aplt@10",
    "personalisation@10", "fairness/activity/gap/ndcg@10", "fairness/gender/gap/ndcg@10",
)  # fmt: skip
# One Pareto plot panel per entry: accuracy against the first of its alternatives the section has.
DEFAULT_UX_PARETO = (("ild@10", "semantic_ild@10"), ("miscalibration@10",), ("aplt@10",))


@dataclass(frozen=True)
class UxConfig:
    """The UX view's columns (``metrics``, the first one the accuracy anchor) and Pareto panels (``pareto``:
    per panel, alternative x-axis metrics, the first present used)."""

    metrics: tuple[str, ...] = DEFAULT_UX_METRICS
    pareto: tuple[tuple[str, ...], ...] = DEFAULT_UX_PARETO

    def __post_init__(self) -> None:
        if not self.metrics or not all(self.metrics):
            raise ValueError(f"--ux-metrics needs at least one metric name, got {list(self.metrics)}")
        if not all(choice and all(choice) for choice in self.pareto):
            raise ValueError(f"--ux-pareto has an empty panel: {[list(c) for c in self.pareto]}")

    @property
    def accuracy(self) -> str:
        return self.metrics[0]

    @classmethod
    def from_options(cls, metrics: str | None = None, pareto: str | None = None) -> UxConfig:
        """From the CLI's texts: ``--ux-metrics a,b,c`` and ``--ux-pareto "x1|x2,y,z"`` (panels separated by
        commas, alternatives within a panel by "|"); None keeps the default."""
        ms = DEFAULT_UX_METRICS if metrics is None else tuple(m.strip() for m in metrics.split(",") if m.strip())
        if pareto is None:
            ps = DEFAULT_UX_PARETO
        else:
            ps = tuple(tuple(a.strip() for a in panel.split("|")) for panel in pareto.split(",") if panel.strip())
        return cls(ms, ps)


def ux_columns(board: Leaderboard, config: UxConfig) -> list[str]:
    """The configured UX metrics that at least one run of the section has, in the configured order."""
    return [m for m in dict.fromkeys(config.metrics) if m in board.all_metrics]


def has_ux_view(board: Leaderboard, config: UxConfig) -> bool:
    """Whether the section gets a UX view: it has a UX metric that its accuracy table does not show."""
    return bool(board.rows) and any(m not in board.columns for m in ux_columns(board, config))


def pareto_axes(board: Leaderboard, config: UxConfig) -> list[str]:
    """The x-axis metric of each Pareto panel the section can draw (accuracy and the metric present)."""
    present = set(board.all_metrics)
    if config.accuracy not in present:
        return []
    axes = [next((m for m in choice if m in present and m != config.accuracy), None) for choice in config.pareto]
    return list(dict.fromkeys(m for m in axes if m is not None))


def pareto_rows(board: Leaderboard, accuracy: str, metric: str) -> list[bool]:
    """Per row of the board: whether the variant is Pareto-optimal on (``accuracy``, ``metric``) means over
    seeds, each in its direction; a variant without both means is not."""
    means = np.array([[r.stats[accuracy].mean, r.stats[metric].mean] for r in board.rows], dtype=np.float64)
    ok = np.isfinite(means).all(axis=1)
    flags = np.zeros(len(board.rows), dtype=bool)
    if ok.any():
        higher = (board.higher_is_better(accuracy), board.higher_is_better(metric))
        flags[ok] = pareto_optimal(means[ok], higher)
    return flags.tolist()


def pareto_table(board: Leaderboard, config: UxConfig) -> dict[str, list[bool]]:
    """Pareto flags of every drawable panel: x-axis metric -> one flag per row."""
    return {m: pareto_rows(board, config.accuracy, m) for m in pareto_axes(board, config)}


def finite_pairs(board: Leaderboard, metrics: Sequence[str]) -> list[int]:
    """Indices of the rows with a finite mean for every metric given."""
    return [i for i, r in enumerate(board.rows) if all(not math.isnan(r.stats[m].mean) for m in metrics)]
