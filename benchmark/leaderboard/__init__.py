"""Leaderboards: collect results.json files, aggregate over seeds per variant, test each variant against the
best one on paired per-user values, and render Markdown / CSV / plots / a W&B table.

One module per job: ``collect`` (runs from results.json files), ``aggregate`` (sections, rows, stats over
seeds), ``pairing`` (per-user pairing and significance tests), ``render`` (Markdown / CSV), ``files`` (the
files and plots on disk), ``wandb_table`` (the W&B table). Every public name is re-exported here."""

from __future__ import annotations

import logging

from recux.leaderboard.aggregate import (
    DEFAULT_METRICS,
    DEFAULT_PRIMARY,
    LOWER_IS_BETTER,
    Leaderboard,
    Row,
    Stat,
    build_leaderboards,
)
from recux.leaderboard.collect import (
    DEFAULT_ROOTS,
    PER_USER_FILE,
    RESULTS_FILE,
    Run,
    deduplicate,
    find_results,
    load_runs,
)
from recux.leaderboard.files import plot_primary, plot_tradeoff, write_leaderboards
from recux.leaderboard.pairing import CI_LEVEL, SIGNIFICANCE_SEED, add_significance, paired_values
from recux.leaderboard.render import (
    board_records,
    render_csv,
    render_legend,
    render_markdown,
    render_table,
    sanitize_filename,
)
from recux.leaderboard.wandb_table import WANDB_DIR_VARS, log_to_wandb

log = logging.getLogger("recux.leaderboard")

__all__ = [
    "CI_LEVEL",
    "DEFAULT_METRICS",
    "DEFAULT_PRIMARY",
    "DEFAULT_ROOTS",
    "LOWER_IS_BETTER",
    "PER_USER_FILE",
    "RESULTS_FILE",
    "SIGNIFICANCE_SEED",
    "WANDB_DIR_VARS",
    "Leaderboard",
    "Row",
    "Run",
    "Stat",
    "add_significance",
    "board_records",
    "build_leaderboards",
    "deduplicate",
    "find_results",
    "load_runs",
    "log_to_wandb",
    "paired_values",
    "plot_primary",
    "plot_tradeoff",
    "render_csv",
    "render_legend",
    "render_markdown",
    "render_table",
    "sanitize_filename",
    "write_leaderboards",
]
