"""results.json "efficiency": the parameter count equals the model's own arrays / network, the size is the
file run.save_model writes, the latency sample has the configured size with p50 <= p99, and throughput is the
ranking stage's users per second; eval.efficiency=false records none."""

from __future__ import annotations

import json
import os

import numpy as np
import polars as pl
import pytest

from recux.efficiency import count_parameters
from recux.pipeline import run_experiment
from tests._compose import compose_cfg

WORLD = ["dataset=synthetic", "dataset.n_users=80", "dataset.n_items=50", "logger=none",
         "eval.latency_users=20", "run.save_model=true"]


@pytest.mark.parametrize("model", ["ease", "bpr"])
def test_efficiency_record_matches_the_fitted_model(tmp_path, model):
    extra = ["model.max_epochs=2", "model.embedding_dim=8", "model.num_threads=1"] if model == "bpr" else []
    overrides = WORLD + [f"model={model}", *extra]
    run_experiment(compose_cfg(overrides), tmp_path / model, overrides)
    rec = json.loads((tmp_path / model / "results.json").read_text())
    eff = rec["efficiency"]
    n_items, n_users = rec["dataset"]["n_items"], rec["dataset"]["n_users"]
    if model == "ease":  # the item-item matrix B, and the training interactions it scores from
        train = pl.read_parquet(tmp_path / model / "split" / "train.parquet")
        expected = n_items * n_items + train.select("user_id", "item_id").unique().height
    else:  # the user and item embedding tables
        expected = (n_users + n_items) * 8
    assert eff["parameters"] == expected
    assert eff["size_bytes"] == os.path.getsize(tmp_path / model / "model.pkl")
    lat = eff["latency_ms"]
    assert lat["n"] == 20 and 0 < lat["p50"] <= lat["p99"]
    assert eff["throughput_users_per_s"] > 0 and eff["latency_k"] == 20


def test_count_parameters_of_plain_arrays_and_sparse_matrices():
    import scipy.sparse as sp

    class M:
        def __init__(self):
            self.a, self.b, self.c = np.zeros((3, 4)), sp.eye(5, format="csr"), "not counted"

    assert count_parameters(M()) == 12 + 5


def test_efficiency_can_be_switched_off(tmp_path):
    overrides = [o for o in WORLD if not o.startswith("run.")] + ["model=pop", "eval.efficiency=false"]
    rec = run_experiment(compose_cfg(overrides), tmp_path / "r", overrides)
    assert rec.get("efficiency") is None
