"""Standard errors and bootstrap CIs of per-user means in the EvalReport (summarise, evaluate_topk(bootstrap=)):
equal to scipy.stats.sem / scipy.stats.bootstrap and to statistics.stdev; corpus-level values get none."""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp
import yaml
from scipy import stats

from recux.errors import ConfigError
from recux.evaluation import check_bootstrap, evaluate_topk, summarise
from recux.significance import BATCH

CONF = Path(__file__).resolve().parents[1] / "conf" / "metrics"


def _case(seed=0, n=120, n_items=50, width=10):
    rng = np.random.default_rng(seed)
    topk = np.array([rng.permutation(n_items)[:width] for _ in range(n)], dtype=np.int32)
    topk[5, 3:] = -1  # a short list
    topk[9, :] = -1  # no recommendation: ARP undefined (NaN) for this user
    truth = rng.random((n, n_items)) < 0.1
    truth[:, 0] = True
    train = sp.csr_matrix((rng.random((n, n_items)) < 0.3).astype(np.float32))
    return topk, sp.csr_matrix(truth.astype(np.float32)), train


def test_stderr_is_sample_std_over_sqrt_n_of_defined_values():
    topk, truth, train = _case()
    report = evaluate_topk(topk, truth, ks=(5, 10), train=train)
    per_user = [c for c in report.per_user.columns if c != "user"]
    assert sorted(report.stderr) == sorted(per_user)
    for name in per_user:
        vals = [v for v in report.per_user[name].to_list() if not math.isnan(v)]
        want = statistics.stdev(vals) / math.sqrt(len(vals))
        assert report.stderr[name] == pytest.approx(want, rel=1e-12), name
        assert report.stderr[name] == pytest.approx(stats.sem(vals), rel=1e-12), name
    assert len([v for v in report.per_user["arp@5"].to_list() if not math.isnan(v)]) == len(topk) - 1
    # corpus-level values have no per-user values, hence no standard error
    for name in ("coverage@5", "gini@10"):
        assert name in report.means and name not in report.stderr
    assert report.ci is None and report.ci_level is None


def test_bootstrap_ci_per_user_mean_equals_scipy_and_is_seeded():
    topk, truth, train = _case(seed=1)
    report = evaluate_topk(topk, truth, ks=(5, 10), train=train, bootstrap=700)
    assert report.ci_level == 0.95 and sorted(report.ci) == sorted(report.stderr)
    for name in ("ndcg@10", "recall@5", "arp@10"):
        vals = report.per_user[name].to_numpy()
        vals = vals[~np.isnan(vals)]
        ref = stats.bootstrap((vals,), np.mean, method="percentile", n_resamples=700, batch=BATCH,
                              rng=np.random.default_rng(0)).confidence_interval  # fmt: skip
        assert report.ci[name] == pytest.approx([ref.low, ref.high], rel=1e-12), name
        assert report.ci[name][0] <= report.means[name] <= report.ci[name][1]
    again = evaluate_topk(topk, truth, ks=(5, 10), train=train, bootstrap=700)
    assert again.ci == report.ci


def test_results_dict_carries_stderr_and_ci_as_json():
    topk, truth, train = _case(seed=2)
    d = json.loads(
        json.dumps(evaluate_topk(topk, truth, ks=(10,), train=train, bootstrap=50).to_dict(), allow_nan=False)
    )
    assert set(d["stderr"]) == set(d["ci"]) and "ndcg@10" in d["stderr"] and "gini@10" not in d["stderr"]
    assert d["ci_level"] == 0.95 and len(d["ci"]["ndcg@10"]) == 2
    d0 = evaluate_topk(topk, truth, ks=(10,), train=train).to_dict()
    assert d0["ci"] is None and "ci_level" not in d0


def test_summarise_single_user_and_all_nan_give_nan_stderr():
    frame = pl.DataFrame({"user": [0], "a": [0.5], "b": [math.nan]})
    stderr, ci = summarise(frame, bootstrap=10)
    assert math.isnan(stderr["a"]) and math.isnan(stderr["b"])
    assert ci["a"] == [0.5, 0.5] and all(math.isnan(v) for v in ci["b"])


@pytest.mark.parametrize("bad", [-1, 1.5, "100", True, None])
def test_bad_bootstrap_setting_names_the_key(bad):
    with pytest.raises(ConfigError, match="metrics.bootstrap"):
        check_bootstrap(bad)
    topk, truth, _ = _case(seed=3)
    with pytest.raises(ConfigError, match="non-negative integer"):
        evaluate_topk(topk, truth, metrics=["ndcg"], ks=(5,), bootstrap=bad)


def test_every_metrics_config_sets_bootstrap_off_by_default():
    files = sorted(CONF.glob("*.yaml"))
    assert files
    for f in files:
        cfg = yaml.safe_load(f.read_text())
        assert cfg["bootstrap"] == 0, f.name
        assert check_bootstrap(cfg["bootstrap"]) == 0
