"""``recux-evaluate``: score a recommendations file against a ground-truth file with recux's metrics.

    recux-evaluate recs.csv test.csv --train train.csv --n-items 1682 --ks 5,10,20 --output metrics.json

Files are read by ``recux.tables`` (one separator rule: ``--separator`` if given, else ``.csv`` = comma,
``.tsv``/``.tab`` = tab, ``.parquet``/``.pq`` = Parquet; any other extension needs ``--separator``). Text files
need a header row.

Recommendations need user and item columns plus a rank (1 = best) or a score (higher = better) column. A rank is
the position: ranks 1, 2, 4 leave position 3 empty (it never counts as a hit). Equal scores follow recux's one
tie rule (``recux.ranking``): the smaller item id first (integer ids numerically, other ids as text), exactly
as the pipeline and ``evaluate_scores`` rank them.

Ids are matched across files: integer ids as numbers when every file's ids are integers, otherwise as text.

The catalogue (coverage and Gini are fractions of it): ``--n-items N`` or ``--items FILE`` (the item ids of
the catalogue); an item of any input file outside it is refused. Without either, the catalogue is the items
seen in the input files, which understates it for a real system (the output says which catalogue was used).

``--train`` is the training data used for popularity metrics (ARP, novelty): pass the training interactions
only (a run's split/train.parquet), not validation, as the pipeline does. Nothing is masked here: the lists
are scored as given. The pipeline already removed training and validation items from its lists before writing
recommendations.parquet, so its files reproduce its results.json with
``recux-evaluate recommendations.parquet split/test.parquet --train split/train.parquet --n-items N
--user-col user_id --item-col item_id`` (N = results.json's dataset.n_items).

``--relevance-col COL`` reads a grade per ground-truth row (e.g. the rating) for graded metrics
(``--metrics ndcg_graded,ndcg_burges``); binary metrics count every ground-truth row as relevant.
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
from recux.tables import Table

PROG = "recux-evaluate"


def read_table(path: str | Path, role: str, separator: str | None = None) -> Table:
    """Read one input file with recux's table reader (errors name the file, the line and the flag to fix)."""
    return Table.read(path, separator, has_header=True, path_setting=f"the {role} file argument",
                      separator_setting="--separator", what=f"{role} file")


def _ids(table: Table, col: str, flag: str) -> pl.Series:
    """Ids of one column: Int64 when every id is an integer, else text (empty ids refused with their line)."""
    return table.ids(col, flag)


def _unify(series: list[pl.Series]) -> list[pl.Series]:
    """Make ids comparable across files: all Int64 if every file's ids are integers, else all text."""
    if all(s.dtype == pl.Int64 for s in series):
        return series
    return [s.cast(pl.String) for s in series]


def _codes(s: pl.Series, keys: pl.Series) -> np.ndarray:
    return s.replace_strict(keys, pl.int_range(len(keys), eager=True), return_dtype=pl.Int64).to_numpy()


def _pairs_csr(users: np.ndarray, items: np.ndarray, shape: tuple[int, int], data: np.ndarray | None = None
               ) -> sp.csr_matrix:
    """Binary CSR of (user, item) pairs; with ``data``, each pair keeps its largest value instead."""
    if data is None:
        m = sp.csr_matrix((np.ones(len(users), dtype=np.float32), (users, items)), shape=shape)
        m.sum_duplicates()
        m.data[:] = 1.0
    else:
        frame = pl.DataFrame({"u": users, "i": items, "d": data}).group_by("u", "i").agg(pl.col("d").max())
        m = sp.csr_matrix((frame["d"].to_numpy(), (frame["u"].to_numpy(), frame["i"].to_numpy())), shape=shape)
    m.sort_indices()
    return m


def _catalogue(args: argparse.Namespace, seen: list[tuple[Table, pl.Series]]) -> tuple[pl.Series, int, str]:
    """(sorted item keys with codes 0.., catalogue size, description) from --items / --n-items / the files."""
    keys = pl.concat([s for _, s in seen]).unique().sort()
    source = "the items seen in the input files"
    if args.items:
        cat = read_table(args.items, "catalogue", args.separator)
        col = args.item_col if args.item_col in cat.columns or len(cat.columns) != 1 else cat.columns[0]
        ids = _unify([_ids(cat, col, "--item-col"), *[s for _, s in seen]])
        cat_keys = ids[0].unique().sort()
        for (table, _), s in zip(seen, ids[1:], strict=True):
            outside = ~s.is_in(cat_keys)
            if outside.any():
                table.fail(s, outside, "--item-col", f"in the catalogue ({args.items}, {len(cat_keys)} items)",
                           "Every recommended, held-out or training item must be in --items; fix the file or "
                           "the catalogue.")
        keys, source = cat_keys, f"--items {args.items}"
    n_items = len(keys)
    if args.n_items is not None:
        if args.n_items < n_items:
            raise DataError(
                f"--n-items {args.n_items} is smaller than the {n_items} distinct items of "
                f"{'--items' if args.items else 'the input files'}; the catalogue must hold every item that "
                "appears. Pass the real catalogue size (a run's results.json: dataset.n_items)."
            )
        if args.items and args.n_items != n_items:
            raise ConfigError(f"--n-items {args.n_items} disagrees with --items {args.items} ({n_items} items); "
                              "give one of them")
        n_items, source = args.n_items, source if args.items else "--n-items"
    return keys, n_items, source


def _order(table: Table, args: argparse.Namespace) -> tuple[str, bool, np.ndarray]:
    """(column, is_rank, values) of the rank or score column of the recommendations."""
    if args.rank_col in table.columns:
        col, by_rank = args.rank_col, True
    elif args.score_col in table.columns:
        col, by_rank = args.score_col, False
    else:
        raise DataError(
            f"recommendations file {table.path} has neither a '{args.rank_col}' nor a '{args.score_col}' column "
            f"(its columns: {', '.join(table.columns)}). Name the rank column with --rank-col or the score "
            "column with --score-col."
        )
    flag = "--rank-col" if by_rank else "--score-col"
    fix = f"Fix or drop those rows, or name the {'rank' if by_rank else 'score'} column with {flag}."
    values = table.floats(col, flag, fix=fix)
    if by_rank:
        bad = (values < 1) | (values != values.floor())
        if bad.any():
            table.fail(table.column(col, flag), bad, flag, "a rank (an integer >= 1, 1 = best)", fix)
    return col, by_rank, values.to_numpy()


def _topk(recs: Table, ru: np.ndarray, ri: np.ndarray, args, n_rows: int, k_max: int, users, keys) -> np.ndarray:
    """(n_rows x width) item codes, width = min(k_max, longest list); -1 marks an empty position."""
    col, by_rank, order = _order(recs, args)
    frame = pl.DataFrame({"u": ru, "i": ri, "o": order if by_rank else -order})
    dup = frame.filter(pl.struct("u", "i").is_duplicated())
    if dup.height:
        raise DataError(f"recommendations file {recs.path}: user {users[int(dup['u'][0])]!r} gets item "
                        f"{keys[int(dup['i'][0])]!r} more than once; each item may appear once per user")
    if by_rank:
        dup = frame.filter(pl.struct("u", "o").is_duplicated())
        if dup.height:
            raise DataError(f"recommendations file {recs.path}: user {users[int(dup['u'][0])]!r} has "
                            f"{col} {dup['o'][0]:g} more than once; ranks must be distinct within a user")
        frame = frame.with_columns(pos=(pl.col("o") - 1).cast(pl.Int64))  # the rank is the position
    else:  # tie rule: equal scores -> lower item code (= smaller id) first
        frame = frame.sort(["u", "o", "i"]).with_columns(pos=pl.int_range(pl.len()).over("u"))
    frame = frame.filter(pl.col("pos") < k_max)
    width = int(frame["pos"].max()) + 1 if frame.height else 0
    topk = np.full((n_rows, width), -1, dtype=np.int32)
    topk[frame["u"].to_numpy(), frame["pos"].to_numpy()] = frame["i"].to_numpy()
    return topk


def load_inputs(args: argparse.Namespace, k_max: int) -> dict[str, Any]:
    """Read the files and encode them: (n x K) top-k codes, ground-truth CSR (and grades), training CSR, ids."""
    uc, ic = args.user_col, args.item_col
    recs = read_table(args.recommendations, "recommendations", args.separator)
    truth = read_table(args.ground_truth, "ground-truth", args.separator)
    train = read_table(args.train, "training", args.separator) if args.train else None
    tables = [t for t in (recs, truth, train) if t is not None]
    item_ids = _unify([_ids(t, ic, "--item-col") for t in tables])
    user_ids = _unify([_ids(t, uc, "--user-col") for t in tables])
    keys, n_items, source = _catalogue(args, list(zip(tables, item_ids, strict=True)))
    users = pl.concat(user_ids[:2]).unique().sort()
    n_rows = len(users)
    ru, ri = _codes(user_ids[0], users), _codes(item_ids[0], keys)
    topk = _topk(recs, ru, ri, args, n_rows, k_max, users, keys)
    tu, ti = _codes(user_ids[1], users), _codes(item_ids[1], keys)
    gt = _pairs_csr(tu, ti, (n_rows, n_items))
    graded = None
    if args.relevance_col:
        grades = truth.floats(args.relevance_col, "--relevance-col",
                              fix="Grades must be numbers >= 0 (e.g. ratings); fix those rows or drop "
                                  "--relevance-col.")
        if (grades < 0).any():
            truth.fail(truth.column(args.relevance_col, "--relevance-col"), grades < 0, "--relevance-col",
                       "a grade >= 0", "Graded gains need non-negative grades.")
        graded = _pairs_csr(tu, ti, (n_rows, n_items), grades.to_numpy())
    train_csr = None
    if train is not None:
        tr_users = user_ids[2].unique().sort()
        train_csr = _pairs_csr(_codes(user_ids[2], tr_users), _codes(item_ids[2], keys), (len(tr_users), n_items))
    return {"topk": topk, "truth": gt, "graded": graded, "train": train_csr, "users": users.to_numpy(),
            "n_items": n_items, "catalogue": source}


def _parse_list(text: str | None, what: str) -> list[str] | None:
    if text is None:
        return None
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts:
        raise ConfigError(f"{what} is empty; give a comma-separated list")
    return parts


def _parse_ks(text: str | None) -> tuple[int, ...] | None:
    from recux.kernels.accuracy import check_ks

    parts = _parse_list(text, "--ks")
    if parts is None:
        return None
    try:
        ks = [int(p) for p in parts]
    except ValueError:
        raise ConfigError(f"--ks must be comma-separated positive integers such as 5,10,20, got {text!r}") from None
    return check_ks(ks, setting="--ks")


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
        epilog=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("recommendations", help="recommendations file: user, item, and rank (1 = best) or score")
    ap.add_argument("ground_truth", help="held-out interactions file: user, item")
    ap.add_argument("--train", help="training interactions file (user, item) for popularity metrics (ARP, "
                                    "novelty): the training part only, not validation; nothing is masked")
    ap.add_argument("--n-items", type=int, help="catalogue size (coverage and Gini are fractions of it; default: "
                                                "the items seen in the input files)")
    ap.add_argument("--items", help="catalogue file: the item ids of the catalogue (column --item-col, or its "
                                    "only column); items outside it are refused")
    ap.add_argument("--relevance-col", help="grade column of the ground truth (e.g. rating) for graded metrics "
                                            "(--metrics ndcg_graded,ndcg_burges)")
    ap.add_argument("--separator", help="separator of the text files (default: from the extension, "
                                        ".csv comma, .tsv/.tab tab)")
    ap.add_argument("--user-col", default="user", help="user id column in every file (default: user)")
    ap.add_argument("--item-col", default="item", help="item id column in every file (default: item)")
    ap.add_argument("--rank-col", default="rank",
                    help="rank column of the recommendations: the 1-based position (default: rank)")
    ap.add_argument("--score-col", default="score",
                    help="score column (higher = better), used when there is no rank column; equal scores rank "
                         "the smaller item id first, recux's one tie rule (see recux.ranking) (default: score)")
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
    if args.n_items is not None and args.n_items < 1:
        raise ConfigError(f"--n-items must be a positive catalogue size, got {args.n_items}")
    data = load_inputs(args, max(ks))
    report = evaluate_topk(data["topk"], data["truth"], metrics=specs, ks=ks, train=data["train"],
                           users=data["users"], n_items=data["n_items"], graded_truth=data["graded"])
    print(format_table(report.means, report.directions))
    print(f"\ncatalogue: {data['n_items']} items, from {data['catalogue']}")
    if not (args.n_items or args.items):
        print("note: coverage and gini are fractions of the items seen in the input files; pass --n-items or "
              "--items for the real catalogue", file=sys.stderr)
    print(f"users evaluated: {report.n_evaluated}; excluded (no ground truth): {report.n_excluded_empty}; "
          f"{report.seconds:.3f} s")
    if report.skipped:
        print(f"note: skipped {', '.join(report.skipped)} (they need --train)", file=sys.stderr)
    payload = {**report.to_dict(), "inputs": {"recommendations": str(args.recommendations),
                                              "ground_truth": str(args.ground_truth),
                                              "train": None if args.train is None else str(args.train)},
               "catalogue": {"n_items": data["n_items"], "source": data["catalogue"]}}
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
