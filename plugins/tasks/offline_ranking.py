"""Offline top-k ranking: fit on train (validation for early stopping), rank the whole catalogue for every test
user with seen items masked, score the ranking with the metric plugins, write the results record."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from recux import compression, stages
from recux.diagnosis_report import diagnose_setting, write_in_run
from recux.explain import ExplainSetup
from recux.fairness import FairnessSettings, add_fairness
from recux.registry import register
from recux.results import RunArtifacts
from recux.task import Task
from recux.tracking import make_tracker

log = logging.getLogger("recux")


@register("task", "offline_ranking", compresses=True)
class OfflineRanking(Task):
    """Offline evaluation of a full-catalogue top-k ranking against held-out interactions (the default)."""

    def run(self, spec: stages.RunSpec, run_dir: Path) -> dict[str, Any]:
        t_start = time.perf_counter()
        model_info = stages.start_run(spec)  # e.g. an unknown model, lora on EASE, model.lr=-1: refused
        compression.check(spec.resolved, model_info)  # e.g. compress=int8 on itemknn, compress.sparsity=2: refused
        from recux.evaluation import build_metrics

        metrics = build_metrics(spec.metric_specs)
        data = stages.prepare_data(spec)
        stages.check_protocol(spec, model_info, data)
        stages.attach_grades(metrics, data)
        stages.check_metric_texts(spec, metrics, data)
        ident = stages.RunIdentity.of(spec)
        rank = stages.global_rank()
        # only rank 0 tracks, evaluates and writes: it ranks every test user itself (no per-rank metric shards)
        tracker = make_tracker(None if rank else spec.resolved.get("logger"), run_dir, spec.resolved,
                               name=f"{ident.label}-s{spec.seed}", group=f"{ident.data_hash}-{ident.variant_hash}",
                               tags=[data.dataset.name, data.split.protocol, spec.model.name])
        try:
            with RunArtifacts(run_dir) as art:
                record = self._fit_and_evaluate(spec, model_info, metrics, data, ident, tracker, art, rank,
                                                t_start)
            if record is None:
                return {"status": f"rank {rank}: trained; rank 0 evaluates and writes results"}
            tracker.summary({**{f"test/{k}": v for k, v in record.metrics.items()},
                             **{f"timing/{k}": v for k, v in record.timing.items() if v is not None},
                             "users/evaluated": record.users["evaluated"],
                             "peak_memory_mb": record.peak_memory_mb})
            tracker.finish(0)
        except BaseException:
            tracker.finish(1)
            raise
        log.info("results written to %s", run_dir / "results.json")
        return record.to_dict()

    def _fit_and_evaluate(self, spec, model_info, metrics, data, ident, tracker, art, rank, t_start):
        """fit -> rank -> evaluate -> write, inside the staging folder; None on a non-zero DDP rank. Tasks that
        report more (e.g. per item group) override the three hooks below, not this sequence."""
        state = self._before_fit(spec, data)
        fair, diagnose_metrics = FairnessSettings.of(spec, data), diagnose_setting(spec)  # refused before fitting
        explain = ExplainSetup.of(spec.resolved, spec.model.name, spec.ks)  # explainer=...: None by default
        if spec.save_split:
            stages.write_split(data, art)
        lightning = model_info.meta.get("training") == "lightning"
        fitted = compression.load_fitted(spec, model_info, data) or stages.fit(
            spec, model_info, data, art.stage, lightning_logger=tracker.lightning_logger() if lightning else None)
        if rank:
            art.cancel()
            return None
        fitted.model = compression.compress(spec.resolved, fitted.model, spec.model.name)  # compress=none: as is
        if fitted.ctx.history and not lightning:
            for rec in fitted.ctx.history:
                tracker.log({f"val/{k}" if not k.startswith(("val/", "train/")) else k: v for k, v in rec.items()})
        t0 = time.perf_counter()
        ranking = stages.rank(spec, fitted.model, data)
        report = stages.evaluate(spec, metrics, ranking, data)
        more = self._evaluate_more(spec, metrics, ranking, fitted, model_info, data, state)
        eval_seconds = time.perf_counter() - t0
        self._write_per_user(report, more, data, art)
        stages.write_recommendations(ranking, data.dataset, art)
        if spec.save_model:
            fitted.model.save(art.path("model.pkl"))
        record = stages.results_record(spec, ident, model_info, data, fitted, report,
                                       stages.timing(data, fitted, eval_seconds, t_start))
        record.extra["efficiency"] = efficiency(spec, fitted.model, data, ranking)  # None with eval.efficiency=false
        record.extra.update(compression.record(spec.resolved, fitted.model))  # {} for compress=none from a fit
        self._add_to_record(record, report, more, data, state)
        add_fairness(record, report, data, fair)  # metrics.groups: gaps per user group (none by default)
        if explain is not None:  # explanations.parquet, explanations.md, the deletion test's metrics
            from recux.explanations import run_explanations

            run_explanations(explain, fitted.model, ranking, data, stages.known_items(spec, data), art, record,
                             spec.seed)
        if diagnose_metrics:  # metrics.diagnose: diagnosis.md and plots beside results.json
            write_in_run(diagnose_metrics, record, data, art, tracker)
        art.set_results(record.to_dict())
        return record

    # -- hooks (defaults: plain offline ranking)
    def _before_fit(self, spec, data) -> Any:
        """Checks and state a task needs before any fitting (refuse early)."""
        return None

    def _evaluate_more(self, spec, metrics, ranking, fitted, model_info, data, state) -> Any:
        """Further evaluation beyond the overall report (timed with it)."""
        return None

    def _write_per_user(self, report, more, data, art) -> None:
        stages.write_per_user(report, data.dataset, art)

    def _add_to_record(self, record, report, more, data, state) -> None:
        return None


def efficiency(spec: stages.RunSpec, model: Any, data: stages.PreparedData, ranking: stages.Ranking) -> Any:
    """Parameters, size on disk, one user's top-k latency (p50/p99) and batch throughput (recux.efficiency);
    ``eval.efficiency: false`` skips it, ``eval.latency_users`` and ``eval.throughput_users`` set the samples."""
    ev = spec.resolved.get("eval") or {}
    if not ev.get("efficiency", True):
        return None
    from recux.efficiency import measure

    out = measure(model, data.test_users, stages.known_items(spec, data), max(spec.ks), spec.batch_size,
                  latency_users=int(ev.get("latency_users", 100)), seed=spec.seed,
                  throughput_users=int(ev.get("throughput_users", 10_000)))
    if compression.settings_of(spec.resolved).get("export_onnx"):  # the same measures through onnxruntime
        from recux.onnx_export import onnx_efficiency

        out["onnx"] = onnx_efficiency(model, data.test_users, stages.known_items(spec, data), max(spec.ks),
                                      batch_size=spec.batch_size, latency_users=int(ev.get("latency_users", 100)),
                                      seed=spec.seed)
    return out
