"""End to end: a composed config runs, writes its artefacts, and every accuracy number in results.json can be
recomputed independently from recommendations.parquet and split/test.parquet."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from recux.cli.run import CONF_DIR
from recux.errors import ConfigError, PluginError
from recux.pipeline import build_label, run_experiment
from tests._compose import compose_cfg
from tests._scripts import load_script

FAST = ["dataset=synthetic", "logger=none", "model=itemknn"]


def run(tmp_path: Path, overrides: list[str], name: str = "run") -> tuple[dict, Path]:
    run_dir = tmp_path / name
    return run_experiment(compose_cfg(overrides), run_dir, overrides), run_dir


def test_run_writes_artefacts_that_reproduce_every_accuracy_metric(tmp_path):
    results, run_dir = run(tmp_path, FAST)
    for f in ("results.json", "per_user_metrics.parquet", "recommendations.parquet",
              "split/train.parquet", "split/valid.parquet", "split/test.parquet"):
        assert (run_dir / f).exists(), f
    on_disk = json.loads((run_dir / "results.json").read_text())
    assert on_disk["metrics"] == pytest.approx(results["metrics"])
    recs = pl.read_parquet(run_dir / "recommendations.parquet")
    train = pl.read_parquet(run_dir / "split/train.parquet")
    valid = pl.read_parquet(run_dir / "split/valid.parquet")
    test = pl.read_parquet(run_dir / "split/test.parquet")
    # scripts/verify_run.py: plain-Python metric loops over raw ids, independent of the kernels
    ref = load_script("verify_run").recompute(recs, test, [5, 10, 20])
    for name, value in ref.items():
        if not name.startswith("map_recbole"):  # not in the default metric set
            assert results["metrics"][name] == pytest.approx(value, abs=1e-12), name
    # no leakage: no test pair in train or valid, and no recommended item the user has already seen
    pairs = ["user_id", "item_id"]
    assert test.join(train, on=pairs, how="inner").height == 0
    assert test.join(valid, on=pairs, how="inner").height == 0
    assert recs.join(pl.concat([train.select(pairs), valid.select(pairs)]), on=pairs, how="inner").height == 0
    # users: evaluated are exactly the users with test items; the rest are counted as excluded
    n_test_users = test["user_id"].n_unique()
    assert results["users"]["evaluated"] == n_test_users == recs["user_id"].n_unique()
    assert results["users"]["evaluated"] + results["users"]["excluded_empty_test"] == results["dataset"]["n_users"]
    per_user = pl.read_parquet(run_dir / "per_user_metrics.parquet")
    assert per_user.height == n_test_users
    assert per_user["ndcg@10"].mean() == pytest.approx(results["metrics"]["ndcg@10"])
    for key in ("label", "variant_hash", "config_hash", "protocol", "preprocessing", "timing", "versions", "config"):
        assert key in results
    assert results["timing"]["fit_seconds"] >= 0 and results["peak_memory_mb"] > 0


def test_results_do_not_depend_on_the_evaluation_batch_size(tmp_path):
    a, _ = run(tmp_path, FAST + ["eval.batch_size=7"], "a")
    b, _ = run(tmp_path, FAST + ["eval.batch_size=4096"], "b")
    assert a["metrics"] == b["metrics"]
    assert a["variant_hash"] == b["variant_hash"]


def test_seed_changes_the_split_and_repeats_exactly(tmp_path):
    a, da = run(tmp_path, FAST + ["seed=1"], "a")
    b, db = run(tmp_path, FAST + ["seed=1"], "b")
    c, dc = run(tmp_path, FAST + ["seed=2"], "c")
    assert a["metrics"] == b["metrics"]
    assert pl.read_parquet(da / "split/test.parquet").equals(pl.read_parquet(db / "split/test.parquet"))
    assert not pl.read_parquet(da / "split/test.parquet").equals(pl.read_parquet(dc / "split/test.parquet"))
    assert a["variant_hash"] == c["variant_hash"] and a["config_hash"] != c["config_hash"]


def test_k_larger_than_catalogue_fails_before_writing_anything(tmp_path):
    with pytest.raises(ConfigError, match="larger than the catalogue"):
        run(tmp_path, FAST + ["metrics.ks=[5,100000]"])
    assert not (tmp_path / "run" / "results.json").exists()


def test_misspelt_model_name_suggests_the_closest(tmp_path):
    with pytest.raises(PluginError, match="Did you mean 'itemknn'"):
        run(tmp_path, FAST + ["model.name=itemnn"])


def test_failure_during_fit_leaves_no_partial_results(tmp_path, monkeypatch):
    from recux import registry

    info = registry.get("model", "itemknn")

    def broken_fit(self, ctx):
        raise RuntimeError("fit exploded")

    monkeypatch.setattr(info.obj, "fit", broken_fit)
    with pytest.raises(RuntimeError, match="fit exploded"):
        run(tmp_path, FAST)
    leftovers = [p.name for p in (tmp_path / "run").iterdir()] if (tmp_path / "run").exists() else []
    assert leftovers == []


def test_label_names_the_variant_without_seed_or_hardware():
    assert build_label("bpr", None, ["model=bpr", "seed=3", "trainer=gpu"]) == "bpr"
    assert build_label("bpr", None, ["model.embedding_dim=128", "seed=1"]) == "bpr(embedding_dim=128)"
    assert build_label("bpr", "lora", []) == "bpr+lora"


def test_display_name_names_the_dataset_without_changing_its_data(tmp_path):
    named, _ = run(tmp_path, FAST + ["dataset.display_name=tiny-world"], "named")
    plain, _ = run(tmp_path, FAST, "plain")
    assert named["dataset"]["name"] == "tiny-world" and plain["dataset"]["name"] == "synthetic"
    assert named["data_hash"] == plain["data_hash"] and named["metrics"] == plain["metrics"]
    bigger, _ = run(tmp_path, FAST + ["dataset.n_users=600"], "bigger")
    assert bigger["data_hash"] != plain["data_hash"] and bigger["variant_hash"] == plain["variant_hash"]


def _group_options(group: str) -> list[str]:
    return sorted(p.stem for p in (Path(CONF_DIR) / group).glob("*.yaml"))


@pytest.mark.parametrize("group", ["dataset", "model", "finetune", "metrics", "split", "preprocess", "trainer",
                                   "logger", "task"])
def test_every_yaml_composes_and_builds(group):
    """Config strings must not break only at run time: every option composes and its plugin/target builds."""
    from hydra.utils import instantiate

    from recux import registry
    from recux.evaluation import build_metrics
    from recux.stages import PluginSpec

    options = _group_options(group)
    assert options, f"conf/{group} is empty"
    for option in options:
        overrides = [f"{group}={option}"]
        if group == "dataset" and option == "files":
            overrides.append("dataset.path=/nonexistent.csv")
        if group == "metrics" and option == "judged":  # the judge folder is required (read at compute time)
            overrides.append("metrics.judge=/nonexistent-judge")
        cfg = compose_cfg(overrides)
        node = cfg[group]
        if group in ("dataset", "model", "finetune", "task"):
            spec = PluginSpec.of(dict(node))
            registry.build(group, spec.name, spec.params)
        elif group == "metrics":
            assert build_metrics(list(node.plugins)) and all(int(k) > 0 for k in node.ks)
        elif group in ("split", "preprocess"):
            obj = instantiate(node)
            assert hasattr(obj, "split" if group == "split" else "apply")
        elif group == "trainer":
            assert "accelerator" in node
        elif group == "logger":
            assert node.name in ("wandb", "none")


def test_default_config_composes_ml100k_random_split_offline_wandb_ks_5_10_20():
    cfg = compose_cfg([])
    assert cfg.dataset.name == "ml-100k" and cfg.split._target_.endswith("RandomSplit")
    assert cfg.logger.name == "wandb" and cfg.logger.mode == "offline"
    np.testing.assert_array_equal(list(cfg.metrics.ks), [5, 10, 20])


def test_models_condition_on_train_and_valid_never_test(tmp_path, monkeypatch):
    """Before test ranking a model may see train + validation interactions (the sequential protocol needs the
    validation item as context), and nothing of the test set."""
    from recux import registry
    from recux.data import Interactions

    seen: list[Interactions] = []
    monkeypatch.setattr(registry.get("model", "pop").obj, "condition_on", lambda self, h: seen.append(h))
    results, run_dir = run(tmp_path, ["dataset=synthetic", "logger=none", "model=pop"])
    assert len(seen) == 1
    history = seen[0]
    assert len(history) == results["split"]["n_train"] + results["split"]["n_valid"]
    test = pl.read_parquet(run_dir / "split/test.parquet")
    train = pl.read_parquet(run_dir / "split/train.parquet")
    valid = pl.read_parquet(run_dir / "split/valid.parquet")
    # the history is exactly train + valid: same multiset of (user, item) pair counts once mapped to raw ids
    n_pairs = pl.concat([train, valid]).select("user_id", "item_id").unique().height
    assert len(set(zip(history.user.tolist(), history.item.tolist(), strict=True))) == n_pairs
    assert test.height > 0


def test_sequential_model_on_a_random_split_is_refused(tmp_path, monkeypatch):
    import dataclasses

    from recux import registry

    info = registry.get("model", "pop")
    seq = dataclasses.replace(info, meta={**info.meta, "protocol": "sequential"})
    monkeypatch.setitem(registry._REGISTRY["model"], "pop", seq)
    with pytest.raises(ConfigError, match="split=loo"):
        run(tmp_path, ["dataset=synthetic", "logger=none", "model=pop"])
    results, _ = run(tmp_path, ["dataset=synthetic", "logger=none", "model=pop", "split=loo"], "loo")
    assert results["protocol"] == "leave_last_one_out"
