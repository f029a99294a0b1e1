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
         "eval.latency_users=20", "eval.throughput_users=30", "run.save_model=true"]


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
    assert eff["throughput_n"] == min(30, rec["users"]["evaluated"])  # the warm pass's seeded sample


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


def test_the_leaderboard_serving_cost_view_shows_each_variants_mean(tmp_path):
    """Runs with an efficiency record give their section a Serving cost view whose cells are the mean over the
    variant's seeds of the recorded figures."""
    from recux.cli.leaderboard import main

    base = [o for o in WORLD if not o.startswith("run.")] + ["model=bpr", "model.max_epochs=2",
                                                             "model.embedding_dim=8", "model.num_threads=1"]
    recs = []
    for seed in (0, 1):
        overrides = base + [f"seed={seed}"]
        run_experiment(compose_cfg(overrides), tmp_path / "runs" / f"s{seed}", overrides)
        recs.append(json.loads((tmp_path / "runs" / f"s{seed}" / "results.json").read_text())["efficiency"])
    assert main([str(tmp_path / "runs"), "--out", str(tmp_path / "lb"), "--no-wandb", "--no-plots"]) == 0
    md = next((tmp_path / "lb").glob("*.md")).read_text().split("### Serving cost")[1]
    row = next(line for line in md.splitlines() if line.startswith("| 1 "))
    cells = [c.strip() for c in row.split("|")[3:8]]
    mean = lambda f: sum(f(r) for r in recs) / 2  # noqa: E731
    assert cells[0] == f"{mean(lambda r: r['parameters']):,.0f}"
    assert cells[2] == f"{mean(lambda r: r['latency_ms']['p50']):.3f}"
    assert cells[4] == f"{mean(lambda r: r['throughput_users_per_s']):,.0f}"
