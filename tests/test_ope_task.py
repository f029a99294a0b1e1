"""task=ope end to end on a small synthetic A/B log (an obd-layout folder): results.json's estimates equal the
estimators run directly, the relative error is against the evaluation policy's own log, and bad settings fail
before any work."""

from __future__ import annotations

import json

import numpy as np
import pytest

from recux.errors import ConfigError
from recux.ope.estimators import IPW, SNIPW
from recux.ope.evaluate import ope_inputs
from recux.pipeline import run_experiment
from recux.plugins.datasets.obd import OpenBanditDataset
from tests._compose import compose_cfg

N_ITEMS = 4


def _log(policy: str, n: int, rng: np.random.Generator) -> str:
    rows = [",timestamp,item_id,position,click,propensity_score,user_feature_0,user_feature_1,user_feature_2,"
            "user_feature_3"]
    for i in range(n):
        item = rng.integers(0, N_ITEMS)
        pscore = 1 / N_ITEMS if policy == "random" else rng.choice([0.1, 0.4])
        click = rng.binomial(1, 0.1 + 0.1 * item)
        feats = ",".join(f"f{j}{rng.integers(0, 2)}" for j in range(4))
        rows.append(f"{i},2019-11-24 00:{i // 60:02d}:{i % 60:02d}.0+00:00,{item},{rng.integers(1, 3)},{click},"
                    f"{pscore},{feats}")
    return "\n".join(rows) + "\n"


@pytest.fixture(scope="module")
def obd_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("obd")
    rng = np.random.default_rng(0)
    items = ",item_id,item_feature_0,item_feature_1,item_feature_2,item_feature_3\n" + "".join(
        f"{a},{a},{a / 10},c{a % 2},d,e\n" for a in range(N_ITEMS))
    for policy in ("random", "bts"):
        (root / policy / "all").mkdir(parents=True)
        (root / policy / "all" / "all.csv").write_text(_log(policy, 600, rng))
        (root / policy / "all" / "item_context.csv").write_text(items)
    (root / "prior_bts.yaml").write_text("all:\n  alpha: [2.0, 3.0, 4.0, 5.0]\n  beta: [9.0, 9.0, 9.0, 9.0]\n")
    return root


def test_ope_task_writes_the_estimates(obd_folder, tmp_path):
    cfg = compose_cfg(["task=ope", "dataset=obd", f"dataset.path={obd_folder}", "logger=none",
                       "task.n_sim=2000", "task.n_runs=2", "task.ci.n_bootstrap_samples=200",
                       "task.reward_model.n_folds=2", "task.cache_action_dist=false"])
    record = run_experiment(cfg, tmp_path / "run")
    on_disk = json.loads((tmp_path / "run" / "results.json").read_text())
    assert on_disk["metrics"] == record["metrics"]
    logs = OpenBanditDataset(path=str(obd_folder)).load()
    truth = logs["bts"].reward.mean()
    assert record["metrics"]["on_policy_value"] == pytest.approx(truth)
    from recux.ope.bts import bts_action_dist

    dist = bts_action_dist(logs.priors["bts"]["alpha"], logs.priors["bts"]["beta"], 2, n_sim=2000,
                           random_state=12345)
    inp = ope_inputs(logs["random"], dist, None)
    for est in (IPW(), SNIPW()):
        assert record["metrics"][f"{est.name}/estimate"] == pytest.approx(est.estimate(inp))
        assert record["metrics"][f"{est.name}/relative_error"] == pytest.approx(
            abs(est.estimate(inp) - truth) / truth)
        lo, hi = record["metrics_ci"][f"{est.name}/estimate"]
        assert lo <= record["metrics"][f"{est.name}/estimate"] <= hi
    assert set(record["ope"]["runs"]["summary"]) == {"dm", "ipw", "snipw", "dr", "sndr", "switch-dr", "dr-os"}
    assert (tmp_path / "run" / "ope_table.md").exists()


def test_ope_task_refuses_bad_settings(obd_folder, tmp_path):
    with pytest.raises(ConfigError, match="both 'random'"):
        run_experiment(compose_cfg(["task=ope", "dataset=obd", "task.evaluation_policy=random"]), tmp_path / "a")
    with pytest.raises(ConfigError, match="unknown estimator"):
        run_experiment(compose_cfg(["task=ope", "dataset=obd", "task.estimators=[dm,magic]"]), tmp_path / "b")
    with pytest.raises(ConfigError, match="bandit feedback"):
        run_experiment(compose_cfg(["task=ope", "dataset=synthetic", "logger=none"]), tmp_path / "c")
