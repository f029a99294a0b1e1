"""recux-evaluate against the pipeline and the Python API: the catalogue, the one tie rule, rank = position,
graded relevance; and a real run's own files reproduce its results.json."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp

from recux.cli.evaluate import main
from recux.evaluation import evaluate_scores, evaluate_topk


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    try:
        rc = main(argv)
    except SystemExit as exc:
        rc = int(exc.code)
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_a_runs_own_files_reproduce_every_metric_of_its_results(tmp_path, capsys):
    from tests.test_pipeline import FAST, run

    results, run_dir = run(tmp_path, FAST)
    n_items = results["dataset"]["n_items"]
    out = tmp_path / "cli.json"
    base = [str(run_dir / "recommendations.parquet"), str(run_dir / "split/test.parquet"),
            "--train", str(run_dir / "split/train.parquet"), "--ks", "5,10,20"]  # user_id/item_id found
    rc, stdout, err = run_cli([*base, "--n-items", str(n_items), "--output", str(out)], capsys)
    assert rc == 0, err
    got = json.loads(out.read_text())
    assert got["means"].keys() == results["metrics"].keys()
    for name, value in results["metrics"].items():
        assert got["means"][name] == pytest.approx(value, abs=1e-12), name
    assert got["n_evaluated"] == results["users"]["evaluated"]
    assert got["catalogue"] == {"n_items": n_items, "source": "--n-items"}
    assert f"catalogue: {n_items} items, from --n-items" in stdout
    assert "id columns: recommendations user_id, item_id; ground truth user_id, item_id; train user_id, item_id" \
        in stdout
    assert got["n_without_recommendations"] == 0  # the pipeline ranks every test user
    # without the catalogue: the items seen in the files, said in the output
    rc, stdout, err = run_cli([*base, "--output", str(out)], capsys)
    seen = json.loads(out.read_text())["catalogue"]["n_items"]
    assert rc == 0 and seen <= n_items and f"catalogue: {seen} items, from the items seen in the input files" in stdout
    assert "--n-items or --items" in err


def test_catalogue_from_items_file_and_items_outside_it(tmp_path, capsys):
    recs = tmp_path / "r.csv"
    recs.write_text("user,item,rank\nu1,7,1\nu1,9,2\nu2,7,1\nu2,8,2\n")
    truth = tmp_path / "t.csv"
    truth.write_text("user,item\nu1,9\nu2,8\n")
    items = tmp_path / "items.csv"
    items.write_text("item\n" + "".join(f"{i}\n" for i in range(1, 11)))
    out = tmp_path / "m.json"
    rc, stdout, err = run_cli([str(recs), str(truth), "--items", str(items), "--ks", "2", "--metrics",
                               "coverage,gini", "--output", str(out)], capsys)
    assert rc == 0, err
    got = json.loads(out.read_text())
    topk = np.array([[6, 8], [6, 7]])  # codes of ids 7, 9, 8 in the catalogue 1..10
    ref = evaluate_topk(topk, sp.csr_matrix(([1, 1], ([0, 1], [8, 7])), shape=(2, 10)), ks=(2,),
                        metrics=["coverage", "gini"], n_items=10)
    assert got["means"]["coverage@2"] == pytest.approx(ref.means["coverage@2"]) == 3 / 10
    assert got["means"]["gini@2"] == pytest.approx(ref.means["gini@2"], abs=1e-12)
    assert got["catalogue"] == {"n_items": 10, "source": f"--items {items}"}
    assert run_cli([str(recs), str(truth), "--n-items", "10", "--ks", "2", "--metrics", "coverage",
                    "--output", str(out)], capsys)[0] == 0
    assert json.loads(out.read_text())["means"]["coverage@2"] == pytest.approx(3 / 10)

    items.write_text("item\n7\n8\n")
    rc, _, err = run_cli([str(recs), str(truth), "--items", str(items), "--ks", "2"], capsys)
    assert rc == 2 and "line 3: value 9 in column 'item' (--item-col) is not in the catalogue" in err
    rc, _, err = run_cli([str(recs), str(truth), "--n-items", "2", "--ks", "2"], capsys)
    assert rc == 2 and "--n-items 2 is smaller than the 3 distinct items" in err


def test_cli_and_api_follow_one_tie_rule_on_ids_9_and_10(tmp_path, capsys):
    """Every score tied: the API ranks the lower code (= the smaller integer id) first; so must the CLI."""
    rng = np.random.default_rng(5)
    n_users, n_items = 40, 14
    ids = np.arange(1, n_items + 1)  # 1..14: as text "10" < "9", as numbers 9 < 10
    scores = rng.integers(0, 3, size=(n_users, n_items)).astype(np.float32)  # many ties
    truth = (rng.random((n_users, n_items)) < 0.25).astype(np.float32)
    truth[:, 0] = 1.0  # every user has ground truth
    ks = (1, 3, 5)
    api = evaluate_scores(scores, sp.csr_matrix(truth), k_max=n_items, ks=ks, metrics=["ndcg", "hit", "recall"],
                          users=np.arange(n_users), n_items=n_items)
    u, i = np.nonzero(np.ones_like(scores))
    pl.DataFrame({"user": u, "item": ids[i], "score": scores[u, i]}).sample(fraction=1.0, shuffle=True, seed=2) \
        .write_csv(tmp_path / "recs.csv")
    tu, ti = np.nonzero(truth)
    pl.DataFrame({"user": tu, "item": ids[ti]}).write_csv(tmp_path / "truth.csv")
    out = tmp_path / "m.json"
    rc, _, err = run_cli([str(tmp_path / "recs.csv"), str(tmp_path / "truth.csv"), "--ks", "1,3,5",
                          "--metrics", "ndcg,hit,recall", "--output", str(out)], capsys)
    assert rc == 0, err
    got = json.loads(out.read_text())["means"]
    assert got == api.means  # identical, not merely close


def test_a_missing_rank_leaves_its_position_empty(tmp_path, capsys):
    """Ranks 1, 2, 4: the item at rank 4 is at position 4, outside the top 3 (position 3 is empty)."""
    recs = tmp_path / "r.csv"
    recs.write_text("user,item,rank\nu,a,1\nu,b,2\nu,d,4\n")
    truth = tmp_path / "t.csv"
    truth.write_text("user,item\nu,d\n")
    out = tmp_path / "m.json"
    rc, _, err = run_cli([str(recs), str(truth), "--ks", "3,4", "--metrics", "hit,ndcg,precision",
                          "--output", str(out)], capsys)
    assert rc == 0, err
    got = json.loads(out.read_text())["means"]
    ref = evaluate_topk(np.array([[0, 1, -1, 2]]), sp.csr_matrix(np.array([[0, 0, 1.0]])), ks=(3, 4),
                        metrics=["hit", "ndcg", "precision"])
    assert got == pytest.approx(ref.means, abs=1e-12)
    assert got["hit@3"] == 0.0 and got["hit@4"] == 1.0
    recs.write_text("user,item,rank\nu,a,1\nu,b,2.5\n")
    rc, _, err = run_cli([str(recs), str(truth), "--ks", "1"], capsys)
    assert rc == 2 and "line 3" in err and "is not a rank (an integer >= 1" in err


def test_relevance_column_gives_graded_ndcg_like_the_api(tmp_path, capsys):
    recs = tmp_path / "r.tsv"
    recs.write_text("user\titem\trank\n1\t10\t1\n1\t11\t2\n1\t12\t3\n2\t12\t1\n2\t10\t2\n2\t13\t3\n")
    truth = tmp_path / "t.tsv"
    truth.write_text("user\titem\trating\n1\t11\t5\n1\t12\t2\n1\t14\t4\n2\t13\t3\n")
    out = tmp_path / "m.json"
    rc, _, err = run_cli([str(recs), str(truth), "--relevance-col", "rating", "--ks", "2,3",
                          "--metrics", "ndcg,ndcg_graded,ndcg_burges", "--output", str(out)], capsys)
    assert rc == 0, err
    got = json.loads(out.read_text())["means"]
    grades = np.zeros((2, 5))
    grades[0, [1, 2, 4]] = [5, 2, 4]
    grades[1, 3] = 3
    topk = np.array([[0, 1, 2], [2, 0, 3]])
    ref = evaluate_topk(topk, sp.csr_matrix(grades > 0), ks=(2, 3), metrics=["ndcg", "ndcg_graded", "ndcg_burges"],
                        graded_truth=sp.csr_matrix(grades))
    assert got == pytest.approx(ref.means, abs=1e-12)
    assert got["ndcg_graded@3"] != pytest.approx(got["ndcg@3"])
    rc, _, err = run_cli([str(recs), str(truth), "--ks", "2", "--metrics", "ndcg_graded"], capsys)
    assert rc == 2 and "--relevance-col" in err


def test_one_separator_rule(tmp_path, capsys):
    """No sniffing: an unknown extension needs --separator (the files dataset's rule)."""
    recs = tmp_path / "r.txt"
    recs.write_text("user|item|rank\nu|a|1\n")
    truth = tmp_path / "t.csv"
    truth.write_text("user,item\nu,a\n")
    rc, _, err = run_cli([str(recs), str(truth), "--ks", "1", "--metrics", "hit"], capsys)
    assert rc == 2 and "--separator" in err
    truth.write_text("user|item\nu|a\n")
    rc, out, err = run_cli([str(recs), str(truth), "--ks", "1", "--metrics", "hit", "--separator", "|"], capsys)
    assert rc == 0, err
