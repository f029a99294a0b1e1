"""The public evaluation API: metric plugins, evaluate_topk / evaluate_scores, EvalReport and Validator."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import yaml

from recux import registry
from recux.data import Interactions
from recux.errors import ConfigError, DataError, PluginError
from recux.evaluation import (
    ACCURACY_METRICS,
    DEFAULT_METRICS,
    Validator,
    build_metrics,
    evaluate_scores,
    evaluate_topk,
    train_popularity,
)
from recux.metric import EvalContext

CONF = Path(__file__).resolve().parents[1] / "conf" / "metrics"


def ref_user(row, relevant, k):
    """Plain definitions for one user (binary relevance, -1 = padding)."""
    rel = [int(i >= 0 and i in relevant) for i in row[:k]]
    prec = [sum(rel[: p + 1]) / (p + 1) for p, r in enumerate(rel) if r]
    first = next((p for p, r in enumerate(rel) if r), None)
    return {
        "precision": sum(rel) / k,
        "recall": sum(rel) / len(relevant),
        "ndcg": sum(r / math.log2(p + 2) for p, r in enumerate(rel))
        / sum(1 / math.log2(p + 2) for p in range(min(len(relevant), k))),
        "mrr": 0.0 if first is None else 1 / (first + 1),
        "map": sum(prec) / len(relevant),
        "hit": float(any(rel)),
    }


def random_case(seed, n=40, n_items=30, width=8, empty_every=5):
    """Random lists; every `empty_every`-th user has no ground truth (0: none empty)."""
    rng = np.random.default_rng(seed)
    topk = np.array([rng.permutation(n_items)[:width] for _ in range(n)], dtype=np.int32)
    topk[3, 6:] = -1
    dense = rng.random((n, n_items)) < 0.15
    if empty_every:
        dense[1::empty_every, 0] = True
        dense[::empty_every] = False  # users with no ground truth
    else:
        dense[:, 0] = True
    return topk, sp.csr_matrix(dense.astype(np.float32))


def test_default_yaml_matches_default_metrics():
    cfg = yaml.safe_load((CONF / "default.yaml").read_text())
    assert [p["name"] for p in cfg["plugins"]] == list(DEFAULT_METRICS)
    assert cfg["ks"] == [5, 10, 20]
    for path in CONF.glob("*.yaml"):  # every metrics config builds
        assert build_metrics(yaml.safe_load(path.read_text())["plugins"])


def test_plugins_are_registered_with_directions():
    for name in (*ACCURACY_METRICS, "map_recbole", "coverage", "novelty"):
        assert registry.get("metric", name).meta["higher_is_better"] is True
    for name in ("arp", "gini"):
        assert registry.get("metric", name).meta["higher_is_better"] is False
    assert "train_popularity" in registry.get("metric", "arp").meta["needs"]
    assert "train_popularity" in registry.get("metric", "novelty").meta["needs"]


def test_build_metrics_errors():
    with pytest.raises(PluginError, match="Did you mean 'ndcg'"):
        build_metrics([{"name": "ndgc"}])
    with pytest.raises(ConfigError, match="no 'name'"):
        build_metrics([{"k": 3}])
    with pytest.raises(ConfigError, match="listed twice"):
        build_metrics(["ndcg", {"name": "ndcg"}])
    with pytest.raises(ConfigError, match="unknown parameter"):
        build_metrics([{"name": "ndcg", "gain": "exp"}])


def test_evaluate_topk_matches_reference_and_counts_empty_users():
    topk, truth = random_case(0)
    users = np.arange(100, 100 + topk.shape[0])
    report = evaluate_topk(topk, truth, metrics=list(ACCURACY_METRICS), ks=(1, 3, 8), users=users)
    nonempty = np.diff(truth.indptr) > 0
    assert report.n_excluded_empty == int((~nonempty).sum()) == 8
    assert report.n_evaluated == int(nonempty.sum())
    assert report.per_user["user"].to_list() == users[nonempty].tolist()
    rows = [(topk[r].tolist(), set(truth[r].indices.tolist())) for r in np.flatnonzero(nonempty)]
    for k in (1, 3, 8):
        for m in ACCURACY_METRICS:
            want = [ref_user(row, rel, k)[m] for row, rel in rows]
            np.testing.assert_allclose(report.per_user[f"{m}@{k}"].to_numpy(), want, atol=1e-12)
            assert report.means[f"{m}@{k}"] == pytest.approx(np.mean(want), abs=1e-12)
            assert report.directions[f"{m}@{k}"] is True


def test_indptr_indices_input_is_canonicalised():
    """(indptr, indices) with unsorted, repeated items gives the same result as the clean CSR."""
    topk, truth = random_case(1)
    indptr, indices = truth.indptr.copy(), truth.indices.copy()
    messy_idx, messy_ptr = [], [0]
    for r in range(truth.shape[0]):
        row = list(indices[indptr[r]:indptr[r + 1]])[::-1]
        row += row[:1]  # one duplicate
        messy_idx += row
        messy_ptr.append(len(messy_idx))
    a = evaluate_topk(topk, truth, metrics=["ndcg", "recall"], ks=(5,))
    b = evaluate_topk(topk, (np.array(messy_ptr), np.array(messy_idx)), metrics=["ndcg", "recall"], ks=(5,),
                      n_items=truth.shape[1])
    assert a.means == b.means


def test_k_larger_than_lists_and_bad_codes():
    topk = np.zeros((3, 20), dtype=np.int32)
    truth = sp.identity(3, format="csr")
    with pytest.raises(ConfigError, match=r"k=50 is larger than the top-k lists \(20 columns\)"):
        evaluate_topk(topk, truth, ks=(10, 50))
    with pytest.raises(DataError, match="item code 9, outside"):
        evaluate_topk(np.array([[9, -1]] * 3, dtype=np.int32), truth, ks=(1,), n_items=5)
    with pytest.raises(DataError, match="3 rows but topk has 2"):
        evaluate_topk(np.zeros((2, 2), dtype=np.int32), truth, ks=(1,))
    with pytest.raises(DataError, match="no user has ground truth"):
        evaluate_topk(np.array([[0, 1]] * 2, dtype=np.int32), sp.csr_matrix((2, 4)), ks=(1,))


def test_default_metrics_skip_popularity_without_train_and_explicit_ones_fail():
    topk, truth = random_case(2)
    report = evaluate_topk(topk, truth, ks=(5,))
    assert set(report.skipped) == {"arp", "novelty"}
    assert "coverage@5" in report.means and "gini@5" in report.means and "arp@5" not in report.means
    assert report.directions["gini@5"] is False
    with pytest.raises(ConfigError, match="'arp' needs train_popularity"):
        evaluate_topk(topk, truth, metrics=["arp"], ks=(5,))


def test_popularity_metrics_use_training_matrix():
    topk, truth = random_case(3, n=20, n_items=12, width=4)
    rng = np.random.default_rng(3)
    tr_u, tr_i = rng.integers(0, 15, 80), rng.integers(0, 12, 80)
    inter = Interactions(user=tr_u, item=tr_i, n_users=15, n_items=12)
    counts, n_users = train_popularity(inter, 12)
    pairs = set(zip(tr_u.tolist(), tr_i.tolist(), strict=True))
    assert counts.tolist() == [sum(1 for _, i in pairs if i == j) for j in range(12)]  # distinct users per item
    assert n_users == len({u for u, _ in pairs})
    report = evaluate_topk(topk, truth, metrics=["arp", "novelty", "coverage"], ks=(2, 4), train=inter.csr())
    nonempty = np.flatnonzero(np.diff(truth.indptr) > 0)
    for k in (2, 4):
        arp = [np.mean([counts[i] for i in topk[r, :k] if i >= 0]) for r in nonempty]
        nov = [np.mean([-math.log2(max(counts[i], 1) / n_users) for i in topk[r, :k] if i >= 0]) for r in nonempty]
        np.testing.assert_allclose(report.per_user[f"arp@{k}"].to_numpy(), arp, atol=1e-12)
        np.testing.assert_allclose(report.per_user[f"novelty@{k}"].to_numpy(), nov, atol=1e-12)
        # coverage runs over every evaluated user's list (empty-truth users are not evaluated)
        shown = {int(i) for r in nonempty for i in topk[r, :k] if i >= 0}
        assert report.means[f"coverage@{k}"] == pytest.approx(len(shown) / 12)
    assert report.directions["arp@2"] is False and report.directions["novelty@2"] is True


def test_accuracy_plugins_share_one_kernel_pass():
    topk, truth = random_case(4, empty_every=0)
    ctx = EvalContext(topk=topk, gt_indptr=truth.indptr.astype(np.int64), gt_indices=truth.indices,
                      n_items=30, ks=(3, 5))
    results = [metric.compute(ctx) for _, metric in build_metrics(list(ACCURACY_METRICS) + ["map_recbole"])]
    arrays = [a for r in results for a in r.per_user.values()]
    assert len(arrays) == 14
    base = arrays[0].base
    assert base is not None and all(a.base is base for a in arrays)  # views of one kernel output


def _reference_topk(scores, exclude, k):
    """Independent ranking: mask, then order by (-score, item code)."""
    s = scores.astype(np.float64).copy()
    s[exclude.toarray() > 0] = -np.inf
    out = np.full((s.shape[0], k), -1, dtype=np.int32)
    for r in range(s.shape[0]):
        order = sorted((j for j in range(s.shape[1]) if s[r, j] > -np.inf), key=lambda j: (-s[r, j], j))[:k]
        out[r, : len(order)] = order
    return out


def test_evaluate_scores_equals_evaluate_topk_of_reference_ranking():
    rng = np.random.default_rng(5)
    n, n_items = 30, 25
    scores = np.round(rng.random((n, n_items)), 1).astype(np.float32)  # many ties
    excl = rng.random((n, n_items)) < 0.3
    excl[0, :] = True  # a user with nothing left to rank: all padding
    exclude = sp.csr_matrix(excl.astype(np.float32))
    truth = sp.csr_matrix((rng.random((n, n_items)) < 0.2).astype(np.float32))
    train = sp.csr_matrix((rng.random((50, n_items)) < 0.2).astype(np.float32))
    got = evaluate_scores(scores, truth, exclude=exclude, ks=(3, 7), k_max=10, train=train)
    ref = evaluate_topk(_reference_topk(scores, exclude, 10), truth, ks=(3, 7), train=train, n_items=n_items)
    assert got.means.keys() == ref.means.keys()
    for name, v in ref.means.items():
        assert got.means[name] == pytest.approx(v, abs=1e-12), name
    assert got.n_excluded_empty == ref.n_excluded_empty


def test_report_to_dict_is_json_with_nan_as_null():
    topk = np.array([[-1, -1], [0, 1]], dtype=np.int32)
    truth = sp.csr_matrix(np.array([[1, 0, 0], [0, 1, 0]], dtype=np.float32))
    train = sp.csr_matrix(np.ones((2, 3), dtype=np.float32))
    report = evaluate_topk(topk, truth, metrics=["ndcg", "arp"], ks=(2,), train=train)
    assert math.isnan(report.per_user["arp@2"][0])  # no recommended item: undefined
    assert report.means["arp@2"] == pytest.approx(2.0)  # mean over users where it is defined
    d = json.loads(json.dumps(report.to_dict(per_user=True), allow_nan=False))
    assert d["per_user"]["arp@2"][0] is None
    assert d["n_evaluated"] == 2 and d["directions"]["arp@2"] is False


def test_validator_matches_evaluate_scores_and_skips_empty_users():
    rng = np.random.default_rng(6)
    n_users, n_items = 60, 40
    full = rng.random((n_users, n_items)).astype(np.float32)
    train = sp.csr_matrix((rng.random((n_users, n_items)) < 0.2).astype(np.float32))
    dense_valid = rng.random((n_users, n_items)) < 0.1
    dense_valid[7] = False
    dense_valid[[3, 10, 11, 25, 40, 59], 0] = True
    valid = sp.csr_matrix(dense_valid.astype(np.float32))
    users = np.array([7, 3, 10, 11, 25, 40, 59])
    v = Validator(users, train, valid, k=5, batch_size=3)
    got = v(lambda u: full[u])
    keep = users[np.diff(valid.indptr)[users] > 0]
    assert v.n_excluded_empty == len(users) - len(keep) == 1
    ref = evaluate_scores(full[keep], valid[keep], exclude=train[keep], ks=(5,), metrics=list(ACCURACY_METRICS))
    assert got.keys() == {f"{m}@5" for m in ACCURACY_METRICS}
    for name, val in got.items():
        assert val == pytest.approx(ref.means[name], abs=1e-12)


# ---- input checks: repeated items, graded ground truth -------------------------------------------------------


def test_repeated_item_in_a_row_is_refused():
    """A repeated relevant item would give recall@2 = 2; the row is refused instead."""
    import re

    topk = np.array([[0, 1, 2], [3, 3, 1]], dtype=np.int32)
    truth = sp.csr_matrix(np.array([[1, 0, 0, 0], [0, 0, 0, 1]], dtype=np.float32))
    with pytest.raises(DataError, match=re.escape("row 1 (user 'b') lists item code 3 more than once (positions 1, 2)")):
        evaluate_topk(topk, truth, ks=(2,), metrics=["recall"], users=np.array(["a", "b"]))
    padded = np.array([[0, -1, -1], [3, -1, 1]], dtype=np.int32)  # padding may repeat
    assert evaluate_topk(padded, truth, ks=(3,), metrics=["recall"]).means["recall@3"] == 1.0


def test_graded_truth_feeds_graded_ndcg_and_is_checked():
    from recux.kernels.accuracy import graded_ndcg
    from recux.relevance import align_relevance

    topk = np.array([[2, 0, 1], [1, 3, 0]], dtype=np.int32)
    grades = np.array([[4, 0, 1, 0], [0, 0, 0, 2]], dtype=np.float64)
    truth = sp.csr_matrix((grades > 0).astype(np.float32))
    rep = evaluate_topk(topk, truth, ks=(1, 3), metrics=["ndcg_graded", "ndcg_burges", "ndcg"],
                        graded_truth=sp.csr_matrix(grades))
    ref = graded_ndcg(topk, truth.indptr, truth.indices, np.array([4.0, 1.0, 2.0]), (1, 3), gain="burges")
    assert rep.means["ndcg_burges@3"] == pytest.approx(ref[3].mean(), abs=1e-12)
    assert rep.means["ndcg_graded@1"] == pytest.approx(np.mean([1 / 4, 0.0]), abs=1e-12)  # gain 1 of ideal 4
    with pytest.raises(ConfigError, match="graded_truth=.*--relevance-col"):
        evaluate_topk(topk, truth, ks=(1,), metrics=["ndcg_graded"])
    assert "ndcg_graded@1" not in evaluate_topk(topk, truth, ks=(1,)).means  # not a default metric
    outside = grades.copy()
    outside[0, 3] = 5
    with pytest.raises(DataError, match="not in the ground truth"):
        align_relevance(sp.csr_matrix(outside), truth.indptr, truth.indices)
    with pytest.raises(DataError, match=">= 0"):
        align_relevance(sp.csr_matrix(-grades), truth.indptr, truth.indices)
    # a ground-truth pair without a grade gets grade 0; grades align with the CSR entries
    partial = grades.copy()
    partial[0, 2] = 0
    np.testing.assert_array_equal(align_relevance(sp.csr_matrix(partial), truth.indptr, truth.indices), [4, 0, 2])


def test_graded_truth_csr_keeps_the_highest_rating_and_refuses_implicit_data():
    from recux.data import Interactions
    from recux.relevance import graded_truth_csr

    inter = Interactions(user=np.array([0, 0, 1, 0]), item=np.array([2, 1, 0, 2]), n_users=2, n_items=3,
                         rating=np.array([3.0, 5.0, 1.0, 4.0]))
    m = graded_truth_csr(inter)
    np.testing.assert_array_equal(m.toarray(), [[0, 5, 4], [1, 0, 0]])
    with pytest.raises(DataError, match="need ratings.*has none"):
        graded_truth_csr(Interactions(user=np.array([0]), item=np.array([0]), n_users=1, n_items=1))


def test_history_reaches_metrics_row_aligned_after_empty_rows_drop():
    """Row r of EvalContext's history is the history given for the r-th kept top-k row (a user with no ground
    truth is dropped from both), as a plain CSR slice says."""
    from recux.metric import Metric, MetricResult

    seen = {}

    class Probe(Metric):
        def compute(self, ctx: EvalContext) -> MetricResult:
            seen["rows"] = [ctx.history_indices[a:b].tolist()
                            for a, b in zip(ctx.history_indptr[:-1], ctx.history_indptr[1:], strict=True)]
            return MetricResult(per_user={"probe": np.zeros(len(ctx.topk))})

    rng = np.random.default_rng(3)
    history = sp.random(6, 30, density=0.2, format="csr", random_state=4)
    truth = sp.csr_matrix(([1.0] * 4, ([0, 2, 3, 5], [1, 2, 3, 4])), shape=(6, 30))
    topk = np.stack([rng.permutation(30)[:5] for _ in range(6)]).astype(np.int32)
    info = registry.PluginInfo("metric", "probe", Probe, "probe", {"needs": {"topk", "history"}})
    evaluate_topk(topk, truth, metrics=[(info, Probe())], ks=[5], history=history)
    assert seen["rows"] == [sorted(history[r].indices.tolist()) for r in (0, 2, 3, 5)]


def test_history_with_wrong_row_count_is_refused():
    with pytest.raises(DataError, match="history has 2 rows but topk has 3"):
        evaluate_topk(np.zeros((3, 2), np.int32) + [[0, 1]], sp.eye(3, 4, format="csr"), ks=[1],
                      history=sp.csr_matrix((2, 4)))
