"""Off-policy estimation on logged A/B data: estimate the evaluation policy's value from the behaviour policy's
log with each estimator (estimate + bootstrap CI), and score each against the evaluation policy's on-policy value
(its own log's mean reward). With ``n_runs > 0`` also OBP's protocol: the relative error's mean and std over
``n_runs`` bootstrap resamples of the log (recux.ope.protocol).

  recux task=ope dataset=obd [task.behavior_policy=bts task.evaluation_policy=random] [task.n_runs=30]

Writes results.json (metrics ``<estimator>/estimate``, ``<estimator>/relative_error`` and, with n_runs,
``<estimator>/relative_error_mean`` and ``_std``; CIs in ``metrics_ci``) and ope_table.md in the run folder.
"""

from __future__ import annotations

import logging
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from recux import identity, registry, stages
from recux.errors import ConfigError
from recux.record import ResultsRecord
from recux.registry import register
from recux.results import RunArtifacts, library_versions, run_config_hash
from recux.task import Task
from recux.tracking import make_tracker

log = logging.getLogger("recux")

REWARD_MODELS = ("logistic", "ctr", "none")
# settings that choose the estimators, not the data: they belong to the variant (identity.variant_settings)
VARIANT_PARAMS = ("estimators", "lambdas", "tuning_method", "tuning_delta", "reward_model", "n_sim",
                  "policy_seed")


@register("task", "ope", variant_params=VARIANT_PARAMS)
class OffPolicyEstimation(Task):
    """Off-policy estimators (DM, IPW, SNIPW, DR, SNDR, Switch-DR, DRos) validated on real A/B logs."""

    def __init__(self, behavior_policy: str = "random", evaluation_policy: str = "bts",
                 estimators: list[str] | None = None, lambdas: list[float] | None = None,
                 tuning_method: str = "slope", tuning_delta: float = 0.1,
                 reward_model: dict[str, Any] | None = None, n_sim: int = 1_000_000, policy_seed: int = 12345,
                 ci: dict[str, Any] | None = None, n_runs: int = 0, cache_action_dist: bool = True,
                 workers: int = 2) -> None:
        from recux.ope.evaluate import ESTIMATOR_NAMES, OBP_LAMBDAS

        if behavior_policy == evaluation_policy:
            raise ConfigError(f"task.behavior_policy and task.evaluation_policy are both {behavior_policy!r}; "
                              "off-policy estimation needs two different policies")
        self.behavior, self.evaluation = behavior_policy, evaluation_policy
        self.estimator_names = list(estimators or ESTIMATOR_NAMES)
        self.lambdas = [float(x) for x in (lambdas if lambdas is not None else OBP_LAMBDAS)]
        self.tuning_method, self.tuning_delta = tuning_method, float(tuning_delta)
        self.reward_model = dict(reward_model or {"name": "logistic"})
        if self.reward_model.get("name", "logistic") not in REWARD_MODELS:
            raise ConfigError(f"task.reward_model.name must be one of {REWARD_MODELS}, "
                              f"got {self.reward_model.get('name')!r}")
        self.n_sim, self.policy_seed = int(n_sim), policy_seed
        self.ci = {"alpha": 0.05, "n_bootstrap_samples": 10_000, "random_state": 0, **(ci or {})}
        self.n_runs = int(n_runs)
        self.cache_action_dist = bool(cache_action_dist)
        self.workers = int(workers)
        if self.workers < 1:
            raise ConfigError(f"task.workers must be >= 1 (threads for the bootstrap runs), got {workers}")
        self._make_estimators()  # unknown names and bad lambdas fail here, before loading data

    def _make_estimators(self):
        from recux.ope.evaluate import make_estimators

        return make_estimators(self.estimator_names, self.lambdas, self.tuning_method, self.tuning_delta)

    def _reward_model(self):
        from recux.ope.reward_model import CTRRewardModel, LogisticRewardModel

        params = {k: v for k, v in self.reward_model.items() if k != "name"}
        name = self.reward_model.get("name", "logistic")
        if name == "none":
            return None
        try:
            model = LogisticRewardModel(**params) if name == "logistic" else CTRRewardModel(**params)
        except TypeError as exc:
            raise ConfigError(f"task.reward_model ({name}): {exc}") from exc
        return model

    def run(self, spec: stages.RunSpec, run_dir: Path) -> dict[str, Any]:
        from recux.bandit import BanditLogs

        t_start = time.perf_counter()
        stages.seed_everything(spec.seed)
        logs = registry.build("dataset", spec.dataset.name, spec.dataset.params).load()
        if not isinstance(logs, BanditLogs):
            raise ConfigError(f"task=ope needs logged bandit feedback (e.g. dataset=obd); dataset "
                              f"{spec.dataset.name!r} is a ranking dataset")
        label = f"{self.behavior}->{self.evaluation}"
        tracker = make_tracker(spec.resolved.get("logger"), run_dir, spec.resolved, name=f"ope-{label}",
                               group=identity.data_hash(spec.resolved), tags=[spec.dataset.name, "ope"])
        try:
            with RunArtifacts(run_dir) as art:
                record = self._estimate(spec, logs, label, art, t_start)
                art.set_results(record.to_dict())
            tracker.summary({f"test/{k}": v for k, v in record.metrics.items()})
            tracker.finish(0)
        except BaseException:
            tracker.finish(1)
            raise
        log.info("results written to %s", run_dir / "results.json")
        return record.to_dict()

    def _estimate(self, spec, logs, label, art, t_start) -> ResultsRecord:
        from recux.ope.evaluate import evaluate, ope_inputs
        from recux.ope.protocol import bootstrap_runs, start_action_dist

        data, truth = logs[self.behavior], logs[self.evaluation].on_policy_value
        timing: dict[str, Any] = {}
        future = start_action_dist(self.evaluation, logs, data.n_actions, data.len_list, self.n_sim,
                                   self.policy_seed, cache=self.cache_action_dist)
        model = self._reward_model()
        protocol = None
        if self.n_runs > 0:  # first: its reward models are fitted while the action distribution is computed
            protocol = bootstrap_runs(data, future, truth, self.n_runs, model, self._make_estimators, self.workers)
            timing.update({f"runs_{k}": v for k, v in protocol.times.items()})
        dist = future.result()
        timing.update(future.seconds)
        t0 = time.perf_counter()
        q_hat = model.fit_predict(data) if model is not None else None
        timing["reward_model_s"] = time.perf_counter() - t0
        rows = evaluate(self._make_estimators(), ope_inputs(data, dist, q_hat), truth, ci=self.ci)
        metrics: dict[str, float] = {"on_policy_value": truth}
        directions: dict[str, bool] = {"on_policy_value": True}
        cis: dict[str, list[float]] = {}
        for name, row in rows.items():
            metrics[f"{name}/estimate"] = row["estimate"]
            metrics[f"{name}/relative_error"] = row["relative_error"]
            directions[f"{name}/estimate"], directions[f"{name}/relative_error"] = True, False
            cis[f"{name}/estimate"] = [row["ci"]["lower"], row["ci"]["upper"]]
        if protocol is not None:
            for name, s in protocol.summary().items():
                metrics[f"{name}/relative_error_mean"], metrics[f"{name}/relative_error_std"] = s["mean"], s["std"]
                directions[f"{name}/relative_error_mean"] = directions[f"{name}/relative_error_std"] = False
        timing["total_s"] = time.perf_counter() - t_start
        art.path("ope_table.md").write_text(_table(rows, protocol), encoding="utf-8")
        now = datetime.now(timezone.utc)
        return ResultsRecord(
            run_id=f"{now:%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}", created=now.isoformat(timespec="seconds"),
            task="ope", label=label, variant_hash=identity.variant_hash(spec.resolved),
            data_hash=identity.data_hash(spec.resolved), config_hash=run_config_hash(spec.resolved),
            seed=spec.seed,
            dataset={"name": spec.dataset.name, "n_rounds": data.n_rounds, "n_items": data.n_actions,
                     "len_list": data.len_list, "info": dict(logs.info)},
            protocol="ope", model={"name": label, "params": {"reward_model": self.reward_model}},
            finetune={"name": "none", "baseline": True},
            optimized_metric="dr-os/relative_error" if "dr-os" in rows else f"{next(iter(rows))}/relative_error",
            metrics=metrics, metrics_ci=cis, directions=directions,
            timing=timing, versions=library_versions(), config=spec.resolved,
            files={"table": "ope_table.md"},
            extra={"ope": {"behavior_policy": self.behavior, "evaluation_policy": self.evaluation,
                           "ground_truth": "the evaluation policy's on-policy value (mean reward of its log)",
                           "estimators": rows,
                           "runs": None if protocol is None else {
                               "n_runs": self.n_runs, "summary": protocol.summary(),
                               "lambdas": protocol.lambdas}}},
        )


def _table(rows: dict[str, dict[str, Any]], protocol: Any) -> str:
    head = "| estimator | estimate | 95% CI | relative error |" + (" runs: mean ± std |" if protocol else "")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    summary = protocol.summary() if protocol else {}
    for name, row in rows.items():
        ci = row["ci"]
        line = (f"| {name} | {row['estimate']:.6f} | [{ci['lower']:.6f}, {ci['upper']:.6f}] | "
                f"{row['relative_error']:.4f} |")
        if protocol:
            line += f" {summary[name]['mean']:.4f} ± {summary[name]['std']:.4f} |"
        lines.append(line)
    return "\n".join(lines) + "\n"
