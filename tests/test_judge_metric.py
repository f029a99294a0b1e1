"""judged_satisfaction@k against a plain loop over users with the saved judge's predictions."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp

from recux.errors import ConfigError
from recux.evaluation import evaluate_topk
from recux.lm_judge import Judge
from recux.rating_models import BiasedMF


def _judge(n_users=12, n_items=9, d=4, seed=0) -> Judge:
    rng = np.random.default_rng(seed)
    cells = rng.choice(n_users * n_items, 60, replace=False)
    u, i, r = cells // n_items, cells % n_items, rng.integers(1, 6, 60).astype(float)
    mf = BiasedMF(factors=2, iters=3).fit(u, i, r, n_users, n_items)
    R = sp.csr_matrix((r, (u, i)), shape=(n_users, n_items))
    E = sp.csr_matrix((rng.normal(size=60), (u, i)), shape=(n_users, n_items))
    E.sort_indices()
    head = {"a": np.float32(0.9), "c": np.float32(0.1), "w": rng.normal(size=d), "A": rng.normal(size=(3, d)),
            "B": rng.normal(size=(3, d)), "D": rng.normal(size=(3, d)), "P": rng.normal(size=d),
            "gamma": np.float32(5.0), "beta": np.float32(0.5), "feats": rng.normal(size=(n_items, d))}
    return Judge(head, mf, R, E, {"item_ids": [str(x) for x in range(100, 100 + n_items)]})


def test_judged_satisfaction_is_the_mean_judged_rating_of_each_list(tmp_path):
    judge = _judge()
    folder = str(judge.save(tmp_path / "judge"))
    topk = np.array([[0, 3, 5, -1], [8, 7, 6, 5], [-1, -1, -1, -1], [2, 1, 0, 4]], dtype=np.int32)
    users = np.array([1, 4, 7, 11])
    truth = sp.csr_matrix(np.ones((4, 9)))
    items = pl.DataFrame({"item_id": list(range(100, 109))})
    report = evaluate_topk(topk, truth, metrics=[{"name": "judged_satisfaction", "judge": folder}], ks=(2, 4),
                           users=users, n_items=9, item_features=items)
    for k in (2, 4):
        expect = []
        for row, user in enumerate(users):
            listed = [i for i in topk[row, :k] if i >= 0]
            expect.append(np.mean(judge.predict(np.full(len(listed), user), np.array(listed))) if listed
                          else np.nan)
        np.testing.assert_allclose(report.per_user[f"judged_satisfaction@{k}"].to_numpy(), expect)


def test_judged_satisfaction_refuses_a_missing_or_mismatched_judge(tmp_path):
    folder = str(_judge().save(tmp_path / "judge"))
    topk = np.array([[0, 1]], dtype=np.int32)
    truth = sp.csr_matrix(np.ones((1, 9)))
    with pytest.raises(ConfigError, match="needs judge="):
        evaluate_topk(topk, truth, metrics=[{"name": "judged_satisfaction"}], ks=(2,), n_items=9)
    other = pl.DataFrame({"item_id": list(range(200, 209))})
    with pytest.raises(ConfigError, match="item ids differ"):
        evaluate_topk(topk, truth, metrics=[{"name": "judged_satisfaction", "judge": folder}], ks=(2,), n_items=9,
                      item_features=other)
    with pytest.raises(ConfigError, match="fitted on 12 users and 9 items"):
        evaluate_topk(np.array([[0, 1]], dtype=np.int32), sp.csr_matrix(np.ones((1, 10))), ks=(2,), n_items=10,
                      metrics=[{"name": "judged_satisfaction", "judge": folder}])


def test_the_judged_metric_set_passes_metrics_judge_to_the_plugin(tmp_path):
    from omegaconf import OmegaConf

    from recux.evaluation import build_metrics
    from tests._compose import compose_cfg

    cfg = compose_cfg(["metrics=judged", f"metrics.judge={tmp_path}"])
    specs = OmegaConf.to_container(cfg.metrics, resolve=True)["plugins"]
    built = {info.name: metric for info, metric in build_metrics(specs)}
    assert built["judged_satisfaction"].judge == str(tmp_path)
