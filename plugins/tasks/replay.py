"""Replay and monitoring: fit a model on the training part of a time-ordered split, then replay the test period
in timestamp order through it, as a deployed recommender would see it, and watch the experience over time.

* Requests (recux.plugins.tasks._replay_stream): each (user, timestamp) of the test part, in time order; the
  targets are the user's test items at that timestamp; the model conditions on the user's rows strictly before
  it (train + valid + earlier test rows: a sequential model's history grows as the replay advances) and those
  rows are masked. The model is fitted once, on train (valid for early stopping), and never refitted.
* Per request: the wall time of answering it (condition + score + mask + top-k; ``batch_size`` requests at a
  time, ``warmup`` untimed requests first).
* Windows (``window.by``: ``requests``, blocks of ``window.size`` requests; or ``time``, spans such as 7d): each
  window's metrics are the metric plugins over its requests (accuracy per request, catalogue metrics such as
  coverage over the window's lists), its latency p50/p99/mean, and its drift (recux.plugins.tasks._replay_monitor;
  PSI, KL and Jensen-Shannon, formulas there) of: the requested (target) items' training popularity and the
  requesting users' activity (their number of training interactions), one value per target row, against the
  same values of the training rows; and the recommended items' training popularity (the top ``optimized_metric``
  k of each request) against the first window's.
* Alerts (``alerts``): rules over window columns (above / below a bound, or a relative drop from the first
  window or the validation value: the same replay over the validation period, its requests conditioned on the
  rows before them, so measured like the windows); the windows where one fires are marked in the table and
  shaded in the plots.

Outputs in the run folder: replay_windows.parquet and .csv (one row per window), replay_requests.parquet (one row
per request: user, time, window, latency, per-request metrics, the top-k), replay_metrics.png / replay_drift.png /
replay_latency.png, replay_report.md, and results.json (metrics over the whole replay; ``replay``: settings,
windows, alerts, latency). W&B: one log step per window (``replay/<column>``), the whole replay in the summary.
"""

from __future__ import annotations

import logging
import math
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from recux import stages
from recux.errors import ConfigError
from recux.plugins.tasks import _replay_monitor as monitor
from recux.plugins.tasks import _replay_report as report_md
from recux.plugins.tasks._replay_stream import Stream, assign_windows, build_stream, serve
from recux.registry import register
from recux.results import RunArtifacts
from recux.task import Task
from recux.tracking import make_tracker

log = logging.getLogger("recux")

LATENCY_COLUMNS = ("latency_mean_ms", "latency_p50_ms", "latency_p99_ms")
DRIFT_SOURCES = ("requested_popularity", "user_activity", "recommended_popularity")
FIXED_COLUMNS = ("n_requests", "n_users", "n_targets", *LATENCY_COLUMNS,
                 *(f"drift_{s}_{m}" for s in DRIFT_SOURCES for m in monitor.MEASURES))


@register("task", "replay")
class Replay(Task):
    """Replay of a time-ordered test period through a fitted model: latency, windowed metrics, drift, alerts."""

    def __init__(self, window: Any = None, batch_size: int = 1, warmup: int = 10, drift: Any = None,
                 alerts: Any = None, alert_min_requests: int = 0) -> None:
        window = dict(window or {"by": "requests", "size": 500})
        self.window_by, self.window_size = str(window.get("by", "requests")), window.get("size", 500)
        assign_windows(np.zeros(1, np.int64), self.window_by, self.window_size)  # refuses bad settings now
        if int(batch_size) < 1 or int(warmup) < 0:
            raise ConfigError(f"task.batch_size={batch_size} must be >= 1 (requests answered together) and "
                              f"task.warmup={warmup} >= 0 (untimed requests first).")
        self.batch_size, self.warmup = int(batch_size), int(warmup)
        drift = dict(drift or {})
        self.bins, self.eps = int(drift.get("bins", 10)), float(drift.get("eps", 1e-4))
        monitor.quantile_edges(np.zeros(0), self.bins)
        if not self.eps >= 0:
            raise ConfigError(f"task.drift.eps={self.eps} must be >= 0 (smoothing of empty bins), e.g. 1e-4.")
        self.alerts = monitor.parse_alerts(alerts)
        if int(alert_min_requests) < 0:
            raise ConfigError(f"task.alert_min_requests={alert_min_requests} must be >= 0 (windows with fewer "
                              "requests never fire an alert), e.g. 50.")
        self.alert_min_requests = int(alert_min_requests)

    def settings(self) -> dict[str, Any]:
        return {"window_by": self.window_by, "window_size": self.window_size, "batch_size": self.batch_size,
                "warmup": self.warmup, "drift_bins": self.bins, "drift_eps": self.eps,
                "alert_min_requests": self.alert_min_requests}

    def run(self, spec: stages.RunSpec, run_dir: Path) -> dict[str, Any]:
        t_start = time.perf_counter()
        model_info = stages.start_run(spec)  # e.g. an unknown model, lora on EASE, model.lr=-1: refused
        if stages.global_rank():
            raise ConfigError("task=replay runs on one process; use trainer=cpu or trainer=gpu, not ddp.")
        from recux.evaluation import build_metrics

        metrics = build_metrics(spec.metric_specs)
        self._check_metrics(spec, metrics)
        data = stages.prepare_data(spec)
        self._check_split(data)
        stages.check_protocol(spec, model_info, data)
        stages.check_metric_texts(spec, metrics, data)
        stream = build_stream(data.split)
        ident = stages.RunIdentity.of(spec)
        tracker = make_tracker(spec.resolved.get("logger"), run_dir, spec.resolved,
                               name=f"{ident.label}-replay-s{spec.seed}",
                               group=f"{ident.data_hash}-{ident.variant_hash}",
                               tags=[data.dataset.name, data.split.protocol, spec.model.name, "replay"])
        try:
            with RunArtifacts(run_dir) as art:
                record = self._replay(spec, model_info, metrics, data, stream, ident, tracker, art, t_start)
            tracker.finish(0)
        except BaseException:
            tracker.finish(1)
            raise
        log.info("replay written to %s", run_dir)
        return record

    # -- checks (before any fitting)
    def _check_metrics(self, spec: stages.RunSpec, metrics) -> None:
        graded = [info.name for info, _ in metrics if "graded_truth" in info.meta.get("needs", ())]
        if graded:
            raise ConfigError(f"task=replay scores each request against its next item(s), without grades; "
                              f"drop the graded metric(s) {', '.join(graded)} (e.g. metrics=default).")
        names = {info.name for info, _ in metrics}
        for alert in self.alerts:
            col = alert.column
            name, _, k = col.partition("@")
            if col not in FIXED_COLUMNS and not (k.isdigit() and int(k) in spec.ks and name in names):
                raise ConfigError(
                    f"task.alerts.{alert.name}.column={col!r} is not a window column: use one of "
                    f"{', '.join(FIXED_COLUMNS)} or <metric>@<k> with a metric of metrics.plugins "
                    f"({', '.join(sorted(names))}) and k in metrics.ks {list(spec.ks)}.")
            if alert.reference == "validation" and "@" not in col:
                raise ConfigError(
                    f"task.alerts.{alert.name} compares {col} with its validation value, but the validation "
                    "replay measures the metrics (<metric>@<k>) only; use reference: first_window or a bound.")

    @staticmethod
    def _check_split(data: stages.PreparedData) -> None:
        if not data.split.time_ordered:
            raise ConfigError(f"task=replay replays the test period in time order, but split "
                              f"'{data.split.protocol}' is not time-ordered. Use split=global_temporal (one time "
                              "cut for everyone) or split=temporal.")

    # -- the replay
    def _replay(self, spec, model_info, metrics, data, stream: Stream, ident, tracker, art, t_start) -> dict:
        if spec.save_split:
            stages.write_split(data, art)
        lightning = model_info.meta.get("training") == "lightning"
        fitted = stages.fit(spec, model_info, data, art.stage,
                            lightning_logger=tracker.lightning_logger() if lightning else None)
        t0 = time.perf_counter()
        valid = self._replay_validation(spec, metrics, data, fitted.model)
        history = stream.history_csr()
        t1 = time.perf_counter()
        served = serve(fitted.model, stream, history, max(spec.ks), self.batch_size, self.warmup)
        serve_seconds = time.perf_counter() - t1
        fitted.model.condition_on(data.split.train)  # back to the state validation saw (the record re-validates)
        log.info("replayed %d requests in %.1f s", len(stream), serve_seconds)
        window, starts = assign_windows(stream.ts, self.window_by, self.window_size)
        whole = _evaluate(spec, metrics, data, stream, served, history, np.arange(len(stream)), spec.bootstrap)
        rows = self._window_rows(spec, metrics, data, stream, served, history, window, starts)
        self._check_columns(rows)
        fired, bounds = monitor.apply_alerts(self.alerts, rows, valid or {}, self.alert_min_requests)
        eval_seconds = time.perf_counter() - t0
        latency = _latency(served.latency_ms)
        record = self._record(spec, ident, model_info, data, fitted, whole, stream, rows, fired, latency,
                              stages.timing(data, fitted, eval_seconds, t_start), serve_seconds)
        record.extra["replay"]["validation"] = valid  # the validation period's replay (the alerts' reference)
        plots = self._write(art, spec, data, stream, served, window, whole, rows, fired, bounds, latency, record)
        record.files.update({f"plot_{k}": v for k, v in plots.items()})
        self._track(tracker, rows, record)
        art.set_results(record.to_dict())
        return record.to_dict()

    def _replay_validation(self, spec, metrics, data, model) -> dict[str, float] | None:
        """The metrics of the same replay over the validation period (requests of the valid part, each
        conditioned on the rows before it): the ``validation`` reference of the alerts, measured like the
        windows (None without validation rows)."""
        if not len(data.split.valid):
            return None
        stream = build_stream(data.split, "valid")
        history = stream.history_csr()
        served = serve(model, stream, history, max(spec.ks), self.batch_size, warmup=0)
        rep = _evaluate(spec, metrics, data, stream, served, history, np.arange(len(stream)), 0)
        return {"n_requests": len(stream), **{k: float(v) for k, v in rep.means.items()}}

    def _check_columns(self, rows: list[dict[str, Any]]) -> None:
        for alert in self.alerts:
            if rows and alert.column not in rows[0]:
                raise ConfigError(f"task.alerts.{alert.name}.column={alert.column!r} is not in the window table; "
                                  f"its columns: {', '.join(k for k in rows[0] if k not in ('alerts', 'alert'))}.")

    def _window_rows(self, spec, metrics, data, stream, served, history, window, starts) -> list[dict[str, Any]]:
        train = data.split.train
        pop = np.bincount(train.item, minlength=data.dataset.n_items).astype(np.float64)
        act = np.bincount(train.user, minlength=data.dataset.n_users).astype(np.float64)
        pop_ref, act_ref = pop[train.item], act[train.user]  # one value per training row
        pop_edges, act_edges = monitor.quantile_edges(pop_ref, self.bins), monitor.quantile_edges(act_ref, self.bins)
        ref = {"requested_popularity": monitor.histogram(pop_ref, pop_edges),
               "user_activity": monitor.histogram(act_ref, act_edges)}
        k = spec.optimized.k
        rows = []
        for w in range(int(window.max()) + 1 if len(window) else 0):
            idx = np.flatnonzero(window == w)
            rep = _evaluate(spec, metrics, data, stream, served, history, idx, 0)
            recs = served.topk[idx, :k]
            targets = stream.targets[idx]  # one value per target row, as the reference has per training row
            hists = {"requested_popularity": monitor.histogram(pop[targets.indices], pop_edges),
                     "user_activity": monitor.histogram(np.repeat(act[stream.user[idx]], np.diff(targets.indptr)),
                                                        act_edges),
                     "recommended_popularity": monitor.histogram(pop[recs[recs >= 0]], pop_edges)}
            ref.setdefault("recommended_popularity", hists["recommended_popularity"])  # the first window
            row = {"window": w, "start_ts": int(stream.ts[idx[0]]) if starts is None else int(starts[w]),
                   "end_ts": int(stream.ts[idx[-1]]), "n_requests": len(idx),
                   "n_users": int(len(np.unique(stream.user[idx]))), "n_targets": int(stream.targets[idx].nnz),
                   **{m: float(v) for m, v in rep.means.items()}, **_latency(served.latency_ms[idx])}
            row["start"] = _iso(row["start_ts"])
            for source, counts in hists.items():
                for m, v in monitor.drift(counts, ref[source], self.eps).items():
                    row[f"drift_{source}_{m}"] = v
            rows.append(row)
        return rows

    def _record(self, spec, ident, model_info, data, fitted, whole, stream, rows, fired, latency, run_timing,
                serve_seconds):
        record = stages.results_record(spec, ident, model_info, data, fitted, whole, run_timing)
        record.timing["replay_seconds"] = round(serve_seconds, 4)
        record.users = {"evaluated": whole.n_evaluated, "excluded_empty_test": whole.n_excluded_empty,
                        "requests": len(stream), "distinct_users": int(len(np.unique(stream.user)))}
        record.files = {"windows": "replay_windows.parquet", "windows_csv": "replay_windows.csv",
                        "requests": "replay_requests.parquet", "report": "replay_report.md", "split": "split/"}
        record.extra["replay"] = {
            "settings": self.settings(), "n_requests": len(stream), "n_windows": len(rows),
            "latency_ms": latency, "global_time_cut": _global_cut(data),
            "alerts": [{"name": a.name, "rule": a.describe()} for a in self.alerts], "fired": fired,
            "alert_windows": sorted({f["window"] for f in fired}), "windows": rows,
            "drift": {"psi": "sum_i (p_i - q_i) ln(p_i / q_i)", "kl": "sum_i p_i ln(p_i / q_i) (nats)",
                      "js": "(KL(p||m) + KL(q||m)) / 2 in bits, m = (p + q) / 2",
                      "p": "the window's bin shares, q: the reference's, smoothed by eps",
                      "references": {"requested_popularity": "training rows' item popularity",
                                     "user_activity": "the user's training interactions, per training row",
                                     "recommended_popularity": "the first window"}},
        }
        return record

    def _write(self, art, spec, data, stream, served, window, whole, rows, fired, bounds, latency, record):
        import polars as pl

        table = pl.DataFrame(rows)
        table.write_parquet(art.path("replay_windows.parquet"))
        table.write_csv(art.path("replay_windows.csv"))
        _requests_table(data, stream, served, window, whole).write_parquet(art.path("replay_requests.parquet"))
        metric_cols = [c for c in rows[0] if "@" in c] if rows else []
        k = spec.optimized.k
        from recux.evaluation import ACCURACY_METRICS

        acc = [c for c in (f"{m}@{k}" for m in ("ndcg", "hit", "recall")) if c in metric_cols]
        beyond = [c for c in metric_cols if c.endswith(f"@{k}") and c.split("@")[0] not in ACCURACY_METRICS]
        panels = {"metrics": [acc, *([c] for c in beyond)],
                  "drift": [[f"drift_{s}_psi", f"drift_{s}_js"] for s in DRIFT_SOURCES],
                  "latency": [list(LATENCY_COLUMNS)]}
        title = f"{record.label} on {record.dataset['name']} ({record.protocol})"
        plots = report_md.plot_all(rows, art, panels, bounds, fired, title)
        shown = [*acc, *beyond, "latency_p99_ms", *(f"drift_{s}_psi" for s in DRIFT_SOURCES)]
        notes = [
            "Drift: PSI = sum_i (p_i - q_i) ln(p_i / q_i), JS in bits, over quantile bins of the reference; "
            "requested_popularity and user_activity: the window's target rows (their item's training popularity, "
            "their user's number of training interactions) against the training rows; recommended_popularity: "
            f"the top {spec.optimized.k} lists' items against the first window's. A window of a few users (a "
            "rating session) shows as high user_activity drift."]
        notes += [] if record.extra["replay"]["global_time_cut"] else [
            "Note: the split cuts each user's history separately, so some users' training rows are later than "
            "other users' test requests (the model has seen part of the stream's future); split=global_temporal "
            "has one time cut for everyone."]
        text = report_md.markdown(
            title, {**self.settings(), "requests": len(stream), "windows": len(rows),
                    "first request": _iso(int(stream.ts[0])), "last request": _iso(int(stream.ts[-1]))},
            whole.means, latency, record.extra["replay"].get("validation"), rows, shown, fired, self.alerts, plots,
            notes)
        art.path("replay_report.md").write_text(text)
        return plots

    @staticmethod
    def _track(tracker, rows: list[dict[str, Any]], record) -> None:
        for row in rows:  # one log step per window
            tracker.log({f"replay/{k}": (float(v) if isinstance(v, (bool, np.bool_)) else v)
                         for k, v in row.items() if isinstance(v, (int, float, bool, np.number, np.bool_))})
        tracker.summary({**{f"test/{k}": v for k, v in record.metrics.items()},
                         **{f"replay/{k}": v for k, v in record.extra["replay"]["latency_ms"].items()},
                         "replay/n_requests": record.extra["replay"]["n_requests"],
                         "replay/n_alert_windows": len(record.extra["replay"]["alert_windows"])})


def _evaluate(spec, metrics, data, stream: Stream, served, history, idx: np.ndarray, bootstrap: int):
    """The metric plugins over requests ``idx`` (one row per request, its targets as ground truth, its history
    as the list-versus-history metrics' history, training popularity from train)."""
    from recux.evaluation import evaluate_topk

    return evaluate_topk(served.topk[idx], stream.targets[idx], metrics=metrics, ks=spec.ks,
                         scores=served.scores[idx], train=data.train_csr, users=idx, n_items=data.dataset.n_items,
                         item_features=data.dataset.item_features, bootstrap=bootstrap, history=history[idx],
                         item_embeddings=stages.metric_embeddings(spec, metrics, data))


def _latency(ms: np.ndarray) -> dict[str, float]:
    if not len(ms):
        return dict.fromkeys(LATENCY_COLUMNS, math.nan)
    return {"latency_mean_ms": float(np.mean(ms)), "latency_p50_ms": float(np.percentile(ms, 50)),
            "latency_p99_ms": float(np.percentile(ms, 99))}


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(int(ts), tz=timezone.utc).isoformat(timespec="seconds")


def _global_cut(data: stages.PreparedData) -> bool:
    """Whether every training and validation row is earlier than (or at) the first test row."""
    split = data.split
    before = [p.timestamp.max() for p in (split.train, split.valid) if len(p)]
    return bool(not before or max(before) <= split.test.timestamp.min())


def _requests_table(data, stream: Stream, served, window: np.ndarray, whole):
    import polars as pl

    ids = data.dataset.item_ids
    lists = [[ids[i] for i in row if i >= 0] for row in served.topk.tolist()]
    table = pl.DataFrame({"request": np.arange(len(stream)), "user_id": data.dataset.user_ids[stream.user],
                          "timestamp": stream.ts, "window": window, "n_targets": np.diff(stream.targets.indptr),
                          "history_len": stream.history_len, "latency_ms": served.latency_ms, "topk": lists})
    per = whole.per_user.rename({"user": "request"}).with_columns(pl.col("request").cast(pl.Int64))
    return table.with_columns(pl.col("request").cast(pl.Int64)).join(per, on="request", how="left")

