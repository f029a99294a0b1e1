"""The cold_start task end to end on the synthetic dataset: each metric group equals a straightforward numpy
recomputation from the random model's scores; an ID model (pop) gets null cold metrics and the note; the task
refuses a split without held-out items; cold-start runs form their own leaderboard section."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import polars as pl
import pytest

from recux import identity, registry, stages
from recux.errors import ConfigError
from recux.pipeline import run_experiment
from recux.plugins.models.random import RandomModel
from recux.plugins.tasks.cold_start import NOT_SCORED, SCORES_UNSEEN, cold_mask
from tests._compose import compose_cfg

FAST = ["experiment=cold_start", "dataset=synthetic", "dataset.n_users=150", "dataset.n_items=120",
        "logger=none", "metrics.ks=[5,10]"]


def ndcg(ranked: np.ndarray, truth: set[int], k: int) -> float:
    """Binary NDCG@k: sum of 1/log2(rank+1) over relevant ranks <= k, over the ideal sum (Jarvelin & Kekalainen
    2002)."""
    dcg = sum(1.0 / np.log2(r + 2) for r, i in enumerate(ranked[:k]) if int(i) in truth)
    return dcg / sum(1.0 / np.log2(r + 2) for r in range(min(k, len(truth))))


def expected_groups(spec, k: int = 10) -> dict[str, dict[int, float]]:
    """Per-user NDCG@k of each group, from the random model's scores with plain numpy sorting."""
    data = stages.prepare_data(spec)
    cold = cold_mask(spec, data)
    model = RandomModel()
    model.fit(SimpleNamespace(split=data.split, seed=spec.seed))
    seen = (data.train_csr + data.valid_csr).tocsr()
    out: dict[str, dict[int, float]] = {"all": {}, "cold": {}, "cold_in_catalogue": {}, "warm": {}}
    for u in data.test_users:
        s = model.score(np.array([u]))[0].astype(np.float64)
        s[seen[u].indices] = -np.inf
        truth = set(data.test_csr[u].indices.tolist())
        full = np.argsort(-s, kind="stable")
        only_cold = np.where(cold, s, -np.inf)
        among_cold = np.argsort(-only_cold, kind="stable")[: int(np.isfinite(only_cold).sum())]
        cold_truth, warm_truth = {i for i in truth if cold[i]}, {i for i in truth if not cold[i]}
        out["all"][u] = ndcg(full, truth, k)
        if cold_truth:
            out["cold"][u] = ndcg(among_cold, cold_truth, k)
            out["cold_in_catalogue"][u] = ndcg(full, cold_truth, k)
        if warm_truth:
            out["warm"][u] = ndcg(full, warm_truth, k)
    return out


def run(tmp_path, model: str, extra: list[str] = ()):
    cfg = compose_cfg([*FAST, f"model={model}", *extra])
    record = run_experiment(cfg, tmp_path / model)
    per_user = pl.read_parquet(tmp_path / model / "per_user_metrics.parquet")
    return cfg, record, per_user


def test_random_model_groups_match_a_numpy_recomputation(tmp_path):
    cfg, record, per_user = run(tmp_path, "random")
    want = expected_groups(stages.RunSpec.from_config(cfg))
    data = stages.prepare_data(stages.RunSpec.from_config(cfg))
    ids = data.dataset.user_ids
    for group, prefix in (("all", ""), ("cold", "cold/"), ("cold_in_catalogue", "cold_in_catalogue/"),
                          ("warm", "warm/")):
        values = want[group]
        assert values, group
        assert record["metrics"][f"{prefix}ndcg@10"] == pytest.approx(np.mean(list(values.values())), abs=1e-6)
        col = per_user.filter(pl.col(f"{prefix}ndcg@10").is_not_null())
        assert sorted(col["user_id"].to_list()) == sorted(ids[list(values)].tolist())
        assert record["users"].get(f"evaluated_{group}", record["users"]["evaluated"]) == len(values)
    assert "cold_items" not in record
    assert record["cold_start"]["n_cold_items"] == round(0.2 * record["dataset"]["n_items"])


def test_id_model_reports_cold_items_as_not_scored(tmp_path):
    assert SCORES_UNSEEN not in registry.get("model", "pop").meta["capabilities"]
    assert SCORES_UNSEEN in registry.get("model", "random").meta["capabilities"]
    _, record, per_user = run(tmp_path, "pop")
    m = record["metrics"]
    assert m["cold/ndcg@10"] is None and m["cold_in_catalogue/recall@5"] is None
    assert isinstance(m["warm/ndcg@10"], float) and isinstance(m["ndcg@10"], float)
    assert record["cold_items"] == NOT_SCORED
    assert not [c for c in per_user.columns if c.startswith("cold")]
    on_disk = json.loads((tmp_path / "pop" / "results.json").read_text())
    assert on_disk["metrics"]["cold/ndcg@10"] is None


def test_task_refuses_a_split_without_held_out_items(tmp_path):
    cfg = compose_cfg([*FAST, "model=pop", "split=random"])
    with pytest.raises(ConfigError, match="split=cold_items"):
        run_experiment(cfg, tmp_path / "r")


def test_cold_start_runs_have_their_own_data_hash():
    base = compose_cfg([f for f in FAST if f != "experiment=cold_start"] + ["model=pop"])
    cold = compose_cfg([*FAST, "model=pop"])
    other_share = compose_cfg([*FAST, "model=pop", "split.cold_share=0.3"])
    hashes = {identity.data_hash(stages.RunSpec.from_config(c).resolved) for c in (base, cold, other_share)}
    assert len(hashes) == 3


def test_the_leaderboard_says_not_scored_for_cold_metrics_an_id_model_cannot_score(tmp_path):
    """pop (an ID model) records its cold metrics as null: its leaderboard cells say "not scored", random's
    hold values, and a column a run simply lacks still shows "—"."""
    from recux.cli.leaderboard import main

    for model in ("pop", "random"):
        run(tmp_path / "runs", model)
    out = tmp_path / "board"
    assert main([str(tmp_path / "runs"), "--out", str(out), "--no-wandb", "--no-plots",
                 "--metrics", "ndcg@10,cold/ndcg@10,warm/ndcg@10"]) == 0
    md = next(out.glob("*.md")).read_text().split("### UX view")[0]  # the accuracy table
    rows = {line.split("|")[2].strip(): [c.strip() for c in line.split("|")[3:6]]
            for line in md.splitlines() if line.startswith("| ") and ("pop" in line or "random" in line)}
    assert rows["pop"][1] == "not scored" and rows["pop"][2] != "not scored"
    assert rows["random"][1] not in ("not scored", "—")
    assert "not scored = the runs recorded no value" in md
    assert "| — |" in md.replace("| — | best |", "")  # pop's s/epoch: a value the run simply lacks


def test_the_leaderboard_shows_each_item_groups_primary_metric_by_default(tmp_path):
    from recux.cli.leaderboard import main

    run(tmp_path / "runs", "random")
    out = tmp_path / "board"
    assert main([str(tmp_path / "runs"), "--out", str(out), "--no-wandb", "--no-plots"]) == 0
    header = next(line for line in next(out.glob("*.md")).read_text().splitlines() if line.startswith("| # |"))
    assert all(f"{g}/ndcg@10" in header for g in ("cold", "cold_in_catalogue", "warm"))
    assert "fairness/" not in header
