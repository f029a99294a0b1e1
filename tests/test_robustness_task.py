"""task=robustness end to end on the synthetic dataset: the clean metrics equal an offline_ranking run's; each
variant's metrics equal an offline_ranking run with the same injection, and its degradation their plain
difference; attacks' target hit ratio equals a plain recount; stability is recorded for a model that can fold a
history in and noted for one that cannot."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from recux import stages
from recux.pipeline import run_experiment
from recux.plugins.tasks.robustness import NOT_FOLDABLE, degradation, target_hit
from tests._compose import compose_cfg

FAST = ["dataset=synthetic", "dataset.n_users=150", "dataset.n_items=120", "logger=none", "metrics.ks=[5,10]",
        "eval.efficiency=false"]
VARIANTS = ["task=robustness", "~task.variants",
            "+task.variants={noise_20: [{name: noise, rate: 0.2}], "
            "bw: [{name: bandwagon_attack, attack_size: 0.2, filler_size: 0.1, n_targets: 30, target_quantile: 1.0}]}"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("robust")
    robust = run_experiment(compose_cfg([*FAST, "model=ease", *VARIANTS]), tmp / "robust")
    clean = run_experiment(compose_cfg([*FAST, "model=ease"]), tmp / "clean")
    noisy = run_experiment(compose_cfg([*FAST, "model=ease", "+inject=noise", "inject.noise.rate=0.2"]),
                           tmp / "noisy")
    return robust, clean, noisy, tmp


def test_clean_and_variant_metrics_match_offline_runs_and_degradation_is_their_difference(runs):
    robust, clean, noisy, _ = runs
    for m, v in clean["metrics"].items():
        assert robust["metrics"][m] == pytest.approx(v, abs=1e-12)
        n = noisy["metrics"][m]
        assert robust["metrics"][f"robustness/noise_20/{m}"] == pytest.approx(n, abs=1e-12)
        assert robust["metrics"][f"robustness/noise_20/delta/{m}"] == pytest.approx(n - v, abs=1e-12)
        if v:
            assert robust["metrics"][f"robustness/noise_20/relative/{m}"] == pytest.approx((n - v) / v, rel=1e-9)
    assert robust["metrics"]["robustness/noise_20/delta/ndcg@10"] != 0.0
    assert robust["directions"]["robustness/noise_20/delta/arp@10"] == clean["directions"]["arp@10"]
    assert robust["task"] == "robustness" and robust["data_hash"] != clean["data_hash"]


def test_attack_records_targets_and_their_hit_lift(runs):
    robust, clean, _, tmp = runs
    info = robust["robustness"]["variants"]["bw"]["injection"]["injectors"]["bandwagon_attack"]
    targets = np.asarray(info["targets"])
    assert len(targets) == 30 and info["n_fake_users"] == round(0.2 * 150)
    m = robust["metrics"]
    for k in (5, 10):
        assert m[f"robustness/bw/target_hit_lift@{k}"] == pytest.approx(
            m[f"robustness/bw/target_hit@{k}"] - m[f"robustness/bw/clean_target_hit@{k}"])
    # the clean hit ratio recounted from the clean run's saved recommendations (raw item ids)
    item_ids = stages.prepare_data(stages.RunSpec.from_config(compose_cfg([*FAST, "model=ease"]))).dataset.item_ids
    recs = pl.read_parquet(tmp / "clean" / "recommendations.parquet").filter(pl.col("rank") <= 10)
    n_users = recs["user_id"].n_unique()
    per_target = [recs.filter(pl.col("item_id") == item_ids[t])["user_id"].n_unique() / n_users for t in targets]
    assert np.mean(per_target) > 0
    assert m["robustness/bw/clean_target_hit@10"] == pytest.approx(np.mean(per_target))
    assert robust["users"]["evaluated"] == clean["users"]["evaluated"]  # fake users never evaluated


def test_target_hit_and_degradation_against_plain_loops():
    rng = np.random.default_rng(1)
    topk = np.array([rng.choice(50, size=10, replace=False) for _ in range(40)])
    targets = np.array([3, 17, 42])
    for k in (1, 5, 10):
        plain = np.mean([sum(t in row[:k] for row in topk.tolist()) / len(topk) for t in targets])
        assert target_hit(topk, targets, k) == pytest.approx(plain)
    out = degradation({"a": 0.5, "b": 0.0}, {"a": 0.4, "b": 0.1}, "robustness/v")
    assert out["robustness/v/delta/a"] == pytest.approx(-0.1) and out["robustness/v/relative/a"] == pytest.approx(-0.2)
    assert out["robustness/v/relative/b"] is None


def test_stability_recorded_or_noted(runs, tmp_path):
    robust = runs[0]
    for edit in ("remove", "add"):
        assert 0.0 <= robust["metrics"][f"stability/{edit}/rbo@10"] <= 1.0
    assert robust["robustness"]["stability"]["rbo"].startswith("extrapolated")
    rand = run_experiment(compose_cfg([*FAST, "model=random", *VARIANTS[:2], "+task.variants={}"]), tmp_path / "r")
    assert not any(k.startswith("stability/") for k in rand["metrics"])
    assert rand["robustness"]["stability"]["note"] == NOT_FOLDABLE


def test_leaderboard_robustness_view(runs):
    from recux.leaderboard import build_leaderboards, find_results, load_runs
    from recux.leaderboard.robustness import render_robustness, variants

    robust, _, _, tmp = runs
    loaded, _ = load_runs(find_results([tmp]))
    boards = {b.data_hash: b for b in build_leaderboards(loaded, significance=False)}
    board = boards[robust["data_hash"]]
    assert variants(board, "ndcg@10") == ["noise_20", "bw"]
    text = "\n".join(render_robustness(board))
    delta = robust["metrics"]["robustness/noise_20/delta/ndcg@10"]
    rel = robust["metrics"]["robustness/noise_20/relative/ndcg@10"]
    assert f"{delta:+.4f} ({100 * rel:+.1f}%)" in text  # one seed: the run's own value, no ± std
    assert "### Robustness" in text and "remove/rbo@10" in text
    others = [b for h, b in boards.items() if h != robust["data_hash"]]
    assert others and all(render_robustness(b) == [] for b in others)  # offline sections get no view


def test_main_table_keeps_the_plain_columns(runs):
    from recux.leaderboard import build_leaderboards, find_results, load_runs

    robust, _, _, tmp = runs
    loaded, _ = load_runs(find_results([tmp]))
    board = next(b for b in build_leaderboards(loaded, significance=False) if b.data_hash == robust["data_hash"])
    assert "ndcg@10" in board.columns and not any(c.startswith("robustness/") for c in board.columns)
    assert "robustness/noise_20/delta/ndcg@10" in board.all_metrics  # still aggregated, for the view
