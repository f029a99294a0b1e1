"""Write a run's UX diagnosis (recux.diagnosis) beside its results.json: diagnosis.md, one PNG per metric and,
when the tracker logs to W&B, a table. Used at the end of a run (``metrics.diagnose``) and by ``recux-diagnose``
for a finished run folder, optionally against a baseline run on the same data (same data hash)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from recux.diagnosis import ALPHA, Diagnosis, diagnose
from recux.diagnosis_plots import plot_metric, plot_name
from recux.diagnosis_render import TABLE_COLUMNS, render_markdown, table_rows
from recux.errors import ConfigError, DataError
from recux.record import RecordError, ResultsRecord
from recux.results import FAILED_FILE, RESULTS_FILE, atomic_write

PER_USER_FILE = "per_user_metrics.parquet"
REPORT_FILE = "diagnosis.md"


@dataclass
class RunFolder:
    path: Path
    record: ResultsRecord
    per_user: pl.DataFrame


def load_run(path: str | Path, role: str = "run") -> RunFolder:
    """A finished run's record and per-user table; a DataError saying what is missing otherwise."""
    p = Path(path)
    folder = p.parent if p.name == RESULTS_FILE else p
    if not (folder / RESULTS_FILE).is_file():
        why = (f"it holds {FAILED_FILE}: the run failed" if (folder / FAILED_FILE).is_file()
               else "no such folder" if not folder.is_dir() else f"no {RESULTS_FILE} in it")
        raise DataError(f"{role} {folder}: {why}. Pass the folder of a finished run (the one holding results.json).")
    try:
        record = ResultsRecord.from_dict(json.loads((folder / RESULTS_FILE).read_text(encoding="utf-8")))
    except (RecordError, ValueError) as e:
        raise DataError(f"{role} {folder / RESULTS_FILE} is not a results record: {e}") from e
    per_user_path = folder / record.files.get("per_user_metrics", PER_USER_FILE)
    if not per_user_path.is_file():
        raise DataError(f"{role} {folder} has no {per_user_path.name}: the per-user values the diagnosis needs")
    per_user = pl.read_parquet(per_user_path)
    if "user_id" not in per_user.columns:
        raise DataError(f"{per_user_path} has no user_id column")
    if not record.config:
        raise DataError(f"{role} {folder / RESULTS_FILE} stores no resolved config: its data cannot be rebuilt")
    return RunFolder(folder, record, per_user)


def check_same_data(run: RunFolder, baseline: RunFolder) -> None:
    """Refuse a baseline on other data (another data hash): its users' values cannot be paired."""
    if run.record.data_hash != baseline.record.data_hash:
        raise ConfigError(
            f"the baseline {baseline.path} ran on other data than {run.path} (data hash "
            f"{baseline.record.data_hash} vs {run.record.data_hash}: dataset, preprocessing, split, masking or "
            "task differ), so per-user values cannot be paired. Pass a baseline run of the same data settings."
        )


def rebuild_data(folder: RunFolder) -> Any:
    """The run's prepared data, rebuilt from its stored config by the run's own stages (load -> preprocess ->
    split); checked against the run's split/ files when they were saved."""
    from recux import stages

    data = stages.prepare_data(stages.RunSpec.from_config(folder.record.config))
    for part in ("train", "test"):
        saved = folder.path / "split" / f"{part}.parquet"
        if saved.is_file() and pl.scan_parquet(saved).select(pl.len()).collect().item() != len(
                getattr(data.split, part)):
            raise DataError(f"{saved} does not match the {part} split rebuilt from the run's config (different row "
                            "counts): the data or code changed since the run; rerun it to diagnose it")
    return data


def choose_metrics(requested: list[str] | None, per_user: pl.DataFrame, default: str) -> list[str]:
    """The requested metrics (default: the run's optimized metric), each a per-user column of the run."""
    names = list(requested or [default])
    have = [c for c in per_user.columns if c != "user_id" and "/" not in c]
    unknown = [m for m in names if m not in have]
    if unknown:
        raise ConfigError(f"metric(s) {', '.join(unknown)} have no per-user values in this run; choose from "
                          f"{', '.join(have)} (corpus-level metrics such as coverage have none)")
    return names


def write_report(diag: Diagnosis, out: Path, title: dict[str, Any], tracker: Any = None) -> list[Path]:
    """diagnosis.md and the PNGs into ``out`` (and a W&B table through ``tracker``); returns the files."""
    out.mkdir(parents=True, exist_ok=True)
    plots = {m: plot_name(m) for m in diag.metrics}
    written = [atomic_write(out / plots[m], plot_metric(diag, m)) for m in diag.metrics]
    written.insert(0, atomic_write(out / REPORT_FILE, render_markdown(diag, title, plots)))
    if tracker is not None:
        tracker.log_table("diagnosis/segments", TABLE_COLUMNS, table_rows(diag))
    return written


def title_of(record: ResultsRecord, baseline: ResultsRecord | None = None) -> dict[str, Any]:
    out = {"label": record.label, "run_id": record.run_id, "seed": record.seed, "dataset": record.dataset_name,
           "protocol": record.protocol, "task": record.task, "data_hash": record.data_hash,
           "users evaluated": record.users.get("evaluated")}
    if baseline is not None:
        out["baseline"] = f"{baseline.label} (run {baseline.run_id}, seed {baseline.seed})"
    return out


def diagnose_setting(spec: Any) -> list[str] | None:
    """``metrics.diagnose``: false (default) -> None; true -> [the optimized metric]; a list -> those value
    names (``<metric>@<k>`` with the metric configured and k in metrics.ks). Checked before fitting."""
    value = (spec.resolved.get("metrics") or {}).get("diagnose", False)
    if value is False or value is None:
        return None
    if value is True:
        return [spec.optimized.name]
    names = {s.get("name") if isinstance(s, dict) else str(s) for s in spec.metric_specs}
    if isinstance(value, (list, tuple)) and value:
        bad = [v for v in value if str(v).partition("@")[0] not in names
               or not str(v).partition("@")[2].isdigit() or int(str(v).partition("@")[2]) not in spec.ks]
        if not bad:
            return [str(v) for v in value]
    raise ConfigError(f"metrics.diagnose={value!r} must be true, false or a list of per-user values "
                      f"<metric>@<k> of the configured metrics ({', '.join(sorted(map(str, names)))}) at "
                      f"k in metrics.ks={list(spec.ks)}, e.g. metrics.diagnose=[ndcg@10]")


def write_in_run(metrics: list[str], record: ResultsRecord, data: Any, art: Any, tracker: Any) -> Diagnosis:
    """At the end of a run: the diagnosis of the per-user table just staged, written into the staging folder
    (published with results.json)."""
    per_user = pl.read_parquet(art.path(PER_USER_FILE))
    metrics = choose_metrics(metrics, per_user, record.optimized_metric)
    diag = diagnose(per_user, data, metrics, record.directions, alpha=ALPHA)
    write_report(diag, art.stage, title_of(record), tracker)
    record.files["diagnosis"] = REPORT_FILE
    return diag
