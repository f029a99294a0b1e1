"""Simulated online A/B test: users of the dataset are randomly assigned to a control policy and one or more
treatment models trained on the training split; a seeded user simulator (recux.simulation) plays their sessions
and the arms are compared on click-through, conversion, satisfaction and retention (lift, CI, p-value, MDE,
CUPED, sequential looks; recux.simulation.experiment).

The simulated world (the preference oracle) is, by ``task.oracle``:
  * ``true_scores``: the synthetic dataset's true preferences (``Dataset.true_scores``);
  * a model name (e.g. ``ease``, ``ials``): semi-synthetic, that model fitted on ALL the dataset's interactions
    (the world, not a contestant: the arms only ever see the training split). A model of the oracle's own family
    looks better than it is; run the test under two oracles of different families (``task.oracle=ease`` and
    ``task.oracle=ials``) and trust the conclusions that hold under both;
  * ``auto``: true_scores when the dataset has them, else ease.
The oracle's scores become click attractiveness calibrated to ``task.target_ctr`` (recux.simulation.oracle).

Policies are fixed per user: each arm shows every session the user's top ``slate_size`` items of its model, with
the user's training and validation items masked (the control ``random`` is a fixed random list per user). The
pre-period (CUPED's covariate, the MDE's variance) shows every user the control. ``task.aa=true``: an A/A test,
the control against itself (no treatment is fitted): its p-values are uniform and its false positives alpha.

results.json: ``metrics`` holds the first treatment's arm means and its lifts (``<metric>_lift`` relative,
``<metric>_p``); ``ab_test`` holds every arm, comparison, the sequential looks and the simulator's settings.
Plots: ab_lifts.png (lifts with CIs), ab_looks.png (p-values at the sequential looks).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from recux import identity, registry, stages
from recux.data import Split
from recux.errors import ConfigError
from recux.registry import register
from recux.results import RunArtifacts, library_versions, run_config_hash
from recux.task import Task
from recux.tracking import make_tracker

log = logging.getLogger("recux")

SIMULATOR_KEYS = ("slate_size", "examination_eta", "conversion_scale", "n_sessions", "return_base", "return_gain")


@dataclasses.dataclass
class SimulatedWorld:
    """What an A/B simulation runs on: the prepared data, the users in the experiment, the oracle, each arm's
    model and slates (the control first), the simulator's seed and the seconds spent building it."""

    data: stages.PreparedData
    users: np.ndarray
    oracle: Any
    arms: dict[str, stages.PluginSpec]
    slates: dict[str, np.ndarray]
    seed: int
    timing: dict[str, float]


@register("task", "ab_test", variant_params=("treatments", "aa"))
class ABTest(Task):
    """Simulated online A/B test of trained models against a control policy (seeded user simulator)."""

    def __init__(self, control: str = "pop", treatments: list | None = None, aa: bool = False, oracle: str = "auto",
                 oracle_params: dict | None = None, target_ctr: float = 0.05, temperature: float = 1.0,
                 user_heterogeneity: float = 0.5, slate_size: int = 10, examination_eta: float = 1.0,
                 conversion_scale: float = 0.3, n_sessions: int = 5, return_base: float = 0.7,
                 return_gain: float = 3.0, alpha: float = 0.05, power: float = 0.8, cuped: bool = True,
                 n_looks: int = 10, msprt_tau: float | None = None, primary: str = "ctr",
                 sim_seed: int | None = None) -> None:
        from recux.simulation.experiment import ABSettings
        from recux.simulation.oracle import check_oracle_settings
        from recux.simulation.sessions import ClickModel

        self.click = ClickModel(int(slate_size), float(examination_eta), float(conversion_scale), int(n_sessions),
                                float(return_base), float(return_gain))
        self.ab = ABSettings(float(alpha), float(power), bool(cuped), int(n_looks),
                             None if msprt_tau is None else float(msprt_tau), str(primary))
        check_oracle_settings(float(target_ctr), float(self.click.exam.mean()), float(temperature),
                              float(user_heterogeneity))
        if aa and treatments:
            raise ConfigError("task.aa=true compares the control with itself; remove task.treatments (or set "
                              "task.aa=false).")
        self.control, self.aa, self.oracle = str(control), bool(aa), str(oracle)
        self.treatments = [_plugin(t) for t in (treatments or [])]
        self.oracle_params = dict(oracle_params or {})
        self.target_ctr, self.temperature = float(target_ctr), float(temperature)
        self.heterogeneity = float(user_heterogeneity)
        self.sim_seed = sim_seed

    def run(self, spec: stages.RunSpec, run_dir: Path) -> dict[str, Any]:
        from recux.simulation.experiment import run_ab

        t_start = time.perf_counter()
        stages.seed_everything(spec.seed)
        if stages.global_rank():
            raise ConfigError("task=ab_test runs on one process; use trainer=cpu or trainer=gpu, not ddp.")
        tracker = make_tracker(spec.resolved.get("logger"), run_dir, spec.resolved, name=f"ab_test-s{spec.seed}",
                               group=identity.data_hash(spec.resolved), tags=[spec.dataset.name, "ab_test"])
        try:
            with RunArtifacts(run_dir) as art:
                world = self.build_world(spec, art)
                t0 = time.perf_counter()
                result = run_ab(world.slates, world.users, world.oracle.attract, self.click, world.seed, self.ab)
                timing = {**world.timing, "simulation_seconds": round(time.perf_counter() - t0, 4),
                          "total_seconds": round(time.perf_counter() - t_start, 4)}
                record = self._record(spec, world.data, world.arms, world.oracle, result.to_dict(), world.users,
                                      timing)
                self._write(art, record["ab_test"])
                art.set_results(record)
            _track(tracker, record)
            tracker.finish(0)
        except BaseException:
            tracker.finish(1)
            raise
        log.info("A/B test: %s", _brief(record))
        _warn_peeking(record["ab_test"]["sequential"])
        return record

    def build_world(self, spec: stages.RunSpec, art: RunArtifacts) -> SimulatedWorld:
        """Data, the calibrated oracle and every arm's slates (models fitted in ``art``'s staging folder): all the
        experiment needs before simulating (scripts/ab_offline_online.py reuses it)."""
        arms_spec = self._arms(spec)
        for arm_spec in arms_spec.values():
            stages.check_model_settings(dataclasses.replace(spec, model=arm_spec), registry.get("model",
                                                                                                 arm_spec.name))
        data = stages.prepare_data(spec)
        if self.click.slate_size >= data.dataset.n_items:
            raise ConfigError(f"task.slate_size={self.click.slate_size} must be smaller than the catalogue "
                              f"({data.dataset.n_items} items)")
        users = np.flatnonzero(np.diff(data.train_csr.indptr) > 0)
        seed = spec.seed if self.sim_seed is None else int(self.sim_seed)
        t0 = time.perf_counter()
        oracle = self._oracle(spec, data, seed, art)
        oracle_seconds = time.perf_counter() - t0
        t0 = time.perf_counter()
        slates = {name: self._slates(spec, arm, data, users, art) for name, arm in arms_spec.items()}
        timing = {"data_seconds": round(data.seconds, 4), "oracle_seconds": round(oracle_seconds, 4),
                  "fit_seconds": round(time.perf_counter() - t0, 4)}
        return SimulatedWorld(data, users, oracle, arms_spec, slates, seed, timing)

    # -- arms
    def _arms(self, spec: stages.RunSpec) -> dict[str, stages.PluginSpec]:
        """Arm name -> model plugin: the control first, then the treatments (A/A: the control twice)."""
        control = _plugin(self.control)
        if self.aa:
            return {"control": control, "control_b": control}
        treatments = self.treatments or [spec.model]
        arms = {"control": control}
        for t in treatments:
            name = t.name if t.name not in arms else f"{t.name}_{len(arms)}"
            arms[name] = t
        return arms

    def _fit(self, spec: stages.RunSpec, plugin: stages.PluginSpec, data: stages.PreparedData, run_dir: Path):
        arm_spec = dataclasses.replace(spec, model=plugin)
        return stages.fit(arm_spec, registry.get("model", plugin.name), data, run_dir).model

    def _slates(self, spec, plugin, data, users, art) -> np.ndarray:
        """Each user's top slate_size items of the arm's model, training (and validation) items masked."""
        from recux.ranking import rank_topk

        model = self._fit(spec, plugin, data, art.stage)
        model.condition_on(stages.concat(data.split.train, data.split.valid))
        topk, _ = rank_topk(model.score, users, self.click.slate_size, exclude=stages.known_items(spec, data),
                            batch_size=spec.batch_size)
        return topk

    # -- oracle
    def _oracle(self, spec, data, seed, art):
        from recux.simulation.oracle import Oracle

        dataset = data.dataset
        kind = self.oracle
        if kind == "auto":
            kind = "true_scores" if dataset.true_scores is not None else "ease"
        if kind == "true_scores":
            if dataset.true_scores is None:
                raise ConfigError(f"task.oracle=true_scores needs a dataset with true preferences (dataset="
                                  f"synthetic); {dataset.name} has none: use task.oracle=ease (or another model).")
            scores, source = dataset.true_scores, "true_scores"
        else:
            scores, source = self._model_oracle(spec, data, kind, art), f"model:{kind} fitted on all interactions"
        return Oracle.calibrated(scores, self.target_ctr, float(self.click.exam.mean()), self.temperature,
                                 self.heterogeneity, seed, source)

    def _model_oracle(self, spec, data, name: str, art) -> np.ndarray:
        from recux.ranking import to_numpy

        everything = data.dataset.interactions
        empty = everything.subset(np.zeros(0, dtype=np.int64))
        world = stages.prepared_from_split(data.dataset, Split(train=everything, valid=empty, test=empty,
                                                               protocol="oracle_all_interactions"))
        plugin = stages.PluginSpec(name, {**_default_params(name), **self.oracle_params})
        model = self._fit(spec, plugin, world, art.stage)
        users = np.arange(data.dataset.n_users)
        return np.concatenate([np.asarray(to_numpy(model.score(users[i:i + 1024])), dtype=np.float32)
                               for i in range(0, len(users), 1024)])

    # -- record
    def settings(self) -> dict[str, Any]:
        return {"control": self.control, "aa": self.aa, "treatments": [t.name for t in self.treatments],
                "oracle": self.oracle, "oracle_params": self.oracle_params, "target_ctr": self.target_ctr,
                "temperature": self.temperature, "user_heterogeneity": self.heterogeneity, "sim_seed": self.sim_seed,
                **dataclasses.asdict(self.ab)}

    def _record(self, spec, data, arms_spec, oracle, result, users, timing) -> dict[str, Any]:
        from recux.record import ResultsRecord

        ident = stages.RunIdentity.of(spec)
        add_holm(result["comparisons"])
        names = result["arms"]
        first = names[1]
        treated = first if self.treatments else ident.label  # the run's model keeps its override label
        label = f"aa:{self.control}" if self.aa else f"{treated} vs {self.control}"
        metrics: dict[str, float] = {}
        for m, cmp in result["comparisons"][first].items():
            metrics.update({m: result["arm_means"][first][m], f"{m}_control": result["arm_means"]["control"][m],
                            f"{m}_lift": cmp["plain"]["relative"], f"{m}_p": cmp["plain"]["p"],
                            f"{m}_p_holm": cmp["plain"]["p_holm"]})
            if "cuped" in cmp:
                metrics[f"{m}_p_cuped"] = cmp["cuped"]["p"]
                metrics[f"{m}_p_cuped_holm"] = cmp["cuped"]["p_holm"]
        now = datetime.now(timezone.utc)
        dataset, split = data.dataset, data.split
        import uuid

        record = ResultsRecord(
            run_id=f"{now:%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}", created=now.isoformat(timespec="seconds"),
            task=spec.task.name, label=label, variant_hash=ident.variant_hash, data_hash=ident.data_hash,
            config_hash=run_config_hash(spec.resolved), seed=spec.seed,
            dataset={"name": dataset.name, "n_users": dataset.n_users, "n_items": dataset.n_items,
                     "n_interactions": len(dataset.interactions)},
            protocol=f"ab_test_{split.protocol}",
            split={**spec.resolved["split"], **split.settings, "n_train": len(split.train),
                   "n_valid": len(split.valid), "n_test": len(split.test)},
            preprocessing=dataset.info.get("preprocessing", spec.resolved.get("preprocess")),
            model={"name": first if self.aa else arms_spec[first].name,
                   "params": arms_spec[first].params},
            finetune={"name": spec.finetune.name, "params": spec.finetune.params,
                      "baseline": ident.baseline_finetune},
            optimized_metric=spec.optimized.name, metrics=metrics,
            directions={k: not k.endswith(("_p", "_p_cuped", "_p_holm", "_p_cuped_holm")) for k in metrics},
            users={"evaluated": int(len(users)), "excluded_empty_test": int(dataset.n_users - len(users))},
            timing=timing, device={"accelerator": "cpu", "devices": 1, "trainer_used": False},
            peak_memory_mb=round(stages.peak_memory_mb(), 1), versions=library_versions(), config=spec.resolved,
            files={"ab_lifts_plot": "ab_lifts.png", "ab_looks_plot": "ab_looks.png"},
            extra={"ab_test": {**result, "settings": self.settings(), "oracle": oracle.describe(),
                               "click_model": self.click.describe(),
                               "arm_models": {n: {"name": s.name, "params": s.params} for n, s in arms_spec.items()},
                               "test": "Welch t on per-user values (the user is the unit of randomisation)"}},
        )
        return record.to_dict()

    def _write(self, art: RunArtifacts, result: dict[str, Any]) -> None:
        from recux.simulation.plots import plot_lifts, plot_looks

        art.path("ab_lifts.png").write_bytes(plot_lifts(result, self.ab.alpha))
        art.path("ab_looks.png").write_bytes(plot_looks(result, self.ab.alpha))


def _plugin(node: Any) -> stages.PluginSpec:
    """A model given as a name (its conf/model defaults) or a mapping with ``name`` and parameters."""
    if isinstance(node, str):
        return stages.PluginSpec(node, _default_params(node))
    return stages.PluginSpec.of(node)


def _default_params(name: str) -> dict[str, Any]:
    """The parameters of conf/model/<name>.yaml (a model without a YAML gets its constructor's defaults)."""
    from importlib.resources import files

    from omegaconf import OmegaConf

    path = files("recux.conf") / "model" / f"{name}.yaml"
    if not path.is_file():
        registry.get("model", name)  # an unknown name fails here with the list of models
        return {}
    params = OmegaConf.to_container(OmegaConf.load(str(path)), resolve=True)
    assert isinstance(params, dict)
    params.pop("name", None)
    params.pop("defaults", None)
    return params


def _warn_peeking(seq: dict[str, Any]) -> None:
    """Warn where stopping at the first naive look with p < alpha would have decided otherwise than the test."""
    for name, look in seq.items():
        r = look["rejects"]
        if r["naive_any_look"] and not (r["fixed_horizon"] and r["msprt"]):
            log.warning("%s: a naive t-test at an interim look has p < alpha, but the %s does not reject. %s", name,
                        "final look" if not r["fixed_horizon"] else "always-valid mSPRT", look["warning"])


def _brief(record: dict[str, Any]) -> str:
    m = record["metrics"]
    return ", ".join(f"{k} {m[k]:.4g} (control {m[k + '_control']:.4g}, lift {m[k + '_lift']:+.2%}, "
                     f"p {m[k + '_p']:.3g})" for k in ("ctr", "retention") if k in m)


ARM_COLUMNS = ["arm", "users", "ctr", "conversion", "satisfaction", "retention", "ctr_lift", "ctr_lift_ci_low",
               "ctr_lift_ci_high", "ctr_p", "ctr_p_cuped"]


def arm_rows(ab: dict[str, Any]) -> list[list[Any]]:
    """One row per arm (ARM_COLUMNS): per-user means, and for treatments the CTR lift over the control with its
    CI and p-values (plain and CUPED); None for the control's comparison cells."""
    rows = []
    for arm, n in zip(ab["arms"], ab["sizes"], strict=True):
        means = [ab["arm_means"][arm][m] for m in ("ctr", "conversion", "satisfaction", "retention")]
        cmp = (ab["comparisons"].get(arm) or {}).get("ctr")
        lift = [None] * 5 if cmp is None else [cmp["plain"]["relative"], cmp["plain"]["relative_ci_low"],
                                               cmp["plain"]["relative_ci_high"], cmp["plain"]["p"],
                                               cmp["cuped"]["p"]]
        rows.append([arm, int(n), *means, *lift])
    return rows


def _track(tracker: Any, record: dict[str, Any]) -> None:
    """The run's metrics as the W&B summary and every arm as a W&B table (nothing without a W&B logger)."""
    tracker.summary({f"test/{k}": v for k, v in record["metrics"].items()})
    tracker.log_table("ab_test/arms", ARM_COLUMNS, arm_rows(record["ab_test"]))


def add_holm(comparisons: dict[str, dict[str, Any]]) -> None:
    """Holm-corrected p-values across the treatments, per metric and per test (plain, CUPED): ``p_holm`` beside
    each ``p`` (recux.significance.holm), so a run with several treatments controls its family-wise error."""
    from recux.significance import holm

    arms = list(comparisons)
    metrics = {m for arm in arms for m in comparisons[arm]}
    for m in metrics:
        for test in ("plain", "cuped"):
            cells = [comparisons[a][m][test] for a in arms if test in comparisons[a].get(m, {})]
            for cell, p in zip(cells, holm([c["p"] for c in cells]), strict=True):
                cell["p_holm"] = float(p)
