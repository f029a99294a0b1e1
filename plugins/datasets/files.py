"""Interactions from any CSV/TSV/Parquet file with configurable columns, plus optional feature files.

Every input problem (missing file or column, non-numeric rating/timestamp, malformed row, empty file, a header
row read as data, a wrong separator) is raised as a DataError that names the file, the line (or Parquet row) and
the fix. Rows whose timestamp is missing, not a number or negative (a sentinel such as -5) are refused with their
count and first line, or dropped with ``invalid_timestamps=drop`` (the count is recorded in the dataset info).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from recux.data import Dataset
from recux.download import sha256_file
from recux.errors import ConfigError, DataError
from recux.registry import register
from recux.tables import Column, Table, decode_separator

INVALID_TIMESTAMPS = ("error", "drop")
# first-row values that mark a header when the file is read with has_header=false
HEADER_NAMES = ("user", "item", "user_id", "item_id", "userid", "itemid", "rating", "timestamp", "time", "score")


@register("dataset", "files", added_defaults={"invalid_timestamps": "error", "item_text_path": None})
class FilesDataset:
    """Interactions from a CSV/TSV/Parquet file with configurable columns, plus optional feature files."""

    def __init__(
        self,
        path: str,
        user_col: Column = "user_id",
        item_col: Column = "item_id",
        rating_col: Column | None = None,
        timestamp_col: Column | None = None,
        separator: str | None = None,
        has_header: bool = True,
        item_features_path: str | None = None,
        item_id_col: Column = "item_id",
        item_text_col: str | None = None,
        item_text_path: str | None = None,
        user_features_path: str | None = None,
        user_id_col: Column = "user_id",
        display_name: str = "files",
        invalid_timestamps: str = "error",
    ) -> None:
        try:
            separator = decode_separator(separator)
        except DataError as exc:
            raise ConfigError(str(exc)) from None
        if user_col == item_col:
            raise ConfigError(f"dataset.user_col and dataset.item_col are both {user_col!r}; they must name "
                              "different columns")
        if invalid_timestamps not in INVALID_TIMESTAMPS:
            raise ConfigError(f"dataset.invalid_timestamps={invalid_timestamps!r}; use error (refuse the file) or "
                              "drop (drop rows whose timestamp is missing, not a number or negative)")
        self.invalid_timestamps = invalid_timestamps
        self.path = str(path)
        self.user_col, self.item_col = user_col, item_col
        self.rating_col, self.timestamp_col = rating_col, timestamp_col
        self.separator, self.has_header = separator, bool(has_header)
        self.item_features_path, self.item_id_col, self.item_text_col = (
            item_features_path,
            item_id_col,
            item_text_col,
        )
        self.item_text_path = item_text_path
        self.user_features_path, self.user_id_col = user_features_path, user_id_col
        self.name = display_name  # the dataset's name in results and leaderboards

    def load(self) -> Dataset:
        names = HEADER_NAMES + tuple(c for c in (self.user_col, self.item_col, self.rating_col,
                                                 self.timestamp_col) if isinstance(c, str))
        table = Table.read(self.path, self.separator, self.has_header, header_names=names)
        dropped = self._drop_invalid_timestamps(table)
        cols: dict[str, pl.Series] = {
            "user_id": table.ids(self.user_col, "user_col"),
            "item_id": table.ids(self.item_col, "item_col"),
        }
        if self.rating_col is not None:
            cols["rating"] = table.floats(self.rating_col, "rating_col").cast(pl.Float32)
        if self.timestamp_col is not None:
            cols["timestamp"] = table.timestamps(self.timestamp_col, "timestamp_col", "dataset.invalid_timestamps")
        frame = pl.DataFrame(cols)
        info: dict[str, Any] = {
            "dataset": self.name,
            "source": "files",
            "path": str(Path(self.path).resolve()),
            "sha256": {Path(self.path).name: sha256_file(self.path)},
            "sha256_verified": False,
            "columns": {
                "user": self.user_col,
                "item": self.item_col,
                "rating": self.rating_col,
                "timestamp": self.timestamp_col,
            },
        }
        if dropped:
            info["dropped_invalid_timestamps"] = dropped
        user_features = item_features = None
        if self.user_features_path:
            user_features = _features(
                self.user_features_path,
                self.user_id_col,
                "user_id",
                "user_id_col",
                frame["user_id"].dtype,
                self.separator,
                None,
            )
            info["user_features_path"] = str(Path(self.user_features_path).resolve())
        if self.item_features_path:
            item_features = _features(
                self.item_features_path,
                self.item_id_col,
                "item_id",
                "item_id_col",
                frame["item_id"].dtype,
                self.separator,
                None if self.item_text_path else self.item_text_col,  # with item_text_path it names that file's
            )
            info["item_features_path"] = str(Path(self.item_features_path).resolve())
        if self.item_text_path:
            item_features = self._with_item_text(item_features, frame["item_id"].dtype)
            info["item_text_path"] = str(Path(self.item_text_path).resolve())
        ds = Dataset.from_frame(
            self.name, frame, user_features=user_features, item_features=item_features, info=info
        )
        for key, feats in (("user", ds.user_features), ("item", ds.item_features)):
            if feats is not None and feats.width > 1:
                ds.info[f"{key}s_without_features"] = int(
                    feats.select(pl.all().exclude(f"{key}_id"))
                    .select(pl.all_horizontal(pl.all().is_null()))
                    .sum()
                    .item()
                )
        return ds

    def _with_item_text(self, item_features: pl.DataFrame | None, id_dtype: pl.DataType) -> pl.DataFrame:
        """The item-text file's ``text`` column (``item_text_col``, default "text") joined to the item features."""
        text = _features(self.item_text_path, self.item_id_col, "item_id", "item_id_col", id_dtype,
                         self.separator, self.item_text_col or "text").select("item_id", "text")
        if item_features is None:
            return text
        return item_features.drop("text", strict=False).join(text, on="item_id", how="full", coalesce=True)

    def _drop_invalid_timestamps(self, table: Table) -> int:
        """With invalid_timestamps=drop, remove the rows whose timestamp is refused; returns how many."""
        if self.timestamp_col is None or self.invalid_timestamps != "drop":
            return 0
        bad = table.invalid_timestamps(self.timestamp_col, "timestamp_col")
        n_bad = int(bad.sum())
        if n_bad == len(bad):
            raise DataError(f"{table.path}: every row's timestamp is missing, not a number or negative, so "
                            "invalid_timestamps=drop would drop them all. Fix the timestamp column (timestamp_col) "
                            "or set dataset.timestamp_col=null.")
        table.df = table.df.filter(~bad)
        return n_bad


def _features(
    path: str,
    id_col: Column,
    key: str,
    setting: str,
    id_dtype: pl.DataType,
    separator: str | None,
    text_col: str | None,
) -> pl.DataFrame:
    """A feature table keyed by ``key`` (user_id/item_id), ids typed like the interactions' ids."""
    table = Table.read(path, separator, has_header=True, infer=True)
    ids = table.ids(id_col, setting)
    if id_dtype == pl.Int64 and ids.dtype != pl.Int64:
        raise DataError(
            f"{table.path}: ids in column '{ids.name}' ({setting}) are text but the interactions' "
            f"{key}s are numbers, so none would match. Point {setting} at the id column."
        )
    ids = ids.cast(id_dtype)
    df = table.df.drop("__row")
    df = df.drop(ids.name).insert_column(0, ids.alias(key))
    if text_col is not None:
        if text_col not in df.columns:
            raise DataError(
                f"item_text_col '{text_col}' is not in {table.path}; columns found: "
                f"{', '.join(repr(c) for c in df.columns)}."
            )
        df = df.rename({text_col: "text"})
    return df
