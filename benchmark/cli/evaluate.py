"""``recux-evaluate``: score a recommendations file against a ground-truth file with recux's metrics.

    recux-evaluate recs.csv test.csv --train train.csv --n-items 1682 --ks 5,10,20 --output metrics.json

Files are read by ``recux.tables`` (one separator rule: ``--separator`` if given, else ``.csv`` = comma,
``.tsv``/``.tab`` = tab, ``.parquet``/``.pq`` = Parquet; any other extension needs ``--separator``). Text files
need a header row.

Every file needs user and item id columns: ``--user-col``/``--item-col`` if given, else ``user``/``item`` or,
in a file without them, ``user_id``/``item_id`` (the names of recux's own files); the output says which were
used. Recommendations also need a rank (1 = best) or a score (higher = better) column. A rank is the position,
an integer >= 1 (inf, NaN, 1.5, 0 and -3 are refused): ranks 1, 2, 4 leave position 3 empty (it never counts as
a hit). Equal scores follow recux's one tie rule (``recux.ranking``): the smaller item id first (integer ids
numerically, other ids as text), exactly as the pipeline and ``evaluate_scores`` rank them.

Cut-offs: a list shorter than k counts its empty positions as misses, but a cut-off longer than every list in
the file scores positions that no list fills: given with ``--ks`` it is refused (the message gives a list that
fits); from the default 5,10,20 it is dropped, said on stderr and in the JSON (``ks_dropped``); if none fits, the
longest list's length is used.

A ground-truth user with no recommendations is evaluated and scores 0 on the accuracy metrics (a system that
returns nothing for a user is wrong for that user); the output and the JSON (``n_without_recommendations``,
``users_without_recommendations``: the first 10) count them. Users with recommendations but no ground truth are
excluded and counted.

Ids are matched across files: integer ids as numbers when every file's ids are integers, otherwise as text.

The catalogue (coverage and Gini are fractions of it): ``--n-items N`` or ``--items FILE`` (the item ids of
the catalogue); an item of any input file outside it is refused. Without either, the catalogue is the items
seen in the input files, which understates it for a real system (the output says which catalogue was used).

``--train`` is the training data used for popularity metrics (ARP, novelty): pass the training interactions
only (a run's split/train.parquet), not validation, as the pipeline does. Nothing is masked here: the lists
are scored as given. The pipeline already removed training and validation items from its lists before writing
recommendations.parquet, so its files reproduce its results.json with
``recux-evaluate recommendations.parquet split/test.parquet --train split/train.parquet --n-items N`` (N =
results.json's dataset.n_items; the ``user_id``/``item_id`` columns are found without flags).

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
MAX_LISTED = 10  # ids of users without recommendations shown in the output and the JSON


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
        col = (cat.columns[0] if len(cat.columns) == 1 and args.item_col not in cat.columns
               else _id_col(cat, args.item_col, "item", "--item-col"))
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


def _ranks(table: Table, col: str, fix: str) -> pl.Series:
    """The rank column as floats; anything but an integer >= 1 (inf, NaN, 1.5, 0, -3, text) is refused."""
    s = table.column(col, "--rank-col")
    text = None if s.dtype.is_numeric() else s.cast(pl.String).str.strip_chars()
    values = s.cast(pl.Float64, strict=False) if text is None else text.cast(pl.Float64, strict=False)
    bad = (~values.is_finite() | (values < 1) | (values != values.floor())).fill_null(True)
    if bad.any():
        table.fail(s, bad, "--rank-col", "a rank (an integer >= 1, 1 = best)", fix)
    return values


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
    values = _ranks(table, col, fix) if by_rank else table.floats(col, flag, fix=fix)
    return col, by_rank, values.to_numpy()


def _positions(recs: Table, ru: np.ndarray, ri: np.ndarray, args, users, keys) -> pl.DataFrame:
    """(u, i, pos) of every recommendation, pos 0-based (Float64: a rank may be huge)."""
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
        return frame.with_columns(pos=pl.col("o") - 1)  # the rank is the position
    # tie rule: equal scores -> lower item code (= smaller id) first
    return frame.sort(["u", "o", "i"]).with_columns(pos=pl.int_range(pl.len()).over("u").cast(pl.Float64))


def fit_ks(ks: tuple[int, ...], explicit: bool, longest: float, path: Path) -> tuple[tuple[int, ...], list[int]]:
    """(cut-offs to use, default cut-offs dropped). No list can fill a cut-off beyond the longest list: given
    with ``--ks`` that is refused; the default cut-offs are clipped to the ones that fit (at least the longest
    list's length), and the caller states what was dropped."""
    fits = tuple(k for k in ks if k <= longest)
    too_long = [k for k in ks if k > longest]
    if not too_long:
        return ks, []
    n = int(longest)
    if explicit:
        fix = ",".join(map(str, fits)) if fits else str(n)
        raise ConfigError(
            f"--ks {','.join(map(str, ks))}: the longest recommendation list in {path} has {n} item"
            f"{'s' if n != 1 else ''}, so no list reaches k={', '.join(map(str, too_long))}. Use cut-offs <= {n} "
            f"(e.g. --ks {fix}) or recommend more items per user."
        )
    return fits or (n,), too_long


def _topk(frame: pl.DataFrame, n_rows: int, k_max: int) -> np.ndarray:
    """(n_rows x k_max) item codes; -1 marks an empty position (k_max <= the longest list: ``fit_ks``)."""
    frame = frame.filter(pl.col("pos") < k_max).with_columns(pl.col("pos").cast(pl.Int64))
    topk = np.full((n_rows, k_max), -1, dtype=np.int32)
    topk[frame["u"].to_numpy(), frame["pos"].to_numpy()] = frame["i"].to_numpy()
    return topk


def _id_col(table: Table, given: str | None, kind: str, flag: str) -> str:
    """The id column of one file: ``flag``'s value if given, else whichever of '<kind>' (the default) and
    '<kind>_id' (recux's own recommendations.parquet and split files) the file has."""
    if given is not None:
        return given
    found = [c for c in (kind, f"{kind}_id") if c in table.columns]
    if len(found) == 1:
        return found[0]
    if found:
        raise DataError(f"{table.path} has both a '{kind}' and a '{kind}_id' column; name the {kind} id column "
                        f"with {flag}.")
    raise DataError(f"{table.path} has no '{kind}' or '{kind}_id' column (its columns: "
                    f"{', '.join(repr(c) for c in table.columns)}). Name the {kind} id column with {flag}.")


def load_inputs(args: argparse.Namespace, ks: tuple[int, ...], explicit_ks: bool) -> dict[str, Any]:
    """Read the files and encode them: (n x K) top-k codes, ground-truth CSR (and grades), training CSR, ids,
    the cut-offs that fit the lists, the id columns used and the evaluated users that have no recommendations."""
    recs = read_table(args.recommendations, "recommendations", args.separator)
    truth = read_table(args.ground_truth, "ground-truth", args.separator)
    train = read_table(args.train, "training", args.separator) if args.train else None
    history = read_table(args.history, "history", args.separator) if args.history else None
    tables = [t for t in (recs, truth, train, history) if t is not None]
    cols = [(_id_col(t, args.user_col, "user", "--user-col"), _id_col(t, args.item_col, "item", "--item-col"))
            for t in tables]
    item_ids = _unify([_ids(t, ic, "--item-col") for t, (_, ic) in zip(tables, cols, strict=True)])
    user_ids = _unify([_ids(t, uc, "--user-col") for t, (uc, _) in zip(tables, cols, strict=True)])
    keys, n_items, source = _catalogue(args, list(zip(tables, item_ids, strict=True)))
    users = pl.concat(user_ids[:2]).unique().sort()
    n_rows = len(users)
    ru, ri = _codes(user_ids[0], users), _codes(item_ids[0], keys)
    frame = _positions(recs, ru, ri, args, users, keys)
    ks, dropped = fit_ks(ks, explicit_ks, float(frame["pos"].max()) + 1, recs.path)
    topk = _topk(frame, n_rows, max(ks))
    tu, ti = _codes(user_ids[1], users), _codes(item_ids[1], keys)
    gt = _pairs_csr(tu, ti, (n_rows, n_items))
    no_recs = users.gather(np.setdiff1d(tu, ru)).to_list()  # ground-truth users absent from the recommendations
    train_csr = None
    if train is not None:
        tr_users = user_ids[2].unique().sort()
        train_csr = _pairs_csr(_codes(user_ids[2], tr_users), _codes(item_ids[2], keys), (len(tr_users), n_items))
    hist_csr = None
    if history is not None:
        hu, hi = user_ids[-1], item_ids[-1]
        keep = hu.is_in(users).to_numpy()
        hist_csr = _pairs_csr(_codes(hu.filter(keep), users), _codes(hi.filter(keep), keys), (n_rows, n_items))
    roles = [r for r, t in (("recommendations", recs), ("ground_truth", truth), ("train", train),
                            ("history", history)) if t is not None]
    return {"topk": topk, "truth": gt, "graded": _grades(args, truth, tu, ti, (n_rows, n_items)),
            "train": train_csr, "history": hist_csr, "users": users.to_numpy(), "n_items": n_items,
            "item_features": _item_features(args, keys), "catalogue": source, "ks": ks, "ks_dropped": dropped,
            "no_recs": no_recs, "columns": {r: {"user": u, "item": i} for r, (u, i) in zip(roles, cols, strict=True)}}


def _item_features(args: argparse.Namespace, keys: pl.Series) -> pl.DataFrame | None:
    """--item-features aligned with the catalogue (row i = item code i; items without a row get nulls). List
    columns (e.g. genres) need a Parquet file; in a text file every value is one category."""
    if not args.item_features:
        return None
    table = read_table(args.item_features, "item-features", args.separator)
    col = _id_col(table, args.item_col, "item", "--item-col")
    ids = _ids(table, col, "--item-col")
    same = ids.dtype == keys.dtype
    frame = table.df.with_columns((ids if same else ids.cast(pl.String)).alias("__key"))
    left = pl.DataFrame({"__key": keys if same else keys.cast(pl.String)})
    return left.join(frame.drop(col), on="__key", how="left").rename({"__key": "item_id"})


def _grades(args: argparse.Namespace, truth: Table, tu: np.ndarray, ti: np.ndarray, shape: tuple[int, int]
            ) -> sp.csr_matrix | None:
    """Ground-truth grades from --relevance-col (None without it)."""
    if not args.relevance_col:
        return None
    grades = truth.floats(args.relevance_col, "--relevance-col",
                          fix="Grades must be numbers >= 0 (e.g. ratings); fix those rows or drop "
                              "--relevance-col.")
    if (grades < 0).any():
        truth.fail(truth.column(args.relevance_col, "--relevance-col"), grades < 0, "--relevance-col",
                   "a grade >= 0", "Graded gains need non-negative grades.")
    return _pairs_csr(tu, ti, shape, grades.to_numpy())


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
    ap.add_argument("--history", help="the interactions each user's list is compared with (user, item): what "
                    "the lists were ranked around, e.g. a run's split/train.parquet plus valid.parquet; for "
                    "calibration, unexpectedness_pop, serendipity, pop_lift")
    ap.add_argument("--item-features", help="item features (item id + columns, e.g. a Parquet genres list "
                    "column) for category metrics (ild, miscalibration)")
    ap.add_argument("--n-items", type=int, help="catalogue size (coverage and Gini are fractions of it; default: "
                                                "the items seen in the input files)")
    ap.add_argument("--items", help="catalogue file: the item ids of the catalogue (column --item-col, or its "
                                    "only column); items outside it are refused")
    ap.add_argument("--relevance-col", help="grade column of the ground truth (e.g. rating) for graded metrics "
                                            "(--metrics ndcg_graded,ndcg_burges)")
    ap.add_argument("--separator", help="separator of the text files (default: from the extension, "
                                        ".csv comma, .tsv/.tab tab)")
    ap.add_argument("--user-col", help="user id column in every file (default: 'user', or 'user_id' in a file "
                                       "without 'user', as recux's own files name it)")
    ap.add_argument("--item-col", help="item id column in every file (default: 'item', or 'item_id' in a file "
                                       "without 'item')")
    ap.add_argument("--rank-col", default="rank",
                    help="rank column of the recommendations: the 1-based position (default: rank)")
    ap.add_argument("--score-col", default="score",
                    help="score column (higher = better), used when there is no rank column; equal scores rank "
                         "the smaller item id first, recux's one tie rule (see recux.ranking) (default: score)")
    ap.add_argument("--metrics", help="comma-separated metric names (default: the default set; "
                                      "popularity metrics need --train)")
    ap.add_argument("--ks", help="comma-separated cut-offs (default: 5,10,20, less the ones longer than the "
                                 "longest list, stated in the output; a cut-off given here that no list reaches "
                                 "is refused)")
    ap.add_argument("--output", help="write the results as JSON to this path")
    ap.add_argument("--per-user", help="write per-user values to this .csv or .parquet file")
    return ap


def _notes(data: dict[str, Any]) -> None:
    """State what the user might not expect: users scored 0 for lack of a list, default cut-offs dropped."""
    no_recs = data["no_recs"]
    if no_recs:
        shown = ", ".join(repr(u) for u in no_recs[:MAX_LISTED]) + (", ..." if len(no_recs) > MAX_LISTED else "")
        print(f"users with ground truth but no recommendations: {len(no_recs)} (evaluated, scored 0 on accuracy "
              f"metrics): {shown}")
    if data["ks_dropped"]:
        from recux.evaluation import DEFAULT_KS

        print(f"note: cut-offs {', '.join(map(str, data['ks_dropped']))} dropped from the default --ks "
              f"{','.join(map(str, DEFAULT_KS))}: no recommendation list is that long (using "
              f"{','.join(map(str, data['ks']))}); pass --ks to choose", file=sys.stderr)


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Evaluate as the command line describes; returns the JSON payload."""
    from recux.evaluation import DEFAULT_KS, evaluate_topk

    metric_names = _parse_list(args.metrics, "--metrics")
    explicit_ks = _parse_ks(args.ks)
    specs = None if metric_names is None else [{"name": m} for m in metric_names]
    if specs is not None:
        from recux.evaluation import build_metrics

        build_metrics(specs)  # unknown names fail before reading any file
    if args.n_items is not None and args.n_items < 1:
        raise ConfigError(f"--n-items must be a positive catalogue size, got {args.n_items}")
    data = load_inputs(args, explicit_ks or tuple(DEFAULT_KS), explicit_ks is not None)
    report = evaluate_topk(data["topk"], data["truth"], metrics=specs, ks=data["ks"], train=data["train"],
                           users=data["users"], n_items=data["n_items"], graded_truth=data["graded"],
                           history=data["history"], item_features=data["item_features"])
    print(format_table(report.means, report.directions))
    print(f"\ncatalogue: {data['n_items']} items, from {data['catalogue']}")
    print("id columns: " + "; ".join(f"{role.replace('_', ' ')} {c['user']}, {c['item']}"
                                     for role, c in data["columns"].items()))
    if not (args.n_items or args.items):
        print("note: coverage and gini are fractions of the items seen in the input files; pass --n-items or "
              "--items for the real catalogue", file=sys.stderr)
    print(f"users evaluated: {report.n_evaluated}; excluded (no ground truth): {report.n_excluded_empty}; "
          f"{report.seconds:.3f} s")
    _notes(data)
    if report.skipped:
        print(f"note: skipped {', '.join(report.skipped)} (they need --train)", file=sys.stderr)
    payload = {**report.to_dict(), "inputs": {"recommendations": str(args.recommendations),
                                              "ground_truth": str(args.ground_truth),
                                              "train": None if args.train is None else str(args.train)},
               "catalogue": {"n_items": data["n_items"], "source": data["catalogue"]},
               "columns": data["columns"], "ks_dropped": data["ks_dropped"],
               "n_without_recommendations": len(data["no_recs"]),
               "users_without_recommendations": data["no_recs"][:MAX_LISTED]}
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
