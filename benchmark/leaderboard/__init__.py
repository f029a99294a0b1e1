"""Leaderboards: collect results.json files, aggregate over seeds per variant, test each variant against the
best one on paired per-user values, and render Markdown / CSV / plots / a W&B table.

One module per job: ``collect`` (runs from results.json files), ``aggregate`` (sections, rows, stats over
seeds), ``pairing`` (per-user pairing and significance tests), ``render`` (Markdown / CSV), ``files`` (the
files and plots on disk), ``manifest`` (the runs each leaderboard was built from; the rebuild check),
``wandb_table`` (the W&B table), ``ux`` (the UX view: its configured columns and Pareto panels) and ``pareto``
(Pareto optimality). Every public name is re-exported here."""

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
    FAILED_STATUSES,
    PER_USER_FILE,
    RESULTS_FILE,
    FailedRun,
    Run,
    deduplicate,
    find_results,
    load_results,
    load_runs,
)
from recux.leaderboard.files import (
    DatasetFiles,
    plot_primary,
    plot_tradeoff,
    plot_ux_pareto,
    render_files,
    write_files,
    write_leaderboards,
)
from recux.leaderboard.manifest import MANIFEST_SUFFIX, ManifestError, check_rebuild, read_manifest
from recux.leaderboard.pairing import CI_LEVEL, SIGNIFICANCE_SEED, add_significance, paired_values
from recux.leaderboard.pareto import pareto_optimal
from recux.leaderboard.render import (
    board_records,
    render_csv,
    render_failed,
    render_legend,
    render_markdown,
    render_table,
    render_ux_section,
    sanitize_filename,
    ux_records,
)
from recux.leaderboard.ux import DEFAULT_UX_METRICS, DEFAULT_UX_PARETO, UxConfig, has_ux_view, ux_columns
from recux.leaderboard.wandb_table import WANDB_DIR_VARS, log_to_wandb

log = logging.getLogger("recux.leaderboard")

__all__ = [
    "CI_LEVEL",
    "DEFAULT_METRICS",
    "DEFAULT_PRIMARY",
    "DEFAULT_ROOTS",
    "DEFAULT_UX_METRICS",
    "DEFAULT_UX_PARETO",
    "FAILED_STATUSES",
    "LOWER_IS_BETTER",
    "MANIFEST_SUFFIX",
    "PER_USER_FILE",
    "RESULTS_FILE",
    "SIGNIFICANCE_SEED",
    "WANDB_DIR_VARS",
    "DatasetFiles",
    "FailedRun",
    "Leaderboard",
    "ManifestError",
    "Row",
    "Run",
    "Stat",
    "UxConfig",
    "add_significance",
    "board_records",
    "build_leaderboards",
    "check_rebuild",
    "deduplicate",
    "find_results",
    "has_ux_view",
    "load_results",
    "load_runs",
    "log_to_wandb",
    "paired_values",
    "pareto_optimal",
    "plot_primary",
    "plot_tradeoff",
    "plot_ux_pareto",
    "read_manifest",
    "render_csv",
    "render_failed",
    "render_files",
    "render_legend",
    "render_markdown",
    "render_table",
    "render_ux_section",
    "sanitize_filename",
    "ux_columns",
    "ux_records",
    "write_files",
    "write_leaderboards",
]
