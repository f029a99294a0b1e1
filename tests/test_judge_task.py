"""recux task=judge from config: the table's ratings-only rows match a plain computation on the same split, and
the saved judge feeds the judged_satisfaction metric of an offline-ranking run."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats

from recux import registry, stages
from recux.errors import ConfigError
from recux.lm_judge import Judge
from recux.rating_eval import random_rating_split
from tests.test_pipeline import run

SMALL = ["dataset=synthetic", "dataset.n_users=120", "dataset.n_items=60", "logger=none", "task=judge",
         "task.bootstrap=20", "task.judge.max_epochs=2", "task.judge.batch_size=256", "seed=3"]


@pytest.fixture(scope="module")
def judged(tmp_path_factory):
    from tests._lm_world import tiny_bert_folder

    tmp = tmp_path_factory.mktemp("judge")
    tiny = tiny_bert_folder(tmp / "bert")
    overrides = [*SMALL, f"encoder.model={tiny}", "encoder.max_length=16"]
    results, run_dir = run(tmp, overrides)
    return results, run_dir, overrides


def test_task_rows_match_a_plain_computation_on_the_same_split(judged):
    from tests._compose import compose_cfg

    results, run_dir, overrides = judged
    assert json.loads((run_dir / "results.json").read_text())["metrics"] == pytest.approx(results["metrics"])
    spec = stages.RunSpec.from_config(compose_cfg(overrides))
    data = stages.preprocess(spec, stages.load_dataset(spec))
    train, test = random_rating_split(data.interactions, 0.2, seed=3)
    item_sum = np.bincount(train.item, weights=train.rating, minlength=data.n_items)
    count = np.bincount(train.item, minlength=data.n_items)
    item_mean = np.where(count > 0, item_sum / np.maximum(count, 1), train.rating.mean())[test.item]
    expect = stats.spearmanr(item_mean, test.rating).statistic
    assert results["metrics"]["spearman/item_mean"] == pytest.approx(expect, abs=1e-6)
    assert {"spearman/lm_judge_frozen", "spearman/judge_random_vectors", "rmse/biased_mf"} <= set(results["metrics"])
    assert results["judge"]["judge_vs_biased_mf"]["n_resamples"] == 20
    assert (run_dir / "judge_table.md").read_text().startswith("| model |")


def test_saved_judge_scores_an_offline_run_with_judged_satisfaction(judged, tmp_path):
    _, run_dir, _ = judged
    folder = run_dir / "judge"
    judge = Judge.load(folder)
    results, ranked = run(tmp_path, ["dataset=synthetic", "dataset.n_users=120", "dataset.n_items=60",
                                     "logger=none", "model=pop", "seed=3", "metrics=judged",
                                     f"metrics.judge={folder}"])
    import polars as pl

    recs = pl.read_parquet(ranked / "recommendations.parquet")
    assert results["metrics"]["judged_satisfaction@10"] == pytest.approx(_mean_judged(recs, judge, 10), abs=1e-6)


def _mean_judged(recs, judge, k):
    """Mean over users of the judge's mean prediction for their top-k (raw ids = codes' ids in synthetic)."""
    import polars as pl

    item_code = {v: i for i, v in enumerate(judge.meta["item_ids"])}
    user_code = {v: i for i, v in enumerate(judge.meta["user_ids"])}
    cols = recs.columns
    top = recs.filter(pl.col("rank") <= k) if "rank" in cols else recs
    per_user = []
    for (user,), group in top.group_by(["user_id"]):
        items = np.array([item_code[str(x)] for x in group["item_id"].to_list()])
        per_user.append(judge.predict(np.full(len(items), user_code[str(user)]), items).mean())
    return float(np.mean(per_user))


def test_unknown_judge_settings_are_refused():
    with pytest.raises(ConfigError, match="task.judge"):
        registry.build("task", "judge", {"judge": {"ranks": 3}})


def test_with_wandb_the_judge_logs_its_metrics_and_validation_table(recorder, tmp_path):
    """logger=wandb (a recording stand-in, as in test_wandb_logging): the summary holds results.json's metrics and
    the table has one row per judge with its Spearman and RMSE."""
    from recux.plugins.tasks.judge import TABLE_COLUMNS
    from tests._lm_world import tiny_bert_folder
    tiny = tiny_bert_folder(tmp_path / "bert")
    overrides = [o for o in SMALL if o != "logger=none"] + ["logger=wandb", f"encoder.model={tiny}",
                                                             "encoder.max_length=16"]
    results, _ = run(tmp_path, overrides)
    (wb,) = recorder.runs
    (table,) = [x["judge/validation"] for x in wb.logged if "judge/validation" in x]
    assert table.columns == TABLE_COLUMNS
    assert {r[0]: r[1] for r in table.data} == {k.split("/", 1)[1]: v for k, v in results["metrics"].items()
                                                 if k.startswith("spearman/")}
    assert wb.summary == pytest.approx({f"test/{k}": v for k, v in results["metrics"].items()})
