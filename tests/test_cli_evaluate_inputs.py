"""recux-evaluate on the inputs issue 8 found mishandled: recux's own column names, bad ranks, files without
rows, ground-truth users without recommendations, and default cut-offs longer than the lists."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp

from recux.evaluation import evaluate_topk
from tests.test_cli_evaluate import N_ITEMS, N_USERS, check_same, make_world, run_cli, write


@pytest.fixture()
def world(tmp_path):
    return make_world(tmp_path)


def run_err(argv, capsys) -> tuple[int, str, str]:
    rc = run_cli(argv)
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_recux_column_names_user_id_item_id_are_found_and_stated(world, capsys):
    """recommendations.parquet names its columns user_id/item_id; a hand-written file user/item: both work."""
    p, out = world["paths"], world["tmp"] / "m.json"
    recs = world["tmp"] / "recommendations.parquet"
    world["recs_df"].rename({"user": "user_id", "item": "item_id"}).write_parquet(recs)
    rc, stdout, err = run_err([str(recs), str(p["truth"]), "--train", str(p["train"]), "--ks", "1,3,6",
                               "--output", str(out)], capsys)
    assert rc == 0, err
    check_same(out, world["expected"])
    assert json.loads(out.read_text())["columns"] == {
        "recommendations": {"user": "user_id", "item": "item_id"}, "ground_truth": {"user": "user", "item": "item"},
        "train": {"user": "user", "item": "item"}}
    assert "id columns: recommendations user_id, item_id; ground truth user, item; train user, item" in stdout


def test_a_file_with_both_user_and_user_id_asks_for_the_flag(tmp_path, capsys):
    recs = write(tmp_path / "r.csv", "user,user_id,item,rank\nu1,9,a,1\n")
    rc, _, err = run_err([recs, write(tmp_path / "t.csv", "user,item\nu1,a\n"), "--ks", "1"], capsys)
    assert rc == 2 and "has both a 'user' and a 'user_id' column" in err and "--user-col" in err
    rc, _, err = run_err([recs, write(tmp_path / "t.csv", "user,item\nu1,a\n"), "--ks", "1", "--user-col", "user"],
                         capsys)
    assert rc == 0, err


@pytest.mark.parametrize("rank", ["inf", "1.5", "-3", "0", "nan", "-inf"])
def test_ranks_that_are_not_positions_are_refused(tmp_path, capsys, rank):
    recs = write(tmp_path / "r.csv", f"user,item,rank\nu1,b,2\nu1,a,{rank}\n")
    rc, _, err = run_err([recs, write(tmp_path / "t.csv", "user,item\nu1,a\n"), "--ks", "1"], capsys)
    assert rc == 2
    assert f"line 3: value '{rank}' in column 'rank' (--rank-col) is not a rank (an integer >= 1, 1 = best)" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("rank", [np.inf, 1.5, -3.0, 0.0])
def test_parquet_float_ranks_that_are_not_positions_are_refused(tmp_path, capsys, rank):
    recs = tmp_path / "r.parquet"
    pl.DataFrame({"user": ["u1", "u1"], "item": ["b", "a"], "rank": [2.0, rank]}).write_parquet(recs)
    rc, _, err = run_err([str(recs), write(tmp_path / "t.csv", "user,item\nu1,a\n"), "--ks", "1"], capsys)
    assert rc == 2 and "row 2: value" in err and "is not a rank (an integer >= 1, 1 = best)" in err


@pytest.mark.parametrize("role", ["recommendations", "ground-truth"])
@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_a_file_without_rows_says_so(tmp_path, capsys, role, kind):
    files = {"recommendations": ("r", "user,item,rank\n", {"user": [], "item": [], "rank": []}),
             "ground-truth": ("t", "user,item\n", {"user": [], "item": []})}
    stem, header, columns = files[role]
    empty = tmp_path / f"{stem}.{kind}"
    if kind == "csv":
        empty.write_text(header)
    else:
        pl.DataFrame(columns, schema=dict.fromkeys(columns, pl.String)).write_parquet(empty)
    recs = str(empty) if role == "recommendations" else write(tmp_path / "r.csv", "user,item,rank\nu1,a,1\n")
    truth = str(empty) if role == "ground-truth" else write(tmp_path / "t.csv", "user,item\nu1,a\n")
    rc, _, err = run_err([recs, truth], capsys)
    assert rc == 2 and f"{role} file {empty} has no data rows" in err and "cut-offs" not in err


def test_lists_whose_ranks_all_lie_beyond_the_cut_offs_score_zero(tmp_path, capsys):
    """Rank = position: items only at rank 30 leave the top 20 empty (no "use cut-offs <= 0")."""
    recs = write(tmp_path / "r.csv", "user,item,rank\nu1,a,30\nu2,b,25\n")
    out = tmp_path / "m.json"
    rc, _, err = run_err([recs, write(tmp_path / "t.csv", "user,item\nu1,a\nu2,b\n"), "--metrics", "ndcg,hit",
                          "--output", str(out)], capsys)
    assert rc == 0, err
    ref = evaluate_topk(np.full((2, 20), -1), sp.csr_matrix(np.eye(2)), ks=(5, 10, 20), metrics=["ndcg", "hit"])
    assert json.loads(out.read_text())["means"] == ref.means


def test_ground_truth_users_without_recommendations_are_counted(world, capsys):
    p, out = world["paths"], world["tmp"] / "m.json"
    rc, stdout, err = run_err([str(p["recs"]), str(p["truth"]), "--ks", "1,3", "--output", str(out)], capsys)
    assert rc == 0, err
    truth_users = set(pl.read_csv(p["truth"], separator="\t")["user"])
    expected = sorted(truth_users - set(pl.read_csv(p["recs"])["user"]))
    assert expected  # the fixture has one (u9)
    got = json.loads(out.read_text())
    assert got["n_without_recommendations"] == len(expected)
    assert got["users_without_recommendations"] == expected
    assert f"users with ground truth but no recommendations: {len(expected)}" in stdout
    assert repr(expected[0]) in stdout


def test_no_missing_users_reports_zero(tmp_path, capsys):
    out = tmp_path / "m.json"
    rc, stdout, _ = run_err([write(tmp_path / "r.csv", "user,item,rank\nu1,a,1\n"),
                             write(tmp_path / "t.csv", "user,item\nu1,a\n"), "--ks", "1", "--output", str(out)], capsys)
    assert rc == 0 and json.loads(out.read_text())["n_without_recommendations"] == 0
    assert "no recommendations" not in stdout


def test_default_cut_offs_longer_than_the_lists_are_dropped_and_stated(world, capsys):
    """Lists of 6 items: the default 5,10,20 becomes 5 (10 and 20 dropped, said on stderr and in the JSON)."""
    p, out = world["paths"], world["tmp"] / "m.json"
    rc, _, err = run_err([str(p["recs"]), str(p["truth"]), "--train", str(p["train"]), "--output", str(out)],
                         capsys)
    assert rc == 0, err
    ref = evaluate_topk(world["topk"][:, :5], sp.csr_matrix(world["truth"].astype(np.float32)), ks=(5,),
                        train=sp.csr_matrix(world["train"].astype(np.float32)), users=np.arange(N_USERS),
                        n_items=N_ITEMS)
    check_same(out, ref)
    got = json.loads(out.read_text())
    assert got["ks"] == [5] and got["ks_dropped"] == [10, 20]
    assert "cut-offs 10, 20 dropped from the default --ks 5,10,20" in err


def test_default_cut_offs_all_too_long_use_the_longest_list(tmp_path, capsys):
    out = tmp_path / "m.json"
    rc, _, err = run_err([write(tmp_path / "r.csv", "user,item,rank\nu1,a,1\nu1,b,2\nu2,a,1\n"),
                          write(tmp_path / "t.csv", "user,item\nu1,b\nu2,c\n"), "--metrics", "hit",
                          "--output", str(out)], capsys)
    assert rc == 0, err
    got = json.loads(out.read_text())
    ref = evaluate_topk(np.array([[0, 1], [0, -1]]), sp.csr_matrix(np.array([[0, 1, 0], [0, 0, 1.0]])), ks=(2,),
                        metrics=["hit"])
    assert got["ks"] == [2] and got["ks_dropped"] == [5, 10, 20] and got["means"] == ref.means


def test_explicit_cut_offs_longer_than_the_lists_are_refused_with_a_list_that_fits(world, capsys):
    p = world["paths"]
    rc, _, err = run_err([str(p["recs"]), str(p["truth"]), "--ks", "3,5,10,20"], capsys)
    assert rc == 2
    assert f"--ks 3,5,10,20: the longest recommendation list in {p['recs']} has 6 items" in err
    assert "no list reaches k=10, 20" in err and "e.g. --ks 3,5" in err
