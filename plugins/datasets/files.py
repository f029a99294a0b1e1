"""Interactions from any CSV/TSV/Parquet file with configurable columns, plus optional feature files.

Every input problem (missing file or column, non-numeric rating/timestamp, malformed row, empty file) is
raised as a DataError that names the file, the line (or Parquet row) and the fix.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from recux.data import Dataset
from recux.download import sha256_file
from recux.errors import DataError
from recux.registry import register

_PARQUET = (".parquet", ".pq")
_SEPARATORS = {".csv": ",", ".tsv": "\t", ".tab": "\t"}
Column = str | int


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
        table = _Table.read(self.path, self.separator, self.has_header)
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


class _Table:
    """A file read as text columns, with a way back from a row index to the file's line number."""

    def __init__(self, path: Path, df: pl.DataFrame, sep: str | None, has_header: bool) -> None:
        self.path, self.df, self.sep, self.has_header = path, df, sep, has_header

    @classmethod
    def read(cls, path_str: str, separator: str | None, has_header: bool, infer: bool = False) -> _Table:
        path = Path(path_str).expanduser()
        if not path.exists():
            raise DataError(
                f"data file {path} does not exist. Fix the path (dataset.path=...) or create the file."
            )
        if path.is_dir():
            raise DataError(f"data file {path} is a folder; point the path at a CSV, TSV or Parquet file.")
        if path.stat().st_size == 0:
            raise DataError(
                f"data file {path} is empty (0 bytes). Point the path at a file with interactions."
            )
        if path.suffix.lower() in _PARQUET:
            try:
                df = pl.read_parquet(path)
            except Exception as exc:
                raise DataError(f"cannot read {path} as Parquet: {exc}. Is it a Parquet file?") from exc
            table = cls(path, df, None, True)
        else:
            sep = separator or _SEPARATORS.get(path.suffix.lower())
            if sep is None:
                raise DataError(
                    f"cannot tell the separator of {path} from its extension; set "
                    "separator (e.g. dataset.separator=',' or '\\t') or use .csv/.tsv/.parquet."
                )
            try:
                df = pl.read_csv(
                    path,
                    separator=sep,
                    has_header=has_header,
                    infer_schema=infer,
                    infer_schema_length=10_000 if infer else None,
                )
            except pl.exceptions.NoDataError as exc:
                raise DataError(
                    f"data file {path} is empty. Point the path at a file with interactions."
                ) from exc
            except Exception as exc:
                ragged = _find_ragged(path, sep)
                if ragged is not None:
                    raise DataError(_ragged_message(path, *ragged, sep)) from exc
                raise DataError(
                    f"cannot parse {path} (separator {sep!r}): {str(exc).splitlines()[0]}. "
                    "Check the separator, quoting and encoding (UTF-8)."
                ) from exc
            table = cls(path, df, sep, has_header)
            if df.height and df.null_count().sum_horizontal().item():
                ragged = _find_ragged(path, sep)
                if ragged is not None:
                    raise DataError(_ragged_message(path, *ragged, sep))
            # blank lines come back as all-null rows: drop them but keep each row's index for line numbers
            table.df = df.with_row_index("__row").filter(
                ~pl.all_horizontal(pl.all().exclude("__row").is_null())
            )
        if "__row" not in table.df.columns:
            table.df = table.df.with_row_index("__row")
        if table.df.height == 0:
            raise DataError(f"data file {path} has no data rows (only a header?). Add interactions to it.")
        return table

    @property
    def columns(self) -> list[str]:
        return [c for c in self.df.columns if c != "__row"]

    def column(self, col: Column, setting: str) -> pl.Series:
        cols = self.columns
        if isinstance(col, int) and not isinstance(col, bool):
            if not 0 <= col < len(cols):
                raise DataError(
                    f"{setting}={col} is out of range: {self.path} has {len(cols)} columns "
                    f"({', '.join(cols)}); positions count from 0."
                )
            return self.df[cols[col]]
        if col not in cols:
            hint = ""
            if not self.has_header:
                hint = (
                    " The file is read without a header, so columns are named column_1, column_2, ...; "
                    "use those names or 0-based positions."
                )
            elif all(_numeric(c) for c in cols):
                hint = " The header looks like data: set has_header=false and use 0-based column positions."
            raise DataError(
                f"column '{col}' ({setting}) is not in {self.path}; columns found: "
                f"{', '.join(repr(c) for c in cols)}. Set {setting} to one of them.{hint}"
            )
        return self.df[col]

    def where(self, row: int) -> str:
        """'line N' for text files (1-based, as an editor shows it), 'row N' for Parquet."""
        if self.sep is None:
            return f"row {row + 1}"
        return f"line {_line_of(self.path, self.sep, self.has_header, row)}"

    def _fail(self, s: pl.Series, bad: pl.Series, setting: str, what: str, fix: str) -> None:
        idx = int(np.flatnonzero(bad.to_numpy())[0])
        value = s[idx]
        row = int(self.df["__row"][idx])
        n_bad = int(bad.sum())
        more = f" ({n_bad} such values in all)" if n_bad > 1 else ""
        shown = "an empty value" if value is None or value == "" else f"value {value!r}"
        raise DataError(
            f"{self.path}, {self.where(row)}: {shown} in column '{s.name}' ({setting}) is not "
            f"{what}{more}. {fix}"
        )

    def ids(self, col: Column, setting: str) -> pl.Series:
        s = self.column(col, setting)
        if s.dtype == pl.String:
            s = s.str.strip_chars()
            missing = s.is_null() | (s == "")
        else:
            missing = s.is_null()
        if missing.any():
            self._fail(
                s, missing, setting, "an id", "Every row needs a user and an item id; fix or drop those rows."
            )
        if s.dtype.is_integer():
            return s.cast(pl.Int64)
        as_int = s.cast(pl.Int64, strict=False) if s.dtype == pl.String else None
        if as_int is not None and as_int.null_count() == 0:
            return as_int
        return s.cast(pl.String)

    def floats(self, col: Column, setting: str) -> pl.Series:
        s = self.column(col, setting)
        out = s.str.strip_chars().cast(pl.Float64, strict=False) if s.dtype == pl.String else _cast_num(s)
        bad = out.is_null() | ~out.is_finite().fill_null(False)
        if bad.any():
            self._fail(
                s,
                bad,
                setting,
                "a number",
                f"Fix or drop those rows, or set {setting} to the column that holds the numeric rating "
                "(or null for implicit data).",
            )
        return out

    def timestamps(self, col: Column, setting: str) -> pl.Series:
        s = self.column(col, setting)
        if s.dtype.is_temporal():
            return _epoch_seconds(s)
        if s.dtype != pl.String:
            out = _cast_num(s)
        else:
            s = s.str.strip_chars()
            out = s.cast(pl.Float64, strict=False)
            if out.is_null().all() and s.is_not_null().any():  # dates written as text: parse them all or none
                parsed = s.str.to_datetime(strict=False)
                if parsed.null_count() == 0:
                    return _epoch_seconds(parsed)
        bad = out.is_null() | ~out.is_finite().fill_null(False)
        if bad.any():
            self._fail(
                s,
                bad,
                setting,
                "a unix timestamp",
                "Timestamps must be numbers (seconds since 1970) or all dates; fix those rows or set "
                f"{setting}=null to load without time.",
            )
        return out.floor().cast(pl.Int64)


def _cast_num(s: pl.Series) -> pl.Series:
    try:
        return s.cast(pl.Float64, strict=False)
    except Exception:
        return pl.Series(s.name, [None] * len(s), dtype=pl.Float64)


def _epoch_seconds(s: pl.Series) -> pl.Series:
    if s.dtype == pl.Date:
        s = s.cast(pl.Datetime("ms"))
    return s.dt.epoch("s").cast(pl.Int64)


def _numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _reader(path: Path, sep: str):
    f = open(path, newline="", encoding="utf-8", errors="replace")  # noqa: SIM115 - closed by the caller
    return f, csv.reader(f, delimiter=sep, quotechar='"')


def _find_ragged(path: Path, sep: str) -> tuple[int, int, int, int] | None:
    """(first line, last line, expected fields, found fields) of the first row whose field count differs
    from the first row's; found is -1 when the csv module cannot parse the row at all."""
    f, reader = _reader(path, sep)
    with f:
        expected = None
        start = 1
        try:
            for row in reader:
                if row and expected is None:
                    expected = len(row)
                elif row and len(row) != expected:
                    return start, reader.line_num, expected, len(row)
                start = reader.line_num + 1
        except csv.Error:
            return start, reader.line_num, expected or 0, -1
    return None


def _ragged_message(path: Path, start: int, end: int, expected: int, found: int, sep: str) -> str:
    if found < 0:
        return (
            f"{path}, line {start}: malformed row (bad quoting). Fix the quoting on that line or remove "
            "the row."
        )
    where = f"line {end}" if start == end else f"lines {start}-{end}"
    quote = f" A quote opened on line {start} may be unclosed." if start != end else ""
    return (
        f"{path}, {where}: malformed row with {found} fields where the first row has {expected} "
        f"(separator {sep!r}).{quote} Fix or remove that row, or set the right separator."
    )


def _line_of(path: Path, sep: str, has_header: bool, row: int) -> int:
    """The file line on which data row ``row`` (0-based, blank lines counted like polars does) ends."""
    f, reader = _reader(path, sep)
    with f:
        if has_header:
            next(reader, None)
        for i, _ in enumerate(reader):
            if i == row:
                return reader.line_num
    return row + 1 + int(has_header)


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
    table = _Table.read(path, separator, has_header=True, infer=True)
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
