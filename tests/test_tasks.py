"""Experiment tasks and the staged pipeline: the task kind is registered and found through its entry point, a
task is built from its YAML and chosen by the config, the optimized_metric setting drives early stopping, the
validator and the sweeper's objective, and the sequential-model check reads the split's time_ordered property."""

from __future__ import annotations

from importlib.metadata import entry_points

import numpy as np
import pytest

from recux import registry, stages
from recux.cli.run import objective
from recux.data import Interactions, Split
from recux.errors import ConfigError, PluginError
from recux.pipeline import run_experiment
from recux.splitting import GlobalTemporalSplit, LeaveLastOut, RandomSplit, TemporalSplit
from recux.task import Task
from tests._compose import compose_cfg

FAST = ["dataset=synthetic", "dataset.n_users=120", "dataset.n_items=80", "logger=none", "model=pop"]


def test_task_kind_is_registered_and_found_through_its_entry_point():
    assert "task" in registry.KINDS
    eps = {ep.name: ep.value for ep in entry_points(group=registry.ENTRY_POINT_GROUP)}
    assert eps.get("builtin-tasks") == "recux.plugins.tasks"
    info = registry.get("task", "offline_ranking")
    assert info.obj.__module__ == "recux.plugins.tasks.offline_ranking" and issubclass(info.obj, Task)
    with pytest.raises(PluginError, match="Did you mean 'offline_ranking'"):
        registry.get("task", "offline_rankin")


def test_default_task_is_built_from_its_yaml():
    cfg = compose_cfg([])
    spec = stages.RunSpec.from_config(cfg)
    assert spec.task == stages.PluginSpec("offline_ranking", {})
    assert isinstance(registry.build("task", spec.task.name, spec.task.params), Task)
    with pytest.raises(ConfigError, match="unknown parameter"):
        registry.build("task", "offline_ranking", {"warmup": 3})


def test_run_experiment_runs_the_task_the_config_names(tmp_path, monkeypatch):
    """A task written elsewhere (here: one that only counts test users, reusing the data stages) is chosen by
    `task.name=...`; its count equals the users the default task evaluates on the same data."""

    class CountTestUsers(Task):
        """Counts the users with test interactions."""

        def run(self, spec, run_dir):
            data = stages.prepare_data(spec)
            return {"status": "ok", "n_test_users": len(data.test_users)}

    info = registry.PluginInfo("task", "count_test_users", CountTestUsers, "Counts test users")
    monkeypatch.setitem(registry._REGISTRY["task"], "count_test_users", info)
    counted = run_experiment(compose_cfg(FAST + ["task.name=count_test_users"]), tmp_path / "count")
    full = run_experiment(compose_cfg(FAST), tmp_path / "full")
    assert counted["n_test_users"] == full["users"]["evaluated"] > 0
    assert not (tmp_path / "count" / "results.json").exists()
    assert full["task"] == "offline_ranking" and full["schema"] == 2


@pytest.mark.parametrize("bad", ["ndcg", "ndcg@0", "ndcg@ten", "gini@10", "NDCG@10"])
def test_optimized_metric_is_validated_with_a_clear_error(bad):
    with pytest.raises(ConfigError, match="optimized_metric=.*e.g. optimized_metric=ndcg@10"):
        stages.RunSpec.from_config(compose_cfg([f"optimized_metric={bad}"]))


def test_optimized_metric_drives_monitor_validator_and_objective(tmp_path, monkeypatch):
    info = registry.get("model", "pop")
    seen = []
    original_fit = info.obj.fit

    def spy_fit(self, ctx):
        seen.append((ctx.monitor, ctx.validate.k))
        return original_fit(self, ctx)

    monkeypatch.setattr(info.obj, "fit", spy_fit)
    results = run_experiment(compose_cfg(FAST + ["optimized_metric=recall@5"]), tmp_path / "r5")
    assert seen == [("recall@5", 5)]
    assert results["optimized_metric"] == "recall@5"
    assert set(results["valid_metrics"]) == {f"{m}@5" for m in ("precision", "recall", "ndcg", "mrr", "map", "hit")}
    assert objective(results) == results["valid_metrics"]["recall@5"]
    default = run_experiment(compose_cfg(FAST), tmp_path / "default")
    assert seen[-1] == ("ndcg@10", 10)
    assert objective(default) == default["valid_metrics"]["ndcg@10"]
    # the test metrics do not depend on which validation metric is optimised (pop does not early-stop)
    assert default["metrics"] == results["metrics"]
    assert default["variant_hash"] != results["variant_hash"] and default["data_hash"] == results["data_hash"]


def _latest_test(split: Split, inter: Interactions) -> bool:
    """True when, for every user, no training interaction is later than any of the user's test ones."""
    last_train = np.full(inter.n_users, -np.inf)
    np.maximum.at(last_train, split.train.user, split.train.timestamp)
    return bool(np.all(split.test.timestamp >= last_train[split.test.user]))


@pytest.mark.parametrize("split_obj", [RandomSplit(), TemporalSplit(), LeaveLastOut(), GlobalTemporalSplit()])
def test_time_ordered_property_states_whether_test_items_are_the_latest(split_obj):
    rng = np.random.default_rng(0)
    n = 3000
    inter = Interactions(user=rng.integers(0, 60, n), item=rng.integers(0, 90, n), n_users=60, n_items=90,
                         timestamp=rng.integers(0, 10**6, n))
    split = split_obj.split(inter, seed=0)
    assert split.time_ordered is type(split_obj).time_ordered
    assert split.time_ordered == _latest_test(split, inter)


def test_sequential_check_reads_the_time_ordered_property_not_the_protocol_name():
    sequential = registry.PluginInfo("model", "seq", object, "", {"protocol": "sequential"})
    spec = stages.RunSpec.from_config(compose_cfg(FAST))
    inter = Interactions(user=np.array([0, 0, 0]), item=np.array([0, 1, 2]), n_users=1, n_items=30,
                         timestamp=np.array([1, 2, 3]))
    dataset = registry.build("dataset", "synthetic", {"n_users": 5, "n_items": 30}).load()

    def prepared(protocol: str, time_ordered: bool) -> stages.PreparedData:
        split = Split(inter.subset(np.array([True, False, False])), inter.subset(np.array([False, True, False])),
                      inter.subset(np.array([False, False, True])), protocol=protocol, time_ordered=time_ordered)
        return stages.PreparedData(dataset, split, split.train.csr(), split.valid.csr(), split.test.csr(),
                                   np.array([0]), np.array([0]), 0.0)

    with pytest.raises(ConfigError, match="split=loo"):
        stages.check_protocol(spec, sequential, prepared("temporal_looks_ordered", time_ordered=False))
    stages.check_protocol(spec, sequential, prepared("custom_protocol", time_ordered=True))


def test_label_names_the_strategy_unless_it_is_the_registered_baseline():
    spec = stages.RunSpec.from_config(compose_cfg(FAST))
    assert registry.get("finetune", spec.finetune.name).meta["baseline"] is True
    assert stages.RunIdentity.of(spec).label == "pop"
    assert stages.build_label("bpr", "lora", []) == "bpr+lora"
    assert stages.build_label("bpr", None, ["dataset.n_users=9", "preprocess=implicit", "task=x"]) == "bpr"
