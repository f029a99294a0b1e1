"""Leaderboards: collect results.json files, aggregate over seeds per variant, test each variant against the
best one on paired per-user values, and render Markdown / CSV / plots / a W&B table."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import math
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from recux.identity import describe_settings
from recux.record import RecordError, ResultsRecord
from recux.results import atomic_write
from recux.significance import N_RESAMPLES, PairedTest, holm, paired_compare

log = logging.getLogger("recux.leaderboard")

DEFAULT_ROOTS = ("outputs", "multirun")
DEFAULT_PRIMARY = "ndcg@10"  # when the runs do not record their optimized_metric
DEFAULT_METRICS = (
    "ndcg@10", "recall@10", "precision@10", "mrr@10", "map@10",
    "hit@10", "coverage@10", "arp@10", "gini@10", "novelty@10",
)  # fmt: skip
# Used only when no results.json states a metric's direction: base names (before "@") where lower is better.
LOWER_IS_BETTER = frozenset({"arp", "gini"})
RESULTS_FILE = "results.json"
PER_USER_FILE = "per_user_metrics.parquet"
CI_LEVEL = 0.95  # confidence level of the bootstrap CI of the mean difference vs the best row
SIGNIFICANCE_SEED = 0  # seed of the bootstrap and randomization draws (tables are repeatable)


# ----------------------------------------------------------------------------------------------------------
# Collection


@dataclass
class Run:
    """One finished run: its results.json path, parsed content and typed record (schema 1 or 2)."""

    path: Path
    data: dict[str, Any]
    record: ResultsRecord = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.record = ResultsRecord.from_dict(self.data)

    @property
    def folder(self) -> Path:
        return self.path.parent

    @property
    def dataset(self) -> str:
        return self.record.dataset_name

    @property
    def protocol(self) -> str:
        return str(self.record.protocol or "unknown")

    @property
    def data_hash(self) -> str:
        """Hash of the settings that define the run's data and protocol (recux.identity.data_hash)."""
        return self.record.data_hash

    @property
    def section(self) -> tuple[str, str, str]:
        """The leaderboard section: runs are compared (and their users paired) only within one."""
        return (self.dataset, self.protocol, self.data_hash)

    @property
    def variant_hash(self) -> str:
        return str(self.record.variant_hash)

    @property
    def seed(self) -> Any:
        return self.record.seed

    @property
    def label(self) -> str:
        return str(self.record.label or self.record.model.get("name") or self.variant_hash)

    @property
    def finetune(self) -> str:
        return str(self.record.finetune.get("name") or "")

    @property
    def finetune_is_baseline(self) -> bool:
        return bool(self.record.finetune.get("baseline", not self.finetune))

    @property
    def created(self) -> datetime:
        """Creation time (UTC); the file's modification time when ``created`` is missing or unparseable."""
        raw = self.record.created
        if isinstance(raw, str) and raw:
            try:
                t = datetime.fromisoformat(raw.replace("Z", "+00:00"))
                return t if t.tzinfo else t.replace(tzinfo=timezone.utc)
            except ValueError:
                pass
        return datetime.fromtimestamp(self.path.stat().st_mtime, tz=timezone.utc)

    @property
    def metrics(self) -> dict[str, float]:
        """Numeric test metrics only."""
        m = self.record.metrics or {}
        return {k: float(v) for k, v in m.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}

    def timing(self, key: str) -> float | None:
        v = (self.record.timing or {}).get(key)
        return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None

    @property
    def per_user_path(self) -> Path:
        name = (self.record.files or {}).get("per_user_metrics") or PER_USER_FILE
        return self.folder / name


def find_results(roots: Iterable[str | os.PathLike]) -> list[Path]:
    """Every results.json under the roots (recursive, symlinked folders not followed), sorted."""
    found: set[Path] = set()
    for root in roots:
        root = Path(root)
        if root.is_file() and root.name == RESULTS_FILE:
            found.add(root)
            continue
        for dirpath, _dirnames, filenames in os.walk(root):
            if RESULTS_FILE in filenames:
                found.add(Path(dirpath) / RESULTS_FILE)
    return sorted(found)


def load_runs(paths: Iterable[Path]) -> tuple[list[Run], list[str]]:
    """Parse results files; returns the usable runs and one warning per skipped file (unreadable JSON,
    status other than "ok", or missing required fields)."""
    runs, skipped = [], []
    for path in paths:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            skipped.append(f"{path}: unreadable ({type(e).__name__}: {e}); skipped")
            continue
        if not isinstance(data, dict):
            skipped.append(f"{path}: not a JSON object; skipped")
            continue
        status = data.get("status")
        if status != "ok":
            skipped.append(f"{path}: status {status!r} (not 'ok'); skipped")
            continue
        try:
            runs.append(Run(Path(path), data))
        except RecordError as e:
            skipped.append(f"{path}: {e}; skipped")
    return runs, skipped


def _seed_key(seed: Any) -> tuple:
    return (seed is None, str(type(seed)), seed if isinstance(seed, (int, float)) else str(seed))


def deduplicate(runs: Sequence[Run]) -> tuple[list[Run], dict[tuple[str, str, str], list[str]]]:
    """Keep the newest run (by ``created``) of each (section, variant, seed); return the kept runs and, per
    section (dataset, protocol, data hash), one note per duplicated key naming what was kept and ignored."""
    by_key: dict[tuple, list[Run]] = {}
    for r in runs:
        by_key.setdefault((r.section, r.variant_hash, _seed_key(r.seed)), []).append(r)
    kept: list[Run] = []
    notes: dict[tuple[str, str, str], list[str]] = {}
    for key, group in by_key.items():
        group = sorted(group, key=lambda r: (r.created, str(r.path)), reverse=True)
        kept.append(group[0])
        if len(group) > 1:
            ignored = ", ".join(str(r.path) for r in group[1:])
            notes.setdefault(key[0], []).append(
                f"{len(group)} runs of variant {group[0].label} ({key[1]}) seed {group[0].seed}: kept the newest, "
                f"{group[0].path} (created {group[0].created.isoformat()}); ignored {ignored}"
            )
    return kept, notes


# ----------------------------------------------------------------------------------------------------------
# Aggregation


@dataclass(frozen=True)
class Stat:
    """Mean, sample standard deviation (ddof=1; NaN when n < 2) and count of one quantity over seeds."""

    mean: float
    std: float
    n: int

    @staticmethod
    def of(values: Iterable[float | None]) -> Stat:
        v = np.array([x for x in values if x is not None and math.isfinite(x)], dtype=np.float64)
        if v.size == 0:
            return Stat(math.nan, math.nan, 0)
        return Stat(float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else math.nan, int(v.size))


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
        return self.directions.get(metric, metric.split("@")[0].lower() not in LOWER_IS_BETTER)


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
        names[h] = (
            newest.label if newest.finetune_is_baseline else f"{newest.label} [finetune={newest.finetune}]"
        )
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
    wanted = list(metrics) if metrics else list(DEFAULT_METRICS)
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
                stats={m: Stat.of(r.metrics.get(m) for r in vruns) for m in all_metrics},
                fit_seconds=Stat.of(r.timing("fit_seconds") for r in vruns),
                seconds_per_epoch=Stat.of(r.timing("seconds_per_epoch") for r in vruns),
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


# ----------------------------------------------------------------------------------------------------------
# Significance


class _PerUserCache:
    """Reads (user_id, metric) from per-user parquet files once each."""

    def __init__(self) -> None:
        self._cache: dict[tuple[Path, str], Any] = {}

    def get(self, run: Run, metric: str):
        """The polars frame (user_id as string, value) or a string saying why it is unavailable."""
        import polars as pl

        path = run.per_user_path
        key = (path, metric)
        if key not in self._cache:
            if not path.is_file():
                self._cache[key] = f"missing {path}"
            else:
                try:
                    names = pl.read_parquet_schema(path)
                    if "user_id" not in names or metric not in names:
                        self._cache[key] = f"no 'user_id'/'{metric}' column in {path}"
                    else:
                        df = pl.read_parquet(path, columns=["user_id", metric])
                        self._cache[key] = df.select(
                            pl.col("user_id").cast(pl.Utf8), pl.col(metric).cast(pl.Float64).alias("v")
                        )
                except Exception as e:  # noqa: BLE001 - a corrupt file must not stop the leaderboard
                    self._cache[key] = f"unreadable {path} ({type(e).__name__}: {e})"
        return self._cache[key]


def paired_values(row: Row, best: Row, metric: str, cache: _PerUserCache | None = None):
    """One pair per user: ``(x, y, n_seeds)`` with x[i], y[i] the user's mean value in ``row`` and ``best``
    over the ``n_seeds`` seeds both variants have, users sorted by id; or a string saying why they cannot be
    paired (a missing file makes the comparison n/a).

    Why per-user means: a user appears once per seed, and those values are not independent (same user, same
    tastes), so pooling (seed, user) pairs would count one user several times and make p-values too small.
    Averaging first gives one independent pair per user (the unit the tests and the bootstrap resample). A user
    missing from a seed in either variant (or with a NaN value there) is averaged over the shared seeds where
    it has a value in both, so both sides of a pair always average over the same seeds; a user with no such
    seed is left out."""
    import polars as pl

    cache = cache or _PerUserCache()
    best_by_seed = {_seed_key(r.seed): r for r in best.runs}
    common = [r for r in row.runs if _seed_key(r.seed) in best_by_seed]
    if not common:
        return "no seed in common with the best row"
    joined = []
    for r in common:
        a, b = cache.get(r, metric), cache.get(best_by_seed[_seed_key(r.seed)], metric)
        for side in (a, b):
            if isinstance(side, str):
                return side
        joined.append(a.join(b, on="user_id", how="inner", suffix="_best"))
    valid = pl.col("v").is_not_null() & pl.col("v_best").is_not_null()
    valid = valid & pl.col("v").is_not_nan() & pl.col("v_best").is_not_nan()
    per_user = (
        pl.concat(joined)
        .filter(valid)
        .group_by("user_id")
        .agg(pl.col("v").mean(), pl.col("v_best").mean())
        .sort("user_id")
    )
    if per_user.height == 0:
        return "no test user in common with the best row"
    return per_user["v"].to_numpy(), per_user["v_best"].to_numpy(), len(common)


def add_significance(
    board: Leaderboard, n_resamples: int = N_RESAMPLES, seed: int = SIGNIFICANCE_SEED
) -> None:
    """Test every row against the best row on per-user values of the primary metric (paired t-test, Wilcoxon
    and Fisher randomization, with a bootstrap CI of the mean difference; see ``paired_values`` for the
    pairing), then Holm–Bonferroni-correct each test's p-values across the rows of the board."""
    best = board.best
    for row in board.rows:
        row.test, row.p_ttest_holm, row.p_wilcoxon_holm, row.significance_note = None, math.nan, math.nan, ""
        row.p_permutation_holm, row.n_paired_seeds = math.nan, 0
    if best is None:
        for row in board.rows:
            row.significance_note = f"no best row ({board.primary} missing)"
        return
    cache = _PerUserCache()
    others = [r for r in board.rows if r is not best]
    for row in others:
        pairs = paired_values(row, best, board.primary, cache)
        if isinstance(pairs, str):
            row.significance_note = pairs
        else:
            x, y, row.n_paired_seeds = pairs
            row.test = paired_compare(x, y, n_resamples=n_resamples, level=CI_LEVEL, seed=seed)
    p_t = holm([r.test.p_ttest if r.test else math.nan for r in others])
    p_w = holm([r.test.p_wilcoxon if r.test else math.nan for r in others])
    p_p = holm([r.test.p_permutation if r.test else math.nan for r in others])
    for row, pt, pw, pp in zip(others, p_t, p_w, p_p, strict=True):
        row.p_ttest_holm, row.p_wilcoxon_holm, row.p_permutation_holm = float(pt), float(pw), float(pp)


# ----------------------------------------------------------------------------------------------------------
# Rendering


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
        + ["n seeds", "fit s", "s/epoch", f"Δ vs best [{CI_LEVEL:.0%} CI]"]
        + [f"p vs best ({board.primary}; t / W / perm, Holm)"]
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
            cell = mean if math.isnan(s.mean) else f"{mean} ± {_fmt(s.std)}"
            if m == board.primary and best is not None and row is not best:
                cell += _significance_marks(row, board.alpha)
            cells.append(cell)
        cells.append(str(len(row.runs)))
        for v, values in ((row.fit_seconds.mean, fit_values), (row.seconds_per_epoch.mean, spe_values)):
            txt = _fmt(v, 2)
            cells.append(f"**{txt}**" if _is_best(v, values, higher=False) else txt)
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
    return "\n\n".join(parts)


def render_markdown(dataset: str, boards: Sequence[Leaderboard], command: str, built: datetime) -> str:
    """One Markdown document per dataset: a section per protocol with table, legend and provenance."""
    n_runs = sum(b.n_runs for b in boards)
    out = [
        f"# recux leaderboard: {dataset}",
        "",
        f"Built {built.strftime('%Y-%m-%d %H:%M:%S %Z')} with `{command}`; {n_runs} run(s) in "
        f"{len(boards)} section(s) (one per protocol and data).",
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
        for name, s in (("fit_seconds", row.fit_seconds), ("seconds_per_epoch", row.seconds_per_epoch)):
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


# ----------------------------------------------------------------------------------------------------------
# Files


def _png(fig) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120, bbox_inches="tight")
    return buf.getvalue()


def plot_primary(dataset: str, boards: Sequence[Leaderboard]) -> bytes:
    """Bar chart of the primary metric per variant (error bars = std over seeds), one panel per protocol."""
    from matplotlib.figure import Figure

    width = max(6.0, 0.6 * max(len(b.rows) for b in boards) + 2)
    fig = Figure(figsize=(width, 3.6 * len(boards)))
    axes = fig.subplots(len(boards), 1, squeeze=False)[:, 0]
    for ax, b in zip(axes, boards, strict=True):
        means = np.array([r.stats[b.primary].mean for r in b.rows])
        stds = np.nan_to_num(np.array([r.stats[b.primary].std for r in b.rows]))
        x = np.arange(len(b.rows))
        colors = ["tab:orange" if r is b.best else "tab:blue" for r in b.rows]
        ax.bar(x, np.nan_to_num(means), yerr=stds, capsize=3, color=colors)
        ax.set_xticks(x, [r.display for r in b.rows], rotation=35, ha="right", fontsize=8)
        arrow = "↑" if b.higher_is_better(b.primary) else "↓"
        ax.set_ylabel(f"{b.primary} {arrow}")
        ax.set_title(f"{dataset} — {b.protocol} — data {b.data_hash[:8]}", fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return _png(fig)


def plot_tradeoff(dataset: str, boards: Sequence[Leaderboard], acc: str, bias: str) -> bytes:
    """Scatter of accuracy vs popularity bias per variant (error bars both ways), one panel per protocol."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.5 * len(boards), 5))
    axes = fig.subplots(1, len(boards), squeeze=False)[0]
    for ax, b in zip(axes, boards, strict=True):
        for r in b.rows:
            xs, ys = r.stats[bias], r.stats[acc]
            if math.isnan(xs.mean) or math.isnan(ys.mean):
                continue
            ax.errorbar(
                xs.mean, ys.mean, xerr=np.nan_to_num(xs.std), yerr=np.nan_to_num(ys.std), fmt="o", capsize=3
            )
            ax.annotate(r.display, (xs.mean, ys.mean), textcoords="offset points", xytext=(4, 4), fontsize=7)
        ax.set_xlabel(f"{bias} (popularity bias {'↑' if b.higher_is_better(bias) else '↓'})")
        ax.set_ylabel(f"{acc} {'↑' if b.higher_is_better(acc) else '↓'}")
        ax.set_title(f"{dataset} — {b.protocol} — data {b.data_hash[:8]}", fontsize=10)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return _png(fig)


def write_leaderboards(
    boards: Sequence[Leaderboard],
    out: str | os.PathLike,
    command: str,
    plots: bool = True,
    built: datetime | None = None,
) -> list[Path]:
    """Write ``<dataset>.md``, ``<dataset>.csv`` and (optionally) the PNG plots for every dataset; return paths."""
    out = Path(out)
    built = built or datetime.now(timezone.utc)
    by_dataset: dict[str, list[Leaderboard]] = {}
    for b in boards:
        by_dataset.setdefault(b.dataset, []).append(b)
    stems = _file_stems(by_dataset)
    written = []
    for dataset, dboards in by_dataset.items():
        stem = stems[dataset]
        md, csv_path = out / f"{stem}.md", out / f"{stem}.csv"
        atomic_write(md, render_markdown(dataset, dboards, command, built))
        atomic_write(csv_path, render_csv([rec for b in dboards for rec in board_records(b)]))
        written += [md, csv_path]
        if not plots:
            continue
        for primary in sorted({b.primary for b in dboards}):
            sub = [b for b in dboards if b.primary == primary and b.primary in b.all_metrics and b.rows]
            if not sub:
                continue
            path = out / f"{stem}_{sanitize_filename(primary)}.png"
            atomic_write(path, plot_primary(dataset, sub))
            written.append(path)
        for acc in sorted({b.primary for b in dboards}):  # accuracy (the primary) vs popularity bias at its k
            bias = f"arp@{acc.rpartition('@')[2]}"
            sub = [b for b in dboards if b.primary == acc and acc in b.all_metrics and bias in b.all_metrics]
            if sub:
                path = out / f"{stem}_{sanitize_filename(acc)}_vs_{sanitize_filename(bias)}.png"
                atomic_write(path, plot_tradeoff(dataset, sub, acc, bias))
                written.append(path)
    return written


# ----------------------------------------------------------------------------------------------------------
# Weights & Biases

WANDB_DIR_VARS = ("WANDB_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR", "WANDB_CONFIG_DIR", "WANDB_ARTIFACT_DIR")


def log_to_wandb(
    boards: Sequence[Leaderboard], wandb_dir: str | os.PathLike, config: dict | None = None
) -> Path:
    """Log every leaderboard as a wandb.Table in one run (project "recux", job_type "leaderboard"; offline unless
    WANDB_MODE says otherwise). All W&B folders (run, cache, staging, settings) go under ``wandb_dir``, never
    the home folder; the environment is restored afterwards. Returns the run's local folder."""
    wandb_dir = Path(wandb_dir).resolve()
    wandb_dir.mkdir(parents=True, exist_ok=True)
    saved = {k: os.environ.get(k) for k in WANDB_DIR_VARS}
    os.environ["WANDB_DIR"] = str(wandb_dir)
    for k, sub in zip(WANDB_DIR_VARS[1:], ("cache", "data", "config", "artifacts"), strict=True):
        os.environ[k] = str(wandb_dir / sub)
    try:
        import wandb

        mode = os.environ.get("WANDB_MODE") or "offline"
        run = wandb.init(
            project="recux",
            job_type="leaderboard",
            mode=mode,
            dir=str(wandb_dir),
            config=config or {},
            settings=wandb.Settings(silent=True, console="off", x_disable_stats=True, save_code=False),
        )
        try:
            for b in boards:
                records = board_records(b)
                keys: list[str] = []
                for rec in records:
                    keys += [k for k in rec if k not in keys]
                table = wandb.Table(columns=keys, data=[[rec.get(k) for k in keys] for rec in records])
                run.log(
                    {f"leaderboard/{sanitize_filename(b.dataset)}/{sanitize_filename(b.protocol)}/{b.data_hash[:8]}": table}
                )
            run_dir = Path(run.dir).parent if run.dir else wandb_dir
        finally:
            run.finish()
        return run_dir
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
