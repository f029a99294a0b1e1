"""The one-pass accuracy kernel against a plain-Python reference, RecBole's MAP normalisation, and ranx."""

from __future__ import annotations

import math

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recux.kernels.accuracy import METRICS, accuracy_metrics


@st.composite
def topk_and_truth(draw, tail_padding_only: bool = False):
    """Random top-k lists (distinct items, -1 padding) and non-empty sorted ground-truth rows."""
    n_items = draw(st.integers(1, 30))
    n_users = draw(st.integers(1, 12))
    width = draw(st.integers(1, 12))
    rows, truth = [], []
    for _ in range(n_users):
        n_real = draw(st.integers(0, min(width, n_items)))
        items = draw(st.permutations(range(n_items)))[:n_real]
        row = list(items) + [-1] * (width - n_real)
        if not tail_padding_only:
            row = draw(st.permutations(row))
        rows.append(row)
        # single-item truth is common; large truths exceed k
        size = draw(st.one_of(st.just(1), st.integers(1, n_items)))
        truth.append(sorted(draw(st.permutations(range(n_items)))[:size]))
    ks = draw(st.lists(st.integers(1, width), min_size=1, max_size=4))
    topk = np.array(rows, dtype=np.int32).reshape(n_users, width)
    indptr = np.zeros(n_users + 1, dtype=np.int64)
    indptr[1:] = np.cumsum([len(t) for t in truth])
    indices = np.array([i for t in truth for i in t], dtype=np.int32)
    return topk, indptr, indices, ks, truth


def reference(row: list[int], relevant: set[int], k: int) -> dict[str, float]:
    """Textbook definitions, one user, straightforward loops."""
    top = row[:k]
    rel = [1 if (i >= 0 and i in relevant) else 0 for i in top]
    hits = sum(rel)
    dcg = sum(r / math.log2(pos + 2) for pos, r in enumerate(rel))
    idcg = sum(1 / math.log2(pos + 2) for pos in range(min(len(relevant), k)))
    first = next((pos for pos, r in enumerate(rel) if r), None)
    prec_at_hits = [sum(rel[: pos + 1]) / (pos + 1) for pos, r in enumerate(rel) if r]
    return {
        "precision": hits / k,
        "recall": hits / len(relevant),
        "ndcg": dcg / idcg,
        "mrr": 0.0 if first is None else 1 / (first + 1),
        "map": sum(prec_at_hits) / len(relevant),
        "hit": float(hits > 0),
        "map_recbole": sum(prec_at_hits) / min(len(relevant), k),
    }


@settings(max_examples=150, deadline=None)
@given(topk_and_truth())
def test_kernel_matches_reference(case):
    topk, indptr, indices, ks, truth = case
    got = accuracy_metrics(topk, indptr, indices, ks)
    assert set(got) == {f"{m}@{k}" for m in METRICS for k in ks}
    for u, row in enumerate(topk.tolist()):
        for k in set(ks):
            want = reference(row, set(truth[u]), k)
            for m in METRICS:
                assert got[f"{m}@{k}"][u] == pytest.approx(want[m], abs=1e-12), (m, k, u)


def recbole_map(topk: np.ndarray, truth: list[list[int]], k: int) -> np.ndarray:
    """RecBole's MAP@k (recbole/evaluator/metrics.py): cumulative precision at hits / min(|R|, k)."""
    pos_index = np.array([[i >= 0 and i in set(t) for i in row] for row, t in zip(topk, truth, strict=True)])
    pos_len = np.array([len(t) for t in truth])
    pre = pos_index.cumsum(axis=1) / np.arange(1, pos_index.shape[1] + 1)
    sum_pre = np.cumsum(pre * pos_index.astype(float), axis=1)
    len_rank = np.full_like(pos_len, pos_index.shape[1])
    actual_len = np.where(pos_len > len_rank, len_rank, pos_len)
    result = np.zeros_like(pos_index, dtype=float)
    for row, lens in enumerate(actual_len):
        ranges = np.arange(1, pos_index.shape[1] + 1)
        ranges[lens:] = ranges[lens - 1]
        result[row] = sum_pre[row] / ranges
    return result[:, k - 1]


@settings(max_examples=60, deadline=None)
@given(topk_and_truth())
def test_map_recbole_matches_recbole_formula(case):
    topk, indptr, indices, ks, truth = case
    got = accuracy_metrics(topk, indptr, indices, ks)
    for k in set(ks):
        np.testing.assert_allclose(got[f"map_recbole@{k}"], recbole_map(topk, truth, k), rtol=0, atol=1e-12)


RANX_NAMES = {"precision": "precision", "recall": "recall", "ndcg": "ndcg", "mrr": "mrr", "map": "map",
              "hit": "hit_rate"}


def _ranked(rows: list[list[float]]):
    """ranx's array input (documented beside Qrels/Run in ``ranx.evaluate``): one float64 array per query of
    (doc id, score) rows, sorted by score, descending. Passing it directly skips Qrels/Run, whose typed-dict
    code numba would compile first (about 30 s on a cold cache); the metrics are the same functions."""
    from numba.typed import List

    return List([np.asarray(r, dtype=np.float64).reshape(-1, 2) for r in rows])


def ranx_scores(topk: np.ndarray, truth: list[list[int]], ks: list[int]) -> dict[str, np.ndarray]:
    """Every metric at every cut-off in one ranx call; ranx's per-query values in row order."""
    from ranx import evaluate

    qrels = _ranked([[(i, 1.0) for i in t] for t in truth])
    run = _ranked([[(i, float(len(row) - pos)) for pos, i in enumerate(row) if i >= 0] for row in topk.tolist()])
    metrics = [f"{RANX_NAMES[m]}@{k}" for m in RANX_NAMES for k in sorted(set(ks))]
    threads = numba.get_num_threads()
    try:
        out = evaluate(qrels, run, metrics, return_mean=False, save_results_in_run=False)
    finally:
        numba.set_num_threads(threads)  # ranx drops numba to 1 thread for < 10 queries
    inv = {v: k for k, v in RANX_NAMES.items()}
    return {f"{inv[name.split('@')[0]]}@{name.split('@')[1]}": np.asarray(v) for name, v in out.items()}


@settings(max_examples=40, deadline=None)
@given(topk_and_truth(tail_padding_only=True))
def test_matches_ranx_per_user_and_mean(case):
    """ranx (trec_eval definitions) on the same lists: padding in the tail = a shorter ranked list (an empty one
    when a row is all padding)."""
    topk, indptr, indices, ks, truth = case
    got = accuracy_metrics(topk, indptr, indices, ks)
    want = ranx_scores(topk, truth, ks)
    assert len(want) == 6 * len(set(ks))
    for name, vals in want.items():
        np.testing.assert_allclose(got[name], vals, rtol=0, atol=1e-9, err_msg=name)
        assert abs(got[name].mean() - vals.mean()) <= 1e-9


def test_hand_computed_example():
    """Ranked [3, pad, 1, 5], relevant {1, 2}: the only hit is at rank 3."""
    topk = np.array([[3, -1, 1, 5]], dtype=np.int32)
    got = accuracy_metrics(topk, np.array([0, 2]), np.array([1, 2]), [2, 3, 4])
    assert got["precision@2"][0] == 0 and got["hit@2"][0] == 0 and got["mrr@2"][0] == 0
    assert got["precision@3"][0] == pytest.approx(1 / 3)
    assert got["recall@3"][0] == pytest.approx(1 / 2)
    assert got["ndcg@3"][0] == pytest.approx((1 / math.log2(4)) / (1 + 1 / math.log2(3)))
    assert got["mrr@4"][0] == pytest.approx(1 / 3)
    assert got["map@4"][0] == pytest.approx((1 / 3) / 2)
    assert got["map_recbole@3"][0] == pytest.approx((1 / 3) / 2)
    assert got["hit@4"][0] == 1.0


def test_map_variants_differ_when_truth_exceeds_k():
    topk = np.array([[0, 1]], dtype=np.int32)
    got = accuracy_metrics(topk, np.array([0, 4]), np.array([0, 1, 2, 3]), [2])
    assert got["map@2"][0] == pytest.approx(2 / 4)  # (1 + 1) / |R|
    assert got["map_recbole@2"][0] == pytest.approx(2 / 2)  # (1 + 1) / min(|R|, k)


def test_empty_ground_truth_rows_are_rejected():
    topk = np.array([[0, 1], [1, 0]], dtype=np.int32)
    with pytest.raises(ValueError, match="non-empty ground truth"):
        accuracy_metrics(topk, np.array([0, 1, 1]), np.array([0]), [1])


def test_k_larger_than_lists_is_rejected():
    topk = np.array([[0, 1]], dtype=np.int32)
    with pytest.raises(ValueError, match="k=3 is larger than the top-k lists"):
        accuracy_metrics(topk, np.array([0, 1]), np.array([0]), [3])


def test_no_users_gives_empty_arrays():
    got = accuracy_metrics(np.empty((0, 3), dtype=np.int32), np.array([0]), np.array([], dtype=np.int32), [3])
    assert got["ndcg@3"].shape == (0,)


def test_fewer_blocks_for_large_catalogues_gives_the_same_values(monkeypatch):
    import recux.kernels.accuracy as acc

    rng = np.random.default_rng(2)
    topk = np.array([rng.permutation(60)[:10] for _ in range(300)], dtype=np.int32)
    truth = [sorted(rng.permutation(40)[: rng.integers(1, 8)].tolist()) for _ in range(300)]  # codes < 40 only
    indptr = np.r_[0, np.cumsum([len(t) for t in truth])]
    indices = np.array([i for t in truth for i in t], dtype=np.int32)
    expected = accuracy_metrics(topk, indptr, indices, [3, 10])
    monkeypatch.setattr(acc, "_MAX_MARKER_BYTES", 0)  # one block per thread
    got = accuracy_metrics(topk, indptr, indices, [3, 10])
    for name, vals in expected.items():
        np.testing.assert_array_equal(got[name], vals)
    for u in range(0, 300, 37):  # list items >= 40 lie outside the truth's code range: never relevant
        for k in (3, 10):
            want = reference(topk[u].tolist(), set(truth[u]), k)
            for m in METRICS:
                assert got[f"{m}@{k}"][u] == pytest.approx(want[m], abs=1e-12)


# ---- graded NDCG ---------------------------------------------------------------------------------------------


def graded_reference(row: list[int], grades: dict[int, float], k: int, burges: bool) -> float:
    """Plain-Python graded NDCG@k: gain = grade (Järvelin) or 2^grade - 1 (Burges), discount 1/log2(rank+1)."""
    def gain(g: float) -> float:
        return 2.0 ** g - 1.0 if burges else g

    dcg = sum(gain(grades.get(i, 0.0)) / math.log2(r + 2) for r, i in enumerate(row[:k]) if i >= 0)
    ideal = sorted((gain(g) for g in grades.values()), reverse=True)[:k]
    idcg = sum(g / math.log2(r + 2) for r, g in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


@st.composite
def graded_case(draw):
    topk, indptr, indices, ks, truth = draw(topk_and_truth())
    rel = np.array(draw(st.lists(st.integers(0, 5), min_size=len(indices), max_size=len(indices))),
                   dtype=np.float64)
    return topk, indptr, indices, rel, ks, truth


@settings(max_examples=60, deadline=None)
@given(graded_case(), st.booleans())
def test_graded_ndcg_matches_reference(case, burges):
    from recux.kernels.accuracy import graded_ndcg

    topk, indptr, indices, rel, ks, truth = case
    got = graded_ndcg(topk, indptr, indices, rel, ks, gain="burges" if burges else "jarvelin")
    for u, row in enumerate(topk.tolist()):
        grades = dict(zip(indices[indptr[u]:indptr[u + 1]].tolist(), rel[indptr[u]:indptr[u + 1]].tolist(),
                          strict=True))
        for k in set(ks):
            assert got[k][u] == pytest.approx(graded_reference(row, grades, k, burges), abs=1e-12)


def test_graded_ndcg_matches_ranx_and_binary_grades_give_binary_ndcg():
    """ranx ndcg (Järvelin) and ndcg_burges on graded qrels (grades 1-5; ranx drops grades below 1)."""
    from ranx import Qrels, Run, evaluate

    from recux.kernels.accuracy import graded_ndcg

    rng = np.random.default_rng(3)
    n, n_items, width, ks = 12, 15, 6, [1, 3, 6]
    topk = np.array([rng.permutation(n_items)[:width] for _ in range(n)], dtype=np.int32)
    truth = [np.sort(rng.choice(n_items, size=rng.integers(1, 8), replace=False)) for _ in range(n)]
    indptr = np.concatenate([[0], np.cumsum([len(t) for t in truth])]).astype(np.int64)
    indices = np.concatenate(truth).astype(np.int32)
    rel = rng.integers(1, 6, size=len(indices)).astype(np.float64)
    qids = [f"q{u:05d}" for u in range(n)]
    qrels = Qrels({q: {f"d{i}": int(g) for i, g in zip(truth[u], rel[indptr[u]:indptr[u + 1]], strict=True)}
                   for u, q in enumerate(qids)})
    run = Run({q: {f"d{i}": float(width - p) for p, i in enumerate(topk[u])} for u, q in enumerate(qids)})
    threads = numba.get_num_threads()
    try:
        want = evaluate(qrels, run, [f"ndcg@{k}" for k in ks] + [f"ndcg_burges@{k}" for k in ks],
                        return_mean=False, save_results_in_run=False)
    finally:
        numba.set_num_threads(threads)
    jar = graded_ndcg(topk, indptr, indices, rel, ks, gain="jarvelin")
    bur = graded_ndcg(topk, indptr, indices, rel, ks, gain="burges")
    for k in ks:
        np.testing.assert_allclose(jar[k], want[f"ndcg@{k}"], atol=1e-9)
        np.testing.assert_allclose(bur[k], want[f"ndcg_burges@{k}"], atol=1e-9)
    ones = graded_ndcg(topk, indptr, indices, np.ones(len(indices)), ks)
    binary = accuracy_metrics(topk, indptr, indices, ks)
    for k in ks:
        np.testing.assert_allclose(ones[k], binary[f"ndcg@{k}"], atol=1e-12)


def test_one_ks_validator_names_the_setting():
    from recux.errors import ConfigError
    from recux.kernels.accuracy import check_ks

    assert check_ks([10, 5, 5, 20]) == (5, 10, 20)
    with pytest.raises(ConfigError, match="metrics.ks"):
        check_ks([0, 5], setting="metrics.ks")
    with pytest.raises(ConfigError, match="k=20 is larger than the top-k lists \\(10 columns\\).*--ks"):
        check_ks([5, 20], width=10, setting="--ks")
    with pytest.raises(ConfigError, match="positive integers"):
        check_ks([2.5])
