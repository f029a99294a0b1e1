"""Add metrics to a finished run from the top-k lists it saved, without refitting (``recux-rescore``).

The run's data is rebuilt from its stored config by the run's own stages (its data hash must be the recorded
one), its ``recommendations.parquet`` is read back into the (users x K) top-k matrix the run evaluated, and a
metric set is evaluated on it by ``stages.evaluate`` as at the end of a run. Every metric value the run already
recorded must come out identical (to 1e-12): that proves the lists and data are the ones the run measured, and
a run that fails it is refused. The new metric values, their per-user columns and, with ``metrics.groups``, the
fairness section are added to a COPY of the run folder (the original is never changed); the copy's config holds
the new metric set and its record a ``rescored`` note (source folder, time, the metric set).

Only ``task=offline_ranking`` runs: other tasks evaluate more than the saved lists (cold_start ranks among cold
items, continual evaluates every stage).
"""

from __future__ import annotations

import math
import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from recux.errors import ConfigError, DataError

TOLERANCE = 1e-12


def metric_set(name_or_path: str) -> dict[str, Any]:
    """A metrics config: the name of a built-in set (conf/metrics/<name>.yaml) or a YAML file."""
    from importlib.resources import files

    from omegaconf import OmegaConf

    path = Path(name_or_path)
    if not path.is_file():
        path = Path(str(files("recux.conf") / "metrics" / f"{name_or_path}.yaml"))
    if not path.is_file():
        raise ConfigError(f"--metrics {name_or_path}: neither a YAML file nor a built-in metric set "
                          "(conf/metrics/<name>.yaml, e.g. ux, default, full)")
    return OmegaConf.to_container(OmegaConf.load(path), resolve=True)  # type: ignore[return-value]


def _text_defaults(config: dict[str, Any]) -> dict[str, Any]:
    """A run recorded before the encoder group existed gets today's defaults (conf/encoder/minilm.yaml, the
    dataset's own item-text template) for metrics that read item embeddings; the copy's config records them."""
    from importlib.resources import files

    from omegaconf import OmegaConf

    out = dict(config)
    if not out.get("encoder"):
        out["encoder"] = OmegaConf.to_container(OmegaConf.load(str(files("recux.conf") / "encoder" / "minilm.yaml")))
    out.setdefault("item_text", {"template": None})
    return out


def saved_ranking(folder: Path, data: Any, width: int) -> Any:
    """The run's saved lists as a stages.Ranking over its test users (-1 pads a shorter list); one join per id
    kind, no loop over rows."""
    from recux import stages

    recs = pl.read_parquet(folder / "recommendations.parquet").select("user_id", "rank", "item_id", "score")
    ds = data.dataset
    recs = (recs.join(pl.DataFrame({"user_id": ds.user_ids, "u": np.arange(len(ds.user_ids))}), on="user_id",
                      how="left")
                .join(pl.DataFrame({"item_id": ds.item_ids, "i": np.arange(len(ds.item_ids))}), on="item_id",
                      how="left"))
    unknown = recs.filter(pl.col("u").is_null() | pl.col("i").is_null())
    if unknown.height:
        u, item = unknown.row(0)[0], unknown.row(0)[2]
        raise DataError(f"{folder / 'recommendations.parquet'} names user {u!r} / item {item!r}, which the run's "
                        "rebuilt data does not have: the data changed since the run")
    users = np.asarray(data.test_users)
    codes, pos = recs["u"].to_numpy(), recs["rank"].to_numpy().astype(np.int64) - 1
    row = np.searchsorted(users, codes).clip(max=max(len(users) - 1, 0))
    keep = (users[row] == codes) & (pos < width) if len(users) else np.zeros(len(codes), bool)
    topk = np.full((len(users), width), -1, dtype=np.int32)
    scores = np.full((len(users), width), -np.inf, dtype=np.float32)
    topk[row[keep], pos[keep]] = recs["i"].to_numpy()[keep]
    scores[row[keep], pos[keep]] = recs["score"].to_numpy()[keep]
    return stages.Ranking(users, topk, scores, 0.0)


def rescore(run: str | Path, metrics_name: str, out_root: str | Path) -> Path:
    """Evaluate ``metrics_name`` on the run's saved lists; write the enriched copy under ``out_root``; return
    the copy's folder."""
    from recux import stages
    from recux.diagnosis_report import load_run, rebuild_data
    from recux.evaluation import build_metrics
    from recux.fairness import FairnessSettings, add_fairness

    folder = load_run(run)
    rec = folder.record
    if rec.task != "offline_ranking":
        raise ConfigError(f"{folder.path}: task {rec.task}; rescoring re-evaluates the saved top-k lists, which "
                          "only a task=offline_ranking run's results come from entirely")
    config = {**_text_defaults(rec.config), "metrics": metric_set(metrics_name)}
    spec = stages.RunSpec.from_config(config)
    data = rebuild_data(folder)
    from recux import identity

    if identity.data_hash(config) != rec.data_hash:
        raise DataError(f"{folder.path}: the rebuilt data hash differs from the recorded {rec.data_hash}")
    width = max(spec.ks)
    saved_k = max(int(k) for k in (rec.config.get("metrics") or {}).get("ks", [width]))
    if width > saved_k:
        raise ConfigError(f"{folder.path} saved top-{saved_k} lists; the metric set needs k up to {width}")
    metrics = build_metrics(spec.metric_specs)
    stages.attach_grades(metrics, data)
    report = stages.evaluate(spec, metrics, saved_ranking(folder.path, data, width), data)
    _check_reproduces(folder.path, rec.metrics, report.means)
    fair = FairnessSettings.of(spec, data)
    return _write_copy(folder, Path(out_root), config, report, data, metrics_name, lambda r: add_fairness(
        r, report, data, fair))


def _check_reproduces(path: Path, recorded: dict[str, Any], new: dict[str, float]) -> None:
    bad = [f"{k}: recorded {v}, now {new[k]}" for k, v in recorded.items()
           if k in new and v is not None and not _same(v, new[k])]
    if bad:
        raise DataError(f"{path}: its saved lists do not reproduce its recorded metrics ({'; '.join(bad[:3])}); "
                        "the data, the code or the files changed since the run: rerun it instead")


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or abs(a - b) <= TOLERANCE


def _write_copy(folder: Any, out_root: Path, config: dict[str, Any], report: Any, data: Any, metrics_name: str,
                add_fairness: Any) -> Path:
    from recux.results import write_json_atomic

    rec = folder.record
    dest = out_root / folder.path.name
    if dest.exists():
        raise ConfigError(f"{dest} exists; pick another --out (rescoring never overwrites a folder)")
    shutil.copytree(folder.path, dest)
    for name, value in report.means.items():
        rec.metrics.setdefault(name, value)
        rec.directions.setdefault(name, report.directions[name])
    for name, value in (report.stderr or {}).items():
        rec.metrics_stderr.setdefault(name, value)
    add_fairness(rec)
    rec.config = config
    rec.extra["rescored"] = {"from": str(folder.path.resolve()), "metrics": metrics_name,
                             "at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    per_user = folder.per_user
    new_cols = [c for c in report.per_user.columns if c != "user" and c not in per_user.columns]
    if new_cols:
        ids = data.dataset.user_ids[report.per_user["user"].to_numpy()]
        extra = report.per_user.select(new_cols).with_columns(pl.Series("user_id", ids))
        per_user.join(extra, on="user_id", how="left").write_parquet(dest / "per_user_metrics.parquet")
    write_json_atomic(dest / "results.json", rec.to_dict())
    return dest
