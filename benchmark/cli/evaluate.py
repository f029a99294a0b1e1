"""``recux-evaluate``: score a recommendations file against a ground-truth file with recux's metrics.

    recux-evaluate recs.csv test.csv --train train.csv --ks 5,10,20 --output metrics.json

Files are CSV (``.csv``), TSV (``.tsv``/``.tab``; other text files are sniffed) with a header row, or
Parquet. Recommendations need user and item columns plus a rank (1 = best) or a score (higher = better;
ties go to the item id that sorts first as text) column. Raw ids are matched as strings across files; items that only
appear in the recommendations or the ground truth are fine.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import scipy.sparse as sp

from recux.errors import ConfigError, DataError, RecuxError
from recux.results import atomic_write

PROG = "recux-evaluate"


def read_table(path: str | Path, role: str) -> pl.DataFrame:
    """Read a CSV/TSV (all columns as text) or Parquet file; unreadable input raises DataError."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{role} file {p} does not exist (or is not a file); check the path")
    suffix = p.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            return pl.read_parquet(p)
        if suffix == ".csv":
            sep = ","
        elif suffix in (".tsv", ".tab"):
            sep = "\t"
        else:
            with open(p, encoding="utf-8", errors="replace") as fh:
                first = fh.readline()
            sep = "\t" if "\t" in first else ","
        return pl.read_csv(p, separator=sep, infer_schema=False)
    except (pl.exceptions.PolarsError, OSError, UnicodeDecodeError) as exc:
        raise DataError(
            f"cannot read {role} file {p}: {exc}. Expected CSV/TSV with a header row, or Parquet."
        ) from None


def _require(df: pl.DataFrame, col: str, role: str, path: str, flag: str) -> None:
    if col not in df.columns:
        raise DataError(
            f"{role} file {path} has no column '{col}' (its columns: {', '.join(df.columns) or 'none'}). "
            f"Name the right column with {flag}."
        )


def _ids(df: pl.DataFrame, col: str, role: str, path: str) -> pl.Series:
    s = df[col].cast(pl.String)
    if s.null_count():
        row = int(s.is_null().arg_max())
        raise DataError(f"{role} file {path}: column '{col}' is empty at data row {row + 1}; every row needs an id")
    return s


def _numeric(df: pl.DataFrame, col: str, role: str, path: str) -> np.ndarray:
    raw = df[col]
    num = (raw.str.strip_chars() if raw.dtype == pl.String else raw).cast(pl.Float64, strict=False)
    bad = num.is_null() | num.is_nan()
    if bad.any():
        row = int(bad.arg_max())
        raise DataError(
            f"{role} file {path}: column '{col}' must be numeric, but data row {row + 1} holds {raw[row]!r}"
        )
    return num.to_numpy()


def _codes(s: pl.Series, keys: pl.Series) -> np.ndarray:
    return s.replace_strict(keys, pl.int_range(len(keys), eager=True), return_dtype=pl.Int64).to_numpy()


def _pairs_csr(users: np.ndarray, items: np.ndarray, shape: tuple[int, int]) -> sp.csr_matrix:
    m = sp.csr_matrix((np.ones(len(users), dtype=np.float32), (users, items)), shape=shape)
    m.sum_duplicates()
    m.data[:] = 1.0
    m.sort_indices()
    return m


def load_inputs(args: argparse.Namespace) -> dict[str, Any]:
    """Read the files and encode them: (n x K) top-k codes, ground-truth CSR, training CSR, raw user ids."""
    uc, ic = args.user_col, args.item_col
    recs = read_table(args.recommendations, "recommendations")
    truth = read_table(args.ground_truth, "ground-truth")
    train = read_table(args.train, "training") if args.train else None
    for df, role, path in ((recs, "recommendations", args.recommendations),
                           (truth, "ground-truth", args.ground_truth),
                           (train, "training", args.train)):
        if df is not None:
            _require(df, uc, role, path, "--user-col")
            _require(df, ic, role, path, "--item-col")
    if args.rank_col in recs.columns:
        order_col, by_rank = args.rank_col, True
    elif args.score_col in recs.columns:
        order_col, by_rank = args.score_col, False
    else:
        raise DataError(
            f"recommendations file {args.recommendations} has neither a '{args.rank_col}' nor a "
            f"'{args.score_col}' column (its columns: {', '.join(recs.columns)}). Name the rank column with "
            "--rank-col or the score column with --score-col."
        )

    r_user = _ids(recs, uc, "recommendations", args.recommendations)
    r_item = _ids(recs, ic, "recommendations", args.recommendations)
    order = _numeric(recs, order_col, "recommendations", args.recommendations)
    t_user = _ids(truth, uc, "ground-truth", args.ground_truth)
    t_item = _ids(truth, ic, "ground-truth", args.ground_truth)
    item_sets = [r_item, t_item]
    if train is not None:
        tr_user = _ids(train, uc, "training", args.train)
        tr_item = _ids(train, ic, "training", args.train)
        item_sets.append(tr_item)
    items = pl.concat(item_sets).unique().sort()
    users = pl.concat([r_user, t_user]).unique().sort()
    n_items, n_rows = len(items), len(users)

    ru, ri = _codes(r_user, users), _codes(r_item, items)
    frame = pl.DataFrame({"u": ru, "i": ri, "o": order if by_rank else -order})
    dup = frame.filter(pl.struct("u", "i").is_duplicated())
    if dup.height:
        raise DataError(f"recommendations file {args.recommendations}: user {users[int(dup['u'][0])]!r} gets item "
                        f"{items[int(dup['i'][0])]!r} more than once; each item may appear once per user")
    if by_rank:
        dup = frame.filter(pl.struct("u", "o").is_duplicated())
        if dup.height:
            raise DataError(f"recommendations file {args.recommendations}: user {users[int(dup['u'][0])]!r} has "
                            f"{order_col} {dup['o'][0]:g} more than once; ranks must be distinct within a user")
    frame = frame.sort(["u", "o", "i"]).with_columns(pos=pl.int_range(pl.len()).over("u"))
    width = int(frame["pos"].max()) + 1 if frame.height else 0
    topk = np.full((n_rows, width), -1, dtype=np.int32)
    topk[frame["u"].to_numpy(), frame["pos"].to_numpy()] = frame["i"].to_numpy()

    gt = _pairs_csr(_codes(t_user, users), _codes(t_item, items), (n_rows, n_items))
    train_csr = None
    if train is not None:
        tr_users = tr_user.unique().sort()
        train_csr = _pairs_csr(_codes(tr_user, tr_users), _codes(tr_item, items), (len(tr_users), n_items))
    return {"topk": topk, "truth": gt, "train": train_csr, "users": users.to_numpy(), "n_items": n_items}


def _parse_list(text: str | None, what: str) -> list[str] | None:
    if text is None:
        return None
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts:
        raise ConfigError(f"{what} is empty; give a comma-separated list")
    return parts


def _parse_ks(text: str | None) -> tuple[int, ...] | None:
    parts = _parse_list(text, "--ks")
    if parts is None:
        return None
    try:
        ks = tuple(int(p) for p in parts)
    except ValueError:
        raise ConfigError(f"--ks must be comma-separated positive integers such as 5,10,20, got {text!r}") from None
    if min(ks) < 1:
        raise ConfigError(f"--ks must be positive integers, got {text!r}")
    return ks


def format_table(means: dict[str, float], directions: dict[str, bool]) -> str:
    """Metric names as rows, cut-offs as columns (aggregates without '@' get their own column)."""
    rows: dict[str, dict[str, float]] = {}
    cols: list[str] = []
    for name, val in means.items():
        metric, _, k = name.partition("@")
        col = f"@{k}" if k else "value"
        rows.setdefault(metric, {})[col] = val
        if col not in cols:
            cols.append(col)
    first = {m: next(n for n in means if n.partition("@")[0] == m) for m in rows}
    labels = {m: f"{m} {'(higher better)' if directions.get(first[m], True) else '(lower better)'}" for m in rows}
    w = max(len(s) for s in labels.values()) + 2
    lines = [f"{'metric':<{w}}" + "".join(f"{c:>12}" for c in cols)]
    for m, vals in rows.items():
        cells = "".join(f"{vals[c]:>12.5g}" if c in vals else f"{'':>12}" for c in cols)
        lines.append(f"{labels[m]:<{w}}" + cells)
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog=PROG,
        description="Evaluate top-k recommendations against held-out interactions with recux's metrics.",
    )
    ap.add_argument("recommendations", help="recommendations file: user, item, and rank (1 = best) or score")
    ap.add_argument("ground_truth", help="held-out interactions file: user, item")
    ap.add_argument("--train", help="training interactions file (user, item), needed by popularity metrics")
    ap.add_argument("--user-col", default="user", help="user id column in every file (default: user)")
    ap.add_argument("--item-col", default="item", help="item id column in every file (default: item)")
    ap.add_argument("--rank-col", default="rank", help="rank column of the recommendations (default: rank)")
    ap.add_argument("--score-col", default="score",
                    help="score column, used when there is no rank column (default: score)")
    ap.add_argument("--metrics", help="comma-separated metric names (default: the default set; "
                                      "popularity metrics need --train)")
    ap.add_argument("--ks", help="comma-separated cut-offs (default: 5,10,20)")
    ap.add_argument("--output", help="write the results as JSON to this path")
    ap.add_argument("--per-user", help="write per-user values to this .csv or .parquet file")
    return ap


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Evaluate as the command line describes; returns the JSON payload."""
    from recux.evaluation import DEFAULT_KS, evaluate_topk

    metric_names = _parse_list(args.metrics, "--metrics")
    ks = _parse_ks(args.ks) or DEFAULT_KS
    specs = None if metric_names is None else [{"name": m} for m in metric_names]
    if specs is not None:
        from recux.evaluation import build_metrics

        build_metrics(specs)  # unknown names fail before reading any file
    data = load_inputs(args)
    report = evaluate_topk(data["topk"], data["truth"], metrics=specs, ks=ks, train=data["train"],
                           users=data["users"], n_items=data["n_items"])
    print(format_table(report.means, report.directions))
    print(f"\nusers evaluated: {report.n_evaluated}; excluded (no ground truth): {report.n_excluded_empty}; "
          f"{report.seconds:.3f} s")
    if report.skipped:
        print(f"note: skipped {', '.join(report.skipped)} (they need --train)", file=sys.stderr)
    payload = {**report.to_dict(), "inputs": {"recommendations": str(args.recommendations),
                                              "ground_truth": str(args.ground_truth),
                                              "train": None if args.train is None else str(args.train)}}
    if args.output:
        atomic_write(args.output, json.dumps(payload, indent=2) + "\n")
        print(f"wrote {args.output}")
    if args.per_user:
        parquet = Path(args.per_user).suffix.lower() in (".parquet", ".pq")
        atomic_write(args.per_user, report.per_user.write_parquet if parquet else report.per_user.write_csv)
        print(f"wrote {args.per_user}")
    return payload


def main(argv: list[str] | None = None) -> int:
    """Console entry point: 0 on success, 2 on bad input (one message on stderr, no traceback)."""
    args = build_parser().parse_args(argv)
    try:
        run(args)
    except RecuxError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
