"""The one table reader of recux: CSV/TSV/Parquet files as columns, with errors that name file, line and fix.

Used by the ``files`` dataset and by ``recux-evaluate``. Separator rule (the only one):

1. an explicit separator (``dataset.separator``, ``recux-evaluate --separator``) wins;
2. otherwise the extension decides: ``.csv`` -> ``,``; ``.tsv`` and ``.tab`` -> tab; ``.parquet``/``.pq`` are Parquet;
3. any other extension is refused with an error asking for the separator (nothing is guessed from the content).

A separator given as an escape (``'\\t'``, as ``dataset.separator='\\t'`` arrives from a shell) or as a name
(``tab``) is decoded first. When a column is missing and the file came back as one column holding another
separator, the error says the separator looks wrong and how to set it. A file read with ``has_header=false``
whose first row looks like a header (non-numeric where every other row is numeric) is refused.

Text files are read with every column as text (``infer=True`` lets polars type the columns, for feature files);
blank lines are dropped; a ragged or badly quoted row is reported with its line number.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import polars as pl

from recux.errors import DataError

PARQUET_SUFFIXES = (".parquet", ".pq")
SEPARATORS = {".csv": ",", ".tsv": "\t", ".tab": "\t"}
SEPARATOR_NAMES = {"\\t": "\t", "tab": "\t", "\\s": " ", "space": " ", "comma": ",", "semicolon": ";", "pipe": "|"}
Column = str | int


def decode_separator(separator: str | None, setting: str = "dataset.separator") -> str | None:
    """The one-character separator meant by ``separator``: itself, or the character an escape or name stands
    for ('\\t' and 'tab' are a tab). Anything else longer than one character is refused, naming ``setting``."""
    if separator is None:
        return None
    sep = SEPARATOR_NAMES.get(str(separator).lower(), str(separator))
    if len(sep.encode()) != 1:
        raise DataError(f"{setting}={separator!r} must be one character, e.g. {setting}=',' or {setting}='\\t' "
                        "(tab); convert the file first if it uses a longer separator")
    return sep


class Table:
    """A file read as text columns, with a way back from a row index to the file's line number."""

    def __init__(self, path: Path, df: pl.DataFrame, sep: str | None, has_header: bool,
                 separator_setting: str = "dataset.separator") -> None:
        self.path, self.df, self.sep, self.has_header = path, df, sep, has_header
        self.separator_setting = separator_setting

    @classmethod
    def read(cls, path_str: str | Path, separator: str | None = None, has_header: bool = True, infer: bool = False,
             *, path_setting: str = "dataset.path", separator_setting: str = "dataset.separator",
             what: str = "data file", header_names: tuple[str, ...] = ()) -> Table:
        """Read ``path_str``; the separator follows the rule in the module docstring. ``path_setting`` and
        ``separator_setting`` name the settings that error messages tell the user to fix; ``what`` names the
        file's role ("data file", "recommendations file", ...). Without a header, a first row holding one of
        ``header_names`` (or text above numbers) is refused as a header."""
        separator = decode_separator(separator, separator_setting)
        path = Path(path_str).expanduser()
        if not path.exists():
            raise DataError(
                f"{what} {path} does not exist. Fix the path ({path_setting}) or create the file."
            )
        if path.is_dir():
            raise DataError(f"{what} {path} is a folder; point the path at a CSV, TSV or Parquet file.")
        if path.stat().st_size == 0:
            raise DataError(
                f"{what} {path} is empty (0 bytes). Point {path_setting} at a file with data rows."
            )
        if path.suffix.lower() in PARQUET_SUFFIXES:
            try:
                df = pl.read_parquet(path)
            except Exception as exc:
                raise DataError(f"cannot read {path} as Parquet: {exc}. Is it a Parquet file?") from exc
            table = cls(path, df, None, True)
        else:
            sep = separator or SEPARATORS.get(path.suffix.lower())
            if sep is None:
                raise DataError(
                    f"cannot tell the separator of {path} from its extension; set {separator_setting} "
                    "(e.g. ',' or '\\t') or name the file .csv/.tsv/.tab/.parquet."
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
                    f"{what} {path} is empty. Point {path_setting} at a file with data rows."
                ) from exc
            except Exception as exc:
                ragged = _find_ragged(path, sep)
                if ragged is not None:
                    raise DataError(_ragged_message(path, *ragged, sep)) from exc
                raise DataError(
                    f"cannot parse {path} (separator {sep!r}): {str(exc).splitlines()[0]}. "
                    "Check the separator, quoting and encoding (UTF-8)."
                ) from exc
            table = cls(path, df, sep, has_header, separator_setting)
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
            raise DataError(f"{what} {path} has no data rows (only a header?). Add rows to it.")
        if not table.has_header:
            table.refuse_header_row(header_names)
        return table

    def refuse_header_row(self, names: tuple[str, ...] = ()) -> None:
        """Refuse a file read without a header whose first row is one: it holds one of ``names`` (column names
        such as user_id), or none of its values is a number while some column is all numbers below it."""
        if self.df.height == 0:
            return
        first = [v for c, v in self.df.row(0, named=True).items() if c != "__row"]
        texts = [str(v).strip() for v in first if isinstance(v, str)]
        looks = any(t.lower() in {n.lower() for n in names} for t in texts)
        all_text = len(texts) == len(first) and not any(_numeric(t) for t in texts)
        if not looks and all_text and self.df.height > 1:
            for c in self.columns:
                col = self.df[c]
                if col.dtype != pl.String or col[0] is None or _numeric(str(col[0]).strip()):
                    continue
                rest = col[1:].drop_nulls().str.strip_chars()
                if rest.len() and rest.cast(pl.Float64, strict=False).null_count() == 0:
                    looks = True
                    break
        if looks:
            raise DataError(
                f"{self.path}, line 1 looks like a header ({', '.join(repr(t) for t in texts)}) but the file is "
                "read with has_header=false, so it would load as an interaction. Set dataset.has_header=true "
                "(and name the columns, e.g. dataset.user_col=user_id), or remove that line."
            )

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
            other = self._other_separator()
            if other is not None:
                raise DataError(
                    f"column '{col}' ({setting}) is not in {self.path}: read with separator {self.sep!r} it has "
                    f"{len(cols)} column(s) ({', '.join(repr(c) for c in cols)}), whose header holds {other!r}. "
                    f"The separator looks wrong: set {self.separator_setting}={_shown(other)}."
                )
            raise DataError(
                f"column '{col}' ({setting}) is not in {self.path}; columns found: "
                f"{', '.join(repr(c) for c in cols)}. Set {setting} to one of them.{hint}"
            )
        return self.df[col]

    def _other_separator(self) -> str | None:
        """A common separator other than the one used, found in every header name of a text file read as
        one or two columns (a tab-separated file named .csv), else None."""
        cols = self.columns
        if self.sep is None or len(cols) > 2:
            return None
        for cand in ("\t", ";", "|", ",", " "):
            if cand != self.sep and any(cand in c for c in cols):
                return cand
        return None

    def where(self, row: int) -> str:
        """'line N' for text files (1-based, as an editor shows it), 'row N' for Parquet."""
        if self.sep is None:
            return f"row {row + 1}"
        return f"line {_line_of(self.path, self.sep, self.has_header, row)}"

    def fail(self, s: pl.Series, bad: pl.Series, setting: str, what: str, fix: str) -> None:
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
            self.fail(
                s, missing, setting, "an id", "Every row needs a user and an item id; fix or drop those rows."
            )
        if s.dtype.is_integer():
            return s.cast(pl.Int64)
        as_int = s.cast(pl.Int64, strict=False) if s.dtype == pl.String else None
        if as_int is not None and as_int.null_count() == 0:
            return as_int
        return s.cast(pl.String)

    def floats(self, col: Column, setting: str, fix: str | None = None) -> pl.Series:
        s = self.column(col, setting)
        out = s.str.strip_chars().cast(pl.Float64, strict=False) if s.dtype == pl.String else _cast_num(s)
        bad = out.is_null() | ~out.is_finite().fill_null(False)
        if bad.any():
            self.fail(
                s,
                bad,
                setting,
                "a number",
                fix or f"Fix or drop those rows, or set {setting} to the column that holds the numeric rating "
                "(or null for implicit data).",
            )
        return out

    def timestamps(self, col: Column, setting: str, drop_setting: str | None = None) -> pl.Series:
        """Unix seconds (Int64) of column ``col``: numbers >= 0, or dates. A missing, non-numeric, infinite or
        negative (sentinel) value is refused with its count and first line; ``drop_setting`` names the setting
        that drops such rows instead (see ``invalid_timestamps``)."""
        s, out, bad = self._timestamp_values(col, setting)
        if bad.any():
            drop = f"set {drop_setting}=drop to drop those rows, " if drop_setting else ""
            self.fail(
                s,
                bad,
                setting,
                "a unix timestamp (seconds since 1970, >= 0)",
                f"Timestamps must be numbers >= 0 or all dates; fix those rows, {drop}or set {setting}=null to "
                "load without time.",
            )
        return out

    def invalid_timestamps(self, col: Column, setting: str) -> pl.Series:
        """Boolean mask of the rows whose timestamp ``timestamps`` would refuse."""
        return self._timestamp_values(col, setting)[2]

    def _timestamp_values(self, col: Column, setting: str) -> tuple[pl.Series, pl.Series, pl.Series]:
        """(the column, its unix seconds as Int64 with nulls where invalid, the mask of invalid rows)."""
        s = self.column(col, setting)
        if s.dtype.is_temporal():
            out = _epoch_seconds(s)
            return s, out, out.is_null()
        if s.dtype != pl.String:
            out = _cast_num(s)
        else:
            s = s.str.strip_chars()
            out = s.cast(pl.Float64, strict=False)
            if out.is_null().all() and s.is_not_null().any():  # dates written as text: parse them all or none
                parsed = s.str.to_datetime(strict=False)
                if parsed.null_count() == 0:
                    out = _epoch_seconds(parsed)
                    return s, out, out.is_null()
        bad = (out.is_null() | ~out.is_finite().fill_null(False) | (out < 0).fill_null(False)).fill_null(True)
        return s, out.floor().cast(pl.Int64, strict=False), bad


def _shown(sep: str) -> str:
    """How to type ``sep`` on a command line."""
    return "'\\t'" if sep == "\t" else repr(sep)


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
