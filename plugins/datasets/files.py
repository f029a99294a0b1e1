"""Interactions from any CSV/TSV/Parquet file with configurable columns, plus optional feature files.

Every input problem (missing file or column, non-numeric rating/timestamp, malformed row, empty file) is
raised as a DataError that names the file, the line (or Parquet row) and the fix.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from recux.data import Dataset
from recux.download import sha256_file
from recux.errors import DataError
from recux.registry import register
from recux.tables import Column, Table


@register("dataset", "files")
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
        user_features_path: str | None = None,
        user_id_col: Column = "user_id",
        display_name: str = "files",
    ) -> None:
        if separator is not None and len(separator.encode()) != 1:
            raise ValueError(f"separator must be one character (got {separator!r}); convert the file first")
        if user_col == item_col:
            raise ValueError(f"user_col and item_col are both {user_col!r}; they must name different columns")
        self.path = str(path)
        self.user_col, self.item_col = user_col, item_col
        self.rating_col, self.timestamp_col = rating_col, timestamp_col
        self.separator, self.has_header = separator, bool(has_header)
        self.item_features_path, self.item_id_col, self.item_text_col = (
            item_features_path,
            item_id_col,
            item_text_col,
        )
        self.user_features_path, self.user_id_col = user_features_path, user_id_col
        self.name = display_name  # the dataset's name in results and leaderboards

    def load(self) -> Dataset:
        table = Table.read(self.path, self.separator, self.has_header)
        cols: dict[str, pl.Series] = {
            "user_id": table.ids(self.user_col, "user_col"),
            "item_id": table.ids(self.item_col, "item_col"),
        }
        if self.rating_col is not None:
            cols["rating"] = table.floats(self.rating_col, "rating_col").cast(pl.Float32)
        if self.timestamp_col is not None:
            cols["timestamp"] = table.timestamps(self.timestamp_col, "timestamp_col")
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
                self.item_text_col,
            )
            info["item_features_path"] = str(Path(self.item_features_path).resolve())
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
