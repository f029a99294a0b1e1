"""Compare two leaderboard CSVs (e.g. the published one and one rebuilt from rerun sweeps): for every variant
(protocol, label) in both, the largest absolute difference of each metric's mean and std over seeds.

    python scripts/compare_leaderboards.py leaderboards/ml-100k.csv /tmp/rebuilt/ml-100k.csv

Exit code 0 when every shared metric agrees within --tol (default 0: exact), 1 otherwise. Timing columns
(fit_seconds, seconds_per_epoch) and significance columns are not compared."""

from __future__ import annotations

import argparse
import sys

import polars as pl

_NOT_METRICS = ("fit_seconds", "seconds_per_epoch")


def metric_columns(frame: pl.DataFrame) -> list[str]:
    return [c for c in frame.columns if c.endswith(("_mean", "_std")) and not c.startswith(_NOT_METRICS)]


def compare(published: pl.DataFrame, rebuilt: pl.DataFrame) -> pl.DataFrame:
    keys = ["protocol", "label"]
    cols = sorted(set(metric_columns(published)) & set(metric_columns(rebuilt)))
    joined = published.select(keys + cols + ["n_seeds"]).join(
        rebuilt.select(keys + cols + ["n_seeds"]), on=keys, how="inner", suffix="_new")
    rows = []
    for row in joined.iter_rows(named=True):
        diffs = {c: abs(float(row[c] or 0.0) - float(row[f"{c}_new"] or 0.0)) for c in cols}
        worst = max(diffs, key=diffs.get)
        rows.append({"protocol": row["protocol"], "label": row["label"], "seeds": row["n_seeds"],
                     "seeds_new": row["n_seeds_new"], "n_compared": len(cols), "max_abs_diff": diffs[worst],
                     "worst_column": worst})
    return pl.DataFrame(rows).sort(keys)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("published")
    ap.add_argument("rebuilt")
    ap.add_argument("--tol", type=float, default=0.0)
    args = ap.parse_args(argv)
    table = compare(pl.read_csv(args.published), pl.read_csv(args.rebuilt))
    with pl.Config(tbl_rows=100, tbl_width_chars=200, fmt_float="full"):
        print(table)
    missing = len(pl.read_csv(args.published)) - len(table)
    if missing:
        print(f"{missing} published variant(s) have no rebuilt counterpart")
    ok = not missing and bool((table["max_abs_diff"] <= args.tol).all())
    print("all shared metrics agree" + (" exactly" if args.tol == 0 else f" within {args.tol}") if ok
          else "DIFFERENCES found")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
