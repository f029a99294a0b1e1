"""Continual updates: the log is cut in time into ``n_periods`` periods; period 0 trains the first model, and each
later period arrives as an update. The data scheme (which rows each stage trains, validates and is tested on) is
in recux.plugins.tasks._periods; in short, stage t trains on the data up to period t (less a validation slice at
its end) and is tested on held-out interactions of returning users in period t+1.

``mode=continual``: stage t's network starts from stage t-1's final weights (``FitContext.init_from`` with the
previous net's state dict, loaded after the fine-tuning strategy prepares the net, so LoRA adapters carry over
too; the optimiser state is not
carried, each update starts a fresh optimiser; ``update_max_epochs`` caps the epochs of each update after stage
0). ``mode=retrain`` (the baseline): every stage trains from a fresh initialisation (the same seeded one), with
the model's full budget. Stage 0 is the same run in both modes. ``update_data``: ``all`` (every row so far) or
``new`` (the rows since the previous update). With ``new``, models that score from their training rows (MultVAE's
input vectors, LightGCN's propagation graph) and SASRec's validation sequences see only those rows; test ranking
always conditions on the whole history before the test period.

Code space: the catalogue and the user table are the whole (preprocessed) log's, fixed for every stage, so
weights carry over row for row. A user or item not seen yet has a row from the start: its initialisation (the
same in both modes, as every stage seeds the same way), which pair losses (BPR, LightGCN) never touch until it
occurs in training data, and catalogue-wide losses (SASRec's softmax, MultVAE's decoder) only push down.

Every Lightning model works in both modes. Other models (EASE, ItemKNN, iALS, popularity) have no weights to
carry: they run with ``mode=retrain`` only, and ``mode=continual`` refuses them.

Metrics, after each stage s and for each test task j <= s (task j: period j+1's held-out rows), accuracy R[s][j]:
  * per-period test accuracy: R[t][t] (the usual metrics on the next period);
  * backward transfer (Lopez-Paz & Ranzato 2017, GEM): BWT_s = 1/s * sum_{j<s} (R[s][j] - R[j][j]);
  * forgetting (Chaudhry et al. 2018, RWalk): f_j^s = max_{l in j..s-1} R[l][j] - R[s][j], and
    F_s = 1/s * sum_{j<s} f_j^s (positive: accuracy lost on earlier periods' test sets);
  * update cost: fit seconds, epochs and seconds per epoch of each stage; compare a ``mode=retrain`` run of the
    same model (``scripts/continual_report.py`` prints both side by side).
results.json: ``metrics`` is the mean of the per-period test accuracies R[t][t]; ``continual`` holds the
per-period table, the whole matrix R and the scheme's settings; continual.parquet is the per-period table,
continual_matrix.parquet the matrix in long form (stage, task, metric, value), per_user_metrics.parquet each test
user's mean over the periods they were tested in.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from recux import stages, subsample
from recux.data import Interactions, Split
from recux.errors import ConfigError
from recux.plugins.tasks._periods import Stage, build_stages, check_shares, label_periods
from recux.registry import register
from recux.results import RunArtifacts
from recux.task import Task

log = logging.getLogger("recux")

MODES = ("continual", "retrain")


def backward_transfer(acc: dict[tuple[int, int], float], s: int) -> float | None:
    """BWT after stage s (Lopez-Paz & Ranzato 2017): mean over tasks j < s of R[s][j] - R[j][j]."""
    if s == 0:
        return None
    return float(np.mean([acc[s, j] - acc[j, j] for j in range(s)]))


def forgetting(acc: dict[tuple[int, int], float], s: int) -> float | None:
    """Average forgetting after stage s (Chaudhry et al. 2018): mean over j < s of max_{j<=l<s} R[l][j] - R[s][j]."""
    if s == 0:
        return None
    return float(np.mean([max(acc[m, j] for m in range(j, s)) - acc[s, j] for j in range(s)]))


def _has_weights(model_info: Any) -> bool:
    return (model_info.meta.get("training") == "lightning"
            and "torch_module" in (model_info.meta.get("capabilities") or ()))


def _empty(inter: Interactions) -> Interactions:
    return inter.subset(np.zeros(0, dtype=np.int64))


def _net_state(model: Any) -> dict[str, Any]:
    """A copy of the fitted network's weights (the next stage's ``init_from``)."""
    return {k: v.detach().cpu().clone() for k, v in model.net.state_dict().items()}


@register("task", "continual", variant_params=("mode", "update_data", "update_max_epochs"))
class Continual(Task):
    """Continual updates over time periods: per-period accuracy, forgetting and update cost (or the retrain
    baseline)."""

    def __init__(self, n_periods: int = 4, mode: str = "continual", update_data: str = "all",
                 test_share: float = 0.5, valid_share: float = 0.1, update_max_epochs: int | None = None) -> None:
        if mode not in MODES:
            raise ConfigError(f"task.mode={mode!r} must be one of {', '.join(MODES)} (continual: each update "
                              "starts from the previous weights; retrain: from scratch, the baseline).")
        if update_data not in ("all", "new"):
            raise ConfigError(f"task.update_data={update_data!r} must be 'all' (every row so far) or 'new' (the "
                              "rows since the previous update).")
        if int(n_periods) < 2:
            raise ConfigError(f"task.n_periods={n_periods} must be at least 2 (period 0 trains, later ones "
                              "arrive as updates); e.g. 4.")
        check_shares(test_share, valid_share)
        if update_max_epochs is not None and int(update_max_epochs) < 1:
            raise ConfigError(f"task.update_max_epochs={update_max_epochs} must be a positive number of epochs "
                              "(the budget of each continual update) or null (the model's own max_epochs).")
        self.update_max_epochs = None if update_max_epochs is None else int(update_max_epochs)
        self.n_periods, self.mode, self.update_data = int(n_periods), mode, update_data
        self.test_share, self.valid_share = float(test_share), float(valid_share)

    def settings(self) -> dict[str, Any]:
        return {"n_periods": self.n_periods, "mode": self.mode, "update_data": self.update_data,
                "test_share": self.test_share, "valid_share": self.valid_share,
                "update_max_epochs": self.update_max_epochs}

    def run(self, spec: stages.RunSpec, run_dir: Path) -> dict[str, Any]:
        t_start = time.perf_counter()
        model_info = stages.start_run(spec)  # e.g. an unknown model, lora on EASE, model.lr=-1: refused
        if self.mode == "continual" and not _has_weights(model_info):
            raise ConfigError(
                f"task.mode=continual carries a network's weights from one period to the next, and model "
                f"'{spec.model.name}' ({model_info.meta.get('training')}) has none. Use task.mode=retrain (it "
                "refits from scratch at every period), or a Lightning model (bpr, sasrec, lightgcn, multvae, ...)."
            )
        if stages.global_rank():
            raise ConfigError("task=continual runs on one process; use trainer=cpu or trainer=gpu, not ddp.")
        subsample.refuse(spec, "continual")  # data.train_fraction would otherwise be silently ignored
        from recux.evaluation import build_metrics

        metrics = build_metrics(spec.metric_specs)
        t0 = time.perf_counter()
        dataset = stages.preprocess(spec, stages.load_dataset(spec))
        labels = label_periods(dataset.interactions, self.n_periods, self.test_share, self.valid_share, spec.seed)
        plan = build_stages(dataset.interactions, labels, self.update_data, spec.seed)
        fit_parts = [self._fit_data(dataset, st) for st in plan]
        test_parts = [self._test_data(dataset, st) for st in plan]
        data_seconds = time.perf_counter() - t0
        for part in test_parts:  # every test task is scoreable, before any fitting
            stages.check_protocol(spec, model_info, part)
            stages.attach_grades(metrics, part)
        if test_parts:  # one dataset: its item texts are checked once
            stages.check_metric_texts(spec, metrics, test_parts[0])
        with RunArtifacts(run_dir) as art:
            record = self._run_stages(spec, model_info, metrics, dataset, labels, plan, fit_parts, test_parts,
                                      art, data_seconds, t_start)
        log.info("results written to %s", run_dir / "results.json")
        return record

    def _fit_data(self, dataset, st: Stage) -> stages.PreparedData:
        split = Split(train=st.train, valid=st.valid, test=_empty(st.train), protocol=f"continual_stage{st.index}",
                      time_ordered=True)
        return stages.prepared_from_split(dataset, split, mask=st.seen)

    def _test_data(self, dataset, st: Stage) -> stages.PreparedData:
        split = Split(train=st.history, valid=_empty(st.history), test=st.test,
                      protocol=f"continual_task{st.index}", time_ordered=True)
        return stages.prepared_from_split(dataset, split, mask=st.mask)

    def _run_stages(self, spec, model_info, metrics, dataset, labels, plan, fit_parts, test_parts, art,
                    data_seconds, t_start) -> dict[str, Any]:
        acc: dict[tuple[int, int], dict[str, float]] = {}
        rows, per_user = [], []
        state, fitted, report = None, None, None
        for t, st in enumerate(plan):
            fitted = stages.fit(self._stage_spec(spec, t, state), model_info, fit_parts[t], None)
            if self.mode == "continual":
                state = _net_state(fitted.model)
            t_eval = time.perf_counter()
            for j in range(t + 1):
                ranking = stages.rank(spec, fitted.model, test_parts[j])
                rep = stages.evaluate(spec, metrics, ranking, test_parts[j])
                acc[t, j] = dict(rep.means)
                if j == t:
                    report = rep
                    per_user.append(rep.per_user.with_columns(stage=np.int64(t)))
            rows.append(self._row(spec, st, fit_parts[t], test_parts[t], fitted, acc, t,
                                  time.perf_counter() - t_eval))
            log.info("stage %d (trained through period %d, tested on %d): %s", t, t, t + 1, _brief(rows[-1], spec))
        record = self._record(spec, model_info, dataset, labels, plan, test_parts, fitted, report, acc, rows,
                              data_seconds, t_start)
        self._write_tables(art, dataset, rows, acc, per_user)
        art.set_results(record)
        return record

    def _stage_spec(self, spec: stages.RunSpec, t: int, state: Any) -> stages.RunSpec:
        """The run settings of stage t: its starting weights, and a continual update's epoch budget."""
        if self.mode != "continual" or t == 0:
            return spec
        resolved = spec.resolved
        if self.update_max_epochs is not None:  # a trainer max_epochs only lowers the model's own budget
            trainer = dict(resolved.get("trainer") or {})
            cap = trainer.get("max_epochs")
            trainer["max_epochs"] = self.update_max_epochs if cap in (None, -1) else min(int(cap),
                                                                                          self.update_max_epochs)
            resolved = {**resolved, "trainer": trainer}
        return dataclasses.replace(spec, init_from=state, resolved=resolved)

    def _row(self, spec, st: Stage, fit_part, test_part, fitted, acc, t: int, eval_seconds: float) -> dict:
        timing = stages.timing(fit_part, fitted, eval_seconds, time.perf_counter())
        key = spec.optimized.name
        diag = {k: acc[t, t][k] for k in acc[t, t]}
        return {
            "stage": t, "trained_through_period": t, "test_period": t + 1, "mode": self.mode,
            "update_data": self.update_data, "init": "previous" if self.mode == "continual" and t > 0 else "fresh",
            "n_train": len(st.train), "n_valid": len(st.valid), "n_test": len(st.test),
            "test_users": int(len(test_part.test_users)),
            "fit_seconds": timing["fit_seconds"], "epochs": timing["epochs"],
            "best_epoch": getattr(getattr(fitted.model, "summary", None), "best_epoch", None),
            "train_seconds": round(sum(h.get("epoch_seconds", 0.0) for h in fitted.ctx.history), 4),
            "seconds_per_epoch": timing["seconds_per_epoch"], "eval_seconds": round(eval_seconds, 4),
            **diag,
            f"avg_{key}": float(np.mean([acc[t, j][key] for j in range(t + 1)])),
            f"bwt_{key}": backward_transfer({k: v[key] for k, v in acc.items()}, t),
            f"forgetting_{key}": forgetting({k: v[key] for k, v in acc.items()}, t),
        }

    def _record(self, spec, model_info, dataset, labels, plan, test_parts, fitted, report, acc, rows,
                data_seconds, t_start) -> dict[str, Any]:
        ident = stages.RunIdentity.of(spec)
        cap = f",update_max_epochs={self.update_max_epochs}" if self.update_max_epochs and self.mode == "continual" else ""
        ident = dataclasses.replace(ident, label=f"{ident.label}[{self.mode}:{self.update_data}{cap}]")
        last = test_parts[-1]
        run_timing = {"data_seconds": round(data_seconds, 4),
                      "fit_seconds": round(sum(r["fit_seconds"] for r in rows), 4),
                      "eval_seconds": round(sum(r["eval_seconds"] for r in rows), 4),
                      "epochs": sum(r["epochs"] or 0 for r in rows) or None,
                      "seconds_per_epoch": None, "steps_per_second": None,
                      "total_seconds": round(time.perf_counter() - t_start, 4)}
        record = stages.results_record(spec, ident, model_info, last, fitted, report, run_timing)
        names = list(acc[0, 0])
        record.metrics = {m: float(np.mean([acc[t, t][m] for t in range(len(plan))])) for m in names}
        record.metrics_stderr, record.metrics_ci = {}, None
        record.protocol = f"continual_{self.n_periods}_periods"
        record.split = {**self.settings(), "period_cuts": labels.period_cuts, "train_cuts": labels.train_cuts,
                        "time_ordered": True, "n_train": [r["n_train"] for r in rows],
                        "n_valid": [r["n_valid"] for r in rows], "n_test": [r["n_test"] for r in rows]}
        record.users = {"evaluated": int(sum(r["test_users"] for r in rows)),
                        "excluded_empty_test": 0}
        record.files = {"per_user_metrics": "per_user_metrics.parquet", "continual_table": "continual.parquet",
                        "continual_matrix": "continual_matrix.parquet"}
        record.extra["continual"] = {
            "scheme": self.settings(), "periods": rows,
            "accuracy": [[acc.get((s, j)) for j in range(len(plan))] for s in range(len(plan))],
            "metric": spec.optimized.name,
            "definitions": {"bwt": "Lopez-Paz & Ranzato 2017: mean_{j<s} R[s][j] - R[j][j]",
                            "forgetting": "Chaudhry et al. 2018: mean_{j<s} max_{j<=l<s} R[l][j] - R[s][j]",
                            "R[s][j]": "accuracy of the model after stage s on test task j (period j+1)"},
        }
        return record.to_dict()

    @staticmethod
    def _write_tables(art, dataset, rows, acc, per_user) -> None:
        import polars as pl

        pl.DataFrame(rows).write_parquet(art.path("continual.parquet"))
        pl.DataFrame([{"stage": s, "task": j, "metric": m, "value": float(v)}
                      for (s, j), means in sorted(acc.items()) for m, v in means.items()]).write_parquet(
            art.path("continual_matrix.parquet"))
        frame = pl.concat(per_user, how="diagonal_relaxed").drop("stage")
        values = [c for c in frame.columns if c != "user"]
        frame = frame.group_by("user").agg([pl.col(c).mean() for c in values]).sort("user")
        frame = frame.with_columns(pl.Series("user_id", dataset.user_ids[frame["user"].to_numpy()])).drop("user")
        frame.select(["user_id", *values]).write_parquet(art.path("per_user_metrics.parquet"))


def _brief(row: dict[str, Any], spec: stages.RunSpec) -> str:
    key = spec.optimized.name
    return (f"{key} {row[key]:.4f}, forgetting {row[f'forgetting_{key}']}, fit {row['fit_seconds']:.1f} s, "
            f"{row['epochs']} epochs")
