"""recux-evaluate end to end on temporary files (same numbers as the Python API) and its bad-input errors."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp

from recux.cli.evaluate import main
from recux.evaluation import evaluate_topk

N_USERS, N_ITEMS, WIDTH = 30, 25, 6


def run_cli(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exc:  # argparse usage errors
        return int(exc.code)


@pytest.fixture()
def world(tmp_path):
    return make_world(tmp_path)


def make_world(tmp_path):
    """Codes -> raw ids "u<code>"/"i<code>" (text order differs from code order, e.g. i10 < i2)."""
    rng = np.random.default_rng(0)
    topk = np.array([rng.permutation(N_ITEMS)[:WIDTH] for _ in range(N_USERS)], dtype=np.int32)
    topk[4, 3:] = -1  # a shorter list
    topk[9, :] = -1  # a user without recommendations (but with ground truth)
    truth = rng.random((N_USERS, N_ITEMS)) < 0.15
    truth[::6] = False  # users without ground truth: excluded
    truth[9, 2] = True
    train = rng.random((40, N_ITEMS)) < 0.2
    train[0, :] = True  # every item seen in training: the catalogue is N_ITEMS items in both paths
    recs = [(f"u{u}", f"i{i}", pos + 1, float(WIDTH - pos) + 0.5 * u)
            for u in range(N_USERS) for pos, i in enumerate(topk[u]) if i >= 0]
    recs_df = pl.DataFrame(recs, schema=["user", "item", "rank", "score"], orient="row").sample(
        fraction=1.0, shuffle=True, seed=1)  # file order must not matter
    truth_df = pl.DataFrame([(f"u{u}", f"i{i}") for u, i in zip(*np.nonzero(truth), strict=True)],
                            schema=["user", "item"], orient="row")
    train_df = pl.DataFrame([(f"t{u}", f"i{i}") for u, i in zip(*np.nonzero(train), strict=True)],
                            schema=["user", "item"], orient="row")
    paths = {"recs": tmp_path / "recs.csv", "truth": tmp_path / "truth.tsv", "train": tmp_path / "train.parquet"}
    recs_df.select("user", "item", "rank").write_csv(paths["recs"])
    truth_df.write_csv(paths["truth"], separator="\t")
    train_df.write_parquet(paths["train"])
    expected = evaluate_topk(topk, sp.csr_matrix(truth.astype(np.float32)), ks=(1, 3, 6),
                             train=sp.csr_matrix(train.astype(np.float32)), users=np.arange(N_USERS),
                             n_items=N_ITEMS)
    return {"paths": paths, "recs_df": recs_df, "expected": expected, "tmp": tmp_path, "topk": topk,
            "truth": truth, "train": train}


def check_same(out_json, expected):
    got = json.loads(out_json.read_text())
    assert got["means"].keys() == expected.means.keys()
    for name, val in expected.means.items():
        assert got["means"][name] == pytest.approx(val, abs=1e-12), name
    assert got["n_evaluated"] == expected.n_evaluated
    assert got["n_excluded_empty"] == expected.n_excluded_empty
    assert got["directions"] == expected.directions


def test_end_to_end_equals_python_api(world, capsys):
    p, out = world["paths"], world["tmp"] / "res" / "metrics.json"
    per_user = world["tmp"] / "per_user.csv"
    rc = run_cli([str(p["recs"]), str(p["truth"]), "--train", str(p["train"]), "--ks", "1,3,6",
                  "--output", str(out), "--per-user", str(per_user)])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    check_same(out, world["expected"])
    assert "ndcg (higher better)" in captured.out and "arp (lower better)" in captured.out
    assert [f.name for f in out.parent.iterdir()] == ["metrics.json"]  # no temporary file left behind
    table = pl.read_csv(per_user)
    exp = world["expected"].per_user.with_columns(pl.format("u{}", "user").alias("user"))
    joined = table.join(exp, on="user", suffix="_exp")
    assert joined.height == world["expected"].n_evaluated
    np.testing.assert_allclose(joined["ndcg@3"].to_numpy(), joined["ndcg@3_exp"].to_numpy(), atol=1e-12)


def test_scores_and_custom_column_names(world, capsys):
    """Ordering by a score column (higher first) gives the same result as the rank column."""
    p, out = world["paths"], world["tmp"] / "m.json"
    recs = world["tmp"] / "recs_scored.parquet"
    world["recs_df"].select(pl.col("user").alias("uid"), pl.col("item").alias("iid"), pl.col("score").alias("s")) \
        .write_parquet(recs)
    for path in ("truth", "train"):
        df = pl.read_parquet(p[path]) if path == "train" else pl.read_csv(p[path], separator="\t")
        df.rename({"user": "uid", "item": "iid"}).write_csv(world["tmp"] / f"{path}2.csv")
    rc = run_cli([str(recs), str(world["tmp"] / "truth2.csv"), "--train", str(world["tmp"] / "train2.csv"),
                  "--user-col", "uid", "--item-col", "iid", "--score-col", "s", "--ks", "1,3,6",
                  "--output", str(out)])
    assert rc == 0, capsys.readouterr().err
    check_same(out, world["expected"])


def test_without_train_popularity_metrics_are_skipped(world, capsys):
    p, out = world["paths"], world["tmp"] / "m.json"
    rc = run_cli([str(p["recs"]), str(p["truth"]), "--ks", "3", "--metrics", "ndcg,coverage", "--output", str(out)])
    assert rc == 0
    got = json.loads(out.read_text())
    assert set(got["means"]) == {"ndcg@3", "coverage@3"}
    assert got["means"]["ndcg@3"] == pytest.approx(world["expected"].means["ndcg@3"], abs=1e-12)


def write(path, text):
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize(
    ("recs", "truth", "extra", "message"),
    [
        ("user,item,rank\nu1,a,1\n", "user,product\nu1,a\n", [], "has no 'item' or 'item_id' column"),
        ("user,item,rank\nu1,a,1\n", "user,product\nu1,a\n", ["--item-col", "item"],
         "column 'item' (--item-col) is not in"),
        ("user,item,rank\nu1,a,1\nu1,b,two\n", "user,item\nu1,a\n", ["--ks", "1"],
         "line 3: value 'two' in column 'rank' (--rank-col) is not a rank (an integer >= 1, 1 = best)"),
        ("user,item,rank\nu1,a,1\nu1,b,1\n", "user,item\nu1,a\n", ["--ks", "1"], "ranks must be distinct"),
        ("user,item,rank\nu1,a,1\nu1,a,2\n", "user,item\nu1,a\n", ["--ks", "1"], "more than once"),
        ("user,item,pos\nu1,a,1\n", "user,item\nu1,a\n", ["--ks", "1"], "neither a 'rank' nor a 'score'"),
        ("user,item,rank\nu1,a,1\n", "user,item\nu1,a\n", ["--metrics", "ndgc"], "Did you mean 'ndcg'"),
        ("user,item,rank\nu1,a,1\nu1,b,2\n", "user,item\nu1,a\n", ["--ks", "1,5"],
         "--ks 1,5: the longest recommendation list in"),
        ("user,item,rank\nu1,a,1\n", "user,item\nu1,a\n", ["--ks", "1,x"], "--ks must be comma-separated"),
        ("user,item,rank\nu1,a,1\n", "user,item\nu1,a\n", ["--ks", "1", "--metrics", "arp"], "--train"),
    ],
)
def test_bad_input_exits_2_with_one_message(tmp_path, capsys, recs, truth, extra, message):
    rc = run_cli([write(tmp_path / "r.csv", recs), write(tmp_path / "t.csv", truth), *extra])
    err = capsys.readouterr().err
    assert rc == 2
    assert message in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert err.startswith("recux-evaluate: error:")


def test_missing_file(tmp_path, capsys):
    rc = run_cli([str(tmp_path / "nope.csv"), write(tmp_path / "t.csv", "user,item\nu,a\n")])
    err = capsys.readouterr().err
    assert rc == 2 and "does not exist" in err and "Traceback" not in err


def test_history_and_item_features_reproduce_a_runs_ux_metrics_from_its_files(tmp_path):
    """A pipeline run's own files (recommendations, split, the dataset's item features) through recux-evaluate
    with --history (training + validation: what the test ranking masked) and --item-features give the run's
    calibration, ILD, popularity-list and popularity-lift values."""
    from recux import stages
    from recux.pipeline import run_experiment
    from tests._compose import compose_cfg

    names = ["ndcg", "ild", "miscalibration", "unexpectedness_pop", "serendipity", "pop_lift"]
    overrides = ["dataset=synthetic", "dataset.n_users=120", "dataset.n_items=70", "logger=none", "model=itemknn",
                 "metrics.ks=[5,10]", "metrics.plugins=[" + ", ".join(f"{{name: {n}}}" for n in names) + "]"]
    run = tmp_path / "run"
    run_experiment(compose_cfg(overrides), run, overrides)
    record = json.loads((run / "results.json").read_text())
    split = run / "split"
    history = pl.concat([pl.read_parquet(split / "train.parquet"), pl.read_parquet(split / "valid.parquet")])
    history.write_parquet(tmp_path / "history.parquet")
    data = stages.prepare_data(stages.RunSpec.from_config(compose_cfg(overrides)))
    feats = data.dataset.item_features.with_columns(pl.Series("item_id", data.dataset.item_ids))
    feats.write_parquet(tmp_path / "items.parquet")
    out = tmp_path / "m.json"
    code = run_cli([str(run / "recommendations.parquet"), str(split / "test.parquet"), "--train",
                    str(split / "train.parquet"), "--history", str(tmp_path / "history.parquet"), "--item-features",
                    str(tmp_path / "items.parquet"), "--n-items", str(record["dataset"]["n_items"]),
                    "--metrics", ",".join(names), "--ks", "5,10", "--output", str(out)])
    assert code == 0
    got = json.loads(out.read_text())["means"]
    for name in (f"{n}@{k}" for n in names for k in (5, 10)):
        assert got[name] == pytest.approx(record["metrics"][name], rel=1e-12, abs=1e-12), name
