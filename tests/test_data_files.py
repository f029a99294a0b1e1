"""The `files` dataset: CSV/TSV/Parquet interactions and features; an actionable error for each bad input."""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import polars as pl
import pytest

from recux import registry
from recux.errors import DataError

ROWS = [  # user, item, rating, timestamp
    ("alice", "m1", 4.0, 100),
    ("alice", "m2", 2.5, 50),
    ("bob", "m2", 5.0, 70),
    ("carol", "m3", 1.0, 10),
    ("bob", "m1", 3.0, 90),
]


def load(**params):
    return registry.build("dataset", "files", params).load()


def _expected_triples(rows):
    return sorted((u, i, r, t) for u, i, r, t in rows)


def _triples(ds):
    return sorted(ds.to_frame().iter_rows())


def write_delimited(path, rows, sep=",", header=("user", "item", "score", "time")):
    lines = [sep.join(header)] if header else []
    lines += [sep.join(str(x) for x in r) for r in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("ext,sep", [(".csv", ","), (".tsv", "\t")])
def test_delimited_roundtrip(tmp_path, ext, sep):
    path = write_delimited(tmp_path / f"inter{ext}", ROWS, sep)
    ds = load(path=str(path), user_col="user", item_col="item", rating_col="score", timestamp_col="time")
    assert _triples(ds) == _expected_triples(ROWS)
    assert (ds.n_users, ds.n_items) == (3, 3)
    assert ds.user_ids.tolist() == ["alice", "bob", "carol"]
    assert ds.interactions.rating.dtype == np.float32 and ds.interactions.timestamp.dtype == np.int64
    assert ds.info["source"] == "files" and len(next(iter(ds.info["sha256"].values()))) == 64


def test_parquet_and_numeric_ids(tmp_path):
    frame = pl.DataFrame({"u": [3, 1, 2, 1], "i": [10, 20, 10, 30], "r": [1, 2, 3, 4], "t": [5, 6, 7, 8]})
    frame.write_parquet(tmp_path / "x.parquet")
    ds = load(path=str(tmp_path / "x.parquet"), user_col="u", item_col="i", rating_col="r", timestamp_col="t")
    assert ds.user_ids.tolist() == [1, 2, 3] and ds.item_ids.tolist() == [10, 20, 30]
    assert _triples(ds) == sorted(frame.cast({"r": pl.Float32}).iter_rows())


def test_parquet_datetime_timestamps(tmp_path):
    when = [datetime(2020, 1, 1, tzinfo=timezone.utc), datetime(2021, 6, 1, 12, tzinfo=timezone.utc)]
    pl.DataFrame({"user_id": [1, 2], "item_id": [1, 1], "ts": when}).write_parquet(tmp_path / "d.parquet")
    ds = load(path=str(tmp_path / "d.parquet"), timestamp_col="ts")
    assert sorted(ds.interactions.timestamp.tolist()) == [int(w.timestamp()) for w in when]


def test_text_dates_become_unix_seconds(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("user_id,item_id,when\n1,1,2020-01-01\n2,1,2020-01-02\n")
    ds = load(path=str(path), timestamp_col="when")
    day = int(datetime(2020, 1, 1, tzinfo=timezone.utc).timestamp())
    assert sorted(ds.interactions.timestamp.tolist()) == [day, day + 86400]


def test_headerless_with_positions_and_implicit(tmp_path):
    path = write_delimited(tmp_path / "u.data", [(u, i, int(r), t) for u, i, r, t in ROWS], "\t", header=None)
    ds = load(path=str(path), user_col=0, item_col=1, separator="\t", has_header=False)
    assert ds.interactions.rating is None and ds.interactions.timestamp is None
    assert sorted(
        zip(ds.user_ids[ds.interactions.user], ds.item_ids[ds.interactions.item], strict=True)
    ) == sorted((u, i) for u, i, _, _ in ROWS)


def test_feature_files(tmp_path):
    inter = write_delimited(tmp_path / "inter.csv", ROWS)
    items = tmp_path / "items.tsv"
    items.write_text("movie\tname\tdescription\nm2\tTwo\tthe second\nm1\tOne\tthe first\nm9\tNine\tunused\n")
    users = tmp_path / "users.csv"
    users.write_text("uid,age\nbob,30\nalice,20\n")
    ds = load(
        path=str(inter),
        user_col="user",
        item_col="item",
        item_features_path=str(items),
        item_id_col="movie",
        item_text_col="description",
        user_features_path=str(users),
        user_id_col="uid",
    )
    f = ds.item_features
    assert f.columns == ["item_id", "name", "text"]
    assert f["item_id"].to_list() == ["m1", "m2", "m3"]
    assert f["text"].to_list() == ["the first", "the second", None]
    assert ds.user_features["age"].to_list() == [20, 30, None]
    assert ds.info["items_without_features"] == 1 and ds.info["users_without_features"] == 1


# ---- errors: each names the file, the line/column and the fix ----------------------------------------------


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="does not exist") as err:
        load(path=str(tmp_path / "nope.csv"))
    assert "nope.csv" in str(err.value)


@pytest.mark.parametrize("content", ["", "user_id,item_id\n"])
def test_empty_file(tmp_path, content):
    path = tmp_path / "e.csv"
    path.write_text(content)
    with pytest.raises(DataError, match="empty|no data rows") as err:
        load(path=str(path))
    assert "e.csv" in str(err.value)


def test_missing_column_lists_found_columns(tmp_path):
    path = write_delimited(tmp_path / "i.csv", ROWS)
    with pytest.raises(DataError) as err:
        load(path=str(path), user_col="user", item_col="movie_id")
    msg = str(err.value)
    assert "'movie_id'" in msg and "item_col" in msg
    for col in ("user", "item", "score", "time"):
        assert repr(col) in msg


def test_missing_column_headerless_hint(tmp_path):
    path = write_delimited(tmp_path / "i.csv", ROWS, header=None)
    with pytest.raises(DataError, match="column_1"):
        load(path=str(path), has_header=False)
    with pytest.raises(DataError, match="out of range"):
        load(path=str(path), has_header=False, user_col=0, item_col=7)


def test_non_numeric_rating_names_line_and_value(tmp_path):
    rows = list(ROWS)
    rows[2] = ("bob", "m2", "five", 70)  # data row 3 -> line 4 (after the header)
    path = write_delimited(tmp_path / "r.csv", rows)
    with pytest.raises(DataError) as err:
        load(path=str(path), user_col="user", item_col="item", rating_col="score")
    msg = str(err.value)
    assert "r.csv" in msg and "line 4" in msg and "'five'" in msg and "score" in msg


def test_line_numbers_count_blank_lines_and_quoted_newlines(tmp_path):
    path = tmp_path / "q.csv"
    path.write_text('user,item,score\n"a\nb",m1,3\n\nc,m2,4\nd,m3,oops\n')
    with pytest.raises(DataError, match="line 6") as err:
        load(path=str(path), user_col="user", item_col="item", rating_col="score")
    assert "'oops'" in str(err.value)


def test_empty_rating_value(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("user,item,score\na,m1,3\nb,m2,\n")
    with pytest.raises(DataError, match="line 3.*empty value"):
        load(path=str(path), user_col="user", item_col="item", rating_col="score")


def test_non_numeric_timestamp(tmp_path):
    rows = list(ROWS)
    rows[4] = ("bob", "m1", 3.0, "yesterday")  # line 6
    path = write_delimited(tmp_path / "t.tsv", rows, "\t")
    with pytest.raises(DataError) as err:
        load(path=str(path), user_col="user", item_col="item", timestamp_col="time")
    msg = str(err.value)
    assert "t.tsv" in msg and "line 6" in msg and "'yesterday'" in msg and "unix" in msg


def test_parquet_bad_value_names_row(tmp_path):
    pl.DataFrame({"user_id": [1, 2, 3], "item_id": [1, 2, 3], "rating": ["1", "2", "x"]}).write_parquet(
        tmp_path / "p.parquet"
    )
    with pytest.raises(DataError, match="row 3.*'x'"):
        load(path=str(tmp_path / "p.parquet"), rating_col="rating")


@pytest.mark.parametrize("bad_line,expect", [("bob,m2,5,70,extra", "5 fields"), ("bob,m2", "2 fields")])
def test_malformed_row(tmp_path, bad_line, expect):
    path = tmp_path / "m.csv"
    path.write_text("user,item,score,time\nalice,m1,4,100\nalice,m2,2,50\n" + bad_line + "\ncarol,m3,1,10\n")
    with pytest.raises(DataError) as err:
        load(path=str(path), user_col="user", item_col="item")
    msg = str(err.value)
    assert "m.csv" in msg and "line 4" in msg and expect in msg and "malformed" in msg


def test_missing_id(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text("user,item\nalice,m1\n,m2\n")
    with pytest.raises(DataError, match="line 3.*user"):
        load(path=str(path), user_col="user", item_col="item")


def test_unknown_extension_needs_separator(tmp_path):
    path = write_delimited(tmp_path / "ratings.dat", ROWS, "|")
    with pytest.raises(DataError, match="separator"):
        load(path=str(path))
    ds = load(path=str(path), separator="|", user_col="user", item_col="item", rating_col="score")
    assert len(ds.interactions) == len(ROWS)


def test_feature_file_errors(tmp_path):
    inter = tmp_path / "i.csv"
    inter.write_text("user_id,item_id\n1,10\n2,20\n")
    items = tmp_path / "items.csv"
    items.write_text("id,title\n10,a\n")
    with pytest.raises(DataError, match="'item_id'.*item_id_col.*'id'"):
        load(path=str(inter), item_features_path=str(items))
    items.write_text("item_id,title\nx,a\n")
    with pytest.raises(DataError, match="numbers"):
        load(path=str(inter), item_features_path=str(items))
