"""The results record: schema-2 files round-trip, schema-1 files (as the previous writer produced them) still
load with their data and variant identity derived from the stored config, and the data hash covers exactly the
settings that define the data."""

from __future__ import annotations

import copy
import json

import pytest

from recux import identity
from recux.record import SCHEMA_VERSION, RecordError, ResultsRecord, load_record


def schema1(n_users: int = 500, model: str = "bpr", seed: int = 1, exclude_valid: bool = True) -> dict:
    """A results.json of schema 1, shaped like the previous writer's output (abridged values)."""
    dataset_cfg = {"name": "synthetic", "n_users": n_users, "n_items": 300, "dim": 16, "interactions_per_user": 20.0,
                   "popularity_exponent": 1.0, "noise": 0.5, "n_genres": 8, "seed": 0}
    config = {
        "dataset": dataset_cfg,
        "preprocess": {"_target_": "benchmark.preprocess.Preprocess", "rating_threshold": None,
                       "min_user_interactions": 0, "min_item_interactions": 0, "duplicates": "keep_last"},
        "split": {"_target_": "benchmark.splitting.RandomSplit", "ratios": [0.8, 0.1, 0.1]},
        "model": {"name": model, "embedding_dim": 64, "lr": 0.003},
        "finetune": {"name": "scratch"},
        "metrics": {"plugins": ["ndcg", "recall"], "ks": [5, 10, 20]},
        "trainer": {"accelerator": "cpu", "devices": 1, "enable_progress_bar": True, "progress_refresh_rate": 10},
        "logger": {"name": "none"},
        "seed": seed,
        "eval": {"batch_size": 1024, "exclude_valid": exclude_valid},
        "run": {"save_split": True, "save_model": False},
    }
    return {
        "schema": 1, "run_id": "20261201-130421-561219", "created": "2026-12-01T13:04:21+00:00", "status": "ok",
        "label": model, "variant_hash": "df2f0634f632", "config_hash": "1fa655416fc7", "seed": seed,
        "dataset": {"name": "synthetic", "n_users": n_users, "n_items": 300, "n_interactions": 9608,
                    "info": {"dataset": "synthetic", "source": "synthetic", "sha256_verified": None}},
        "protocol": "random_80_10_10",
        "split": {"_target_": "benchmark.splitting.RandomSplit", "ratios": [0.8, 0.1, 0.1], "seed": seed,
                  "n_train": 7640, "n_valid": 984, "n_test": 984, "users_with_test": 493},
        "preprocessing": {"settings": {"rating_threshold": None}, "k_core_rounds": 0},
        "model": {"name": model, "params": {"embedding_dim": 64, "lr": 0.003}, "training": "lightning"},
        "finetune": {"name": "scratch", "params": {}},
        "metrics": {"ndcg@10": 0.2496, "recall@10": 0.3530},
        "directions": {"ndcg@10": True, "recall@10": True},
        "valid_metrics": {"ndcg@10": 0.2369},
        "users": {"evaluated": 493, "excluded_empty_test": 7},
        "timing": {"fit_seconds": 13.575, "seconds_per_epoch": 0.1897},
        "peak_memory_mb": 632.6, "versions": {"python": "3.11.7"}, "config": config,
        "files": {"per_user_metrics": "per_user_metrics.parquet", "recommendations": "recommendations.parquet",
                  "split": "split/"},
    }  # fmt: skip


def test_schema_1_loads_with_identity_derived_from_its_config():
    old = schema1()
    rec = ResultsRecord.from_dict(copy.deepcopy(old))
    assert rec.schema == 1 and rec.metrics == old["metrics"] and rec.seed == 1 and rec.dataset_name == "synthetic"
    assert rec.finetune["baseline"] is True  # scratch is the registered baseline strategy
    assert rec.optimized_metric == "ndcg@10" and rec.metrics_stderr == {} and rec.metrics_ci is None
    # the same data and variant as a new-style config of the same settings (module moves do not count)
    new_cfg = copy.deepcopy(old["config"])
    new_cfg["split"]["_target_"] = "recux.splitting.RandomSplit"
    new_cfg["preprocess"]["_target_"] = "recux.preprocess.Preprocess"
    new_cfg["dataset"]["display_name"] = "synthetic"
    new_cfg.update(task={"name": "offline_ranking"}, optimized_metric="ndcg@10")
    assert rec.data_hash == identity.data_hash(new_cfg)
    assert rec.variant_hash == identity.variant_hash(new_cfg)


def test_data_hash_separates_data_and_variant_hash_separates_models():
    base = ResultsRecord.from_dict(schema1())
    other_world = ResultsRecord.from_dict(schema1(n_users=600))
    other_mask = ResultsRecord.from_dict(schema1(exclude_valid=False))
    other_model = ResultsRecord.from_dict(schema1(model="ease"))
    other_seed = ResultsRecord.from_dict(schema1(seed=2))
    assert len({base.data_hash, other_world.data_hash, other_mask.data_hash}) == 3
    assert base.data_hash == other_model.data_hash == other_seed.data_hash
    assert base.variant_hash == other_world.variant_hash == other_seed.variant_hash != other_model.variant_hash


def test_data_hash_ignores_display_names_and_declared_fetch_params_only():
    cfg = {"dataset": {"name": "ml-100k", "path": None, "source": "auto", "download": True, "timeout": 60.0}}
    fetched = {"dataset": {**cfg["dataset"], "source": "pypi", "download": False, "timeout": 5.0}}
    local = {"dataset": {**cfg["dataset"], "path": "/data/ml-100k"}}
    assert identity.data_hash(cfg) == identity.data_hash(fetched) != identity.data_hash(local)
    syn = {"dataset": {"name": "synthetic", "n_users": 300}}
    named = {"dataset": {"name": "synthetic", "n_users": 300, "display_name": "tiny"}}
    assert identity.data_hash(syn) == identity.data_hash(named)
    # metric cut-offs are columns, not data
    assert identity.data_hash({**syn, "metrics": {"ks": [5]}}) == identity.data_hash({**syn, "metrics": {"ks": [20]}})


def test_schema_2_round_trips_through_json(tmp_path):
    rec = ResultsRecord(run_id="r", label="ease", variant_hash="v" * 12, data_hash="d" * 12, seed=0,
                        metrics={"ndcg@10": 0.25}, metrics_stderr={"ndcg@10": 0.01},
                        metrics_ci={"ndcg@10": [0.23, 0.27]}, extra={"future_key": [1, 2]})
    path = tmp_path / "results.json"
    path.write_text(json.dumps(rec.to_dict()))
    back = load_record(path)
    assert back == rec and back.schema == SCHEMA_VERSION == 2
    assert list(json.loads(path.read_text()))[:3] == ["schema", "run_id", "created"]


@pytest.mark.parametrize("broken", [{}, {"variant_hash": "x"}, {"metrics": {}}, {"variant_hash": "x", "metrics": 3}])
def test_a_record_without_variant_or_metrics_is_refused(broken):
    with pytest.raises(RecordError, match="variant_hash"):
        ResultsRecord.from_dict(broken)
