"""scripts/bench_ux_metrics.py: its synthetic input is what it says, and a tiny run prints both timings, their
ratio, each metric's compute time and values that match an independent computation."""

import numpy as np
import pytest
import scipy.sparse as sp

from tests._scripts import load_script

TINY = ["--users", "2000", "--items", "500", "--repeats", "1"]


@pytest.fixture(scope="module")
def bench():
    return load_script("bench_ux_metrics")


def _lines(out: str) -> dict[str, str]:
    return dict(line.split(": ", 1) for line in out.splitlines() if ": " in line)


def test_synthetic_input_has_the_promised_shape(bench):
    d = bench.make_data(3000, 400, k=20, history_len=30, gt_len=8, seed=1)
    topk = d["topk"]
    assert topk.shape == (3000, 20) and topk.dtype == np.int32
    n_real = (topk >= 0).sum(axis=1)
    np.testing.assert_array_equal(topk < 0, np.arange(20)[None, :] >= n_real[:, None])  # padding only at the end
    s = np.sort(topk, axis=1)
    assert not ((s[:, 1:] == s[:, :-1]) & (s[:, 1:] >= 0)).any()  # no item twice in a list
    train, truth = d["train"], d["ground_truth"]
    sizes = np.diff(train.indptr)
    assert sizes.min() >= 1 and 0.8 * 30 < sizes.mean() <= 30  # ~history_len, fewer after dropping repeats
    assert np.diff(truth.indptr).min() >= 1
    in_list = (sp.csr_matrix((np.ones(topk.size), (np.repeat(np.arange(3000), 20), np.maximum(topk, 0).ravel())),
                             shape=(3000, 400)) > 0).multiply(truth).nnz
    assert in_list / truth.nnz > 0.25  # about a third of the ground truth comes from the user's own list
    pop = np.bincount(train.indices, minlength=400)
    assert np.sort(pop)[-40:].sum() > 4 * np.sort(pop)[:40].sum()  # skewed popularity
    genres = d["item_features"]["genres"].to_list()
    assert len(genres) == 400 and all(1 <= len(g) == len(set(g)) <= 3 for g in genres)
    assert {c for g in genres for c in g} == {f"genre_{c:02d}" for c in range(20)}
    assert d["item_embeddings"].shape == (400, 64) and d["item_embeddings"].dtype == np.float32


def test_tiny_run_prints_both_timings_their_ratio_and_true_values(bench, capsys):
    names = "ndcg,pop_lift,aplt,personalisation,no_such_metric"
    assert bench.main([*TINY, "--names", names]) == 0
    v = _lines(capsys.readouterr().out)
    assert v["ux metrics"] == "ndcg,pop_lift,aplt,personalisation"
    assert v["skipped (not registered)"] == "no_such_metric"
    acc, ux = float(v["accuracy_seconds"].split()[0]), float(v["ux_seconds"].split()[0])
    ratio = float(v["ratio_ux_over_accuracy"])
    assert acc > 0 and ux > 0
    assert ratio == pytest.approx(ux / acc, rel=0.6e-6 / acc + 0.6e-6 / ux + 0.6e-4 / ratio)  # printed rounding
    parts = [float(v[f"compute_seconds {n}"]) for n in ("ndcg", "pop_lift", "aplt", "personalisation")]
    assert all(p > 0 for p in parts) and sum(parts) <= ux + 4e-6  # one run: the parts are inside the total
    # the value printed is personalisation of the script's own input: 1 - mean cosine of list pairs
    topk = bench.make_data(2000, 500, 20)["topk"]
    x = sp.csr_matrix((np.ones(int((topk >= 0).sum())), np.maximum(topk, 0)[topk >= 0],
                       np.concatenate([[0], np.cumsum((topk >= 0).sum(axis=1))])), shape=(2000, 500))
    w = 1 / np.sqrt(np.asarray(x.sum(axis=1)).ravel())
    sim = (x.multiply(w[:, None]) @ x.multiply(w[:, None]).T).toarray()
    want = 1 - (sim.sum() - np.trace(sim)) / (2000 * 1999)
    assert float(v["value personalisation@20"]) == pytest.approx(want, rel=1e-5)


def test_metric_list_and_ks_come_from_the_yaml(bench, capsys, tmp_path):
    from recux.evaluation import evaluate_topk

    path = tmp_path / "ux.yaml"
    path.write_text("ks: [10, 50]\nplugins:\n  - {name: aplt, tail_share: 0.5}\n  - {name: not_there}\n")
    assert bench.main([*TINY, "--metrics", str(path)]) == 0
    v = _lines(capsys.readouterr().out)
    assert (v["ux metrics"], v["ks"], v["skipped (not registered)"]) == ("aplt", "10", "not_there")
    d = bench.make_data(2000, 500, 20)
    want = evaluate_topk(d["topk"], d["ground_truth"], metrics=[{"name": "aplt", "tail_share": 0.5}], ks=[10],
                         train=d["train"]).means["aplt@10"]
    assert float(v["value aplt@10"]) == pytest.approx(want, rel=1e-5)  # the YAML's parameter reached the metric
    assert bench.main([*TINY, "--metrics", str(tmp_path / "missing.yaml")]) == 0
    v = _lines(capsys.readouterr().out)
    assert "not found" in v["ux metrics from"]
    assert {"ndcg", "coverage", "pop_lift", "personalisation"} <= set(v["ux metrics"].split(","))
