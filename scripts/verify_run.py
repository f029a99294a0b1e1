"""Recompute every accuracy metric of a finished run from its files alone, independently of recux's kernels.

Reads results.json, recommendations.parquet and split/{train,valid,test}.parquet of a run folder, recomputes
precision/recall/ndcg/mrr/map/map_recbole/hit at each k with plain Python, compares with results.json, and checks
that no test pair appears in train or valid. Exit code 1 on any mismatch.

    python scripts/verify_run.py outputs/ml-100k/bpr/<run>/
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import polars as pl


def recompute(recs: pl.DataFrame, test: pl.DataFrame, ks: list[int]) -> dict[str, float]:
    truth: dict = {}
    for u, i in test.select("user_id", "item_id").iter_rows():
        truth.setdefault(u, set()).add(i)
    lists: dict = {}
    for u, i in recs.sort("user_id", "rank").select("user_id", "item_id").iter_rows():
        lists.setdefault(u, []).append(i)
    out: dict[str, float] = {}
    for k in ks:
        sums = dict.fromkeys(("precision", "recall", "ndcg", "mrr", "map", "map_recbole", "hit"), 0.0)
        for u, rel in truth.items():
            hits = [1 if i in rel else 0 for i in lists.get(u, [])[:k]]
            n_hits = sum(hits)
            sums["precision"] += n_hits / k
            sums["recall"] += n_hits / len(rel)
            idcg = sum(1.0 / math.log2(r + 2) for r in range(min(len(rel), k)))
            sums["ndcg"] += sum(h / math.log2(r + 2) for r, h in enumerate(hits)) / idcg
            first = next((r for r, h in enumerate(hits) if h), None)
            sums["mrr"] += 0.0 if first is None else 1.0 / (first + 1)
            ap, seen = 0.0, 0
            for r, h in enumerate(hits):
                if h:
                    seen += 1
                    ap += seen / (r + 1)
            sums["map"] += ap / len(rel)
            sums["map_recbole"] += ap / min(len(rel), k)
            sums["hit"] += float(n_hits > 0)
        out.update({f"{m}@{k}": v / len(truth) for m, v in sums.items()})
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--tol", type=float, default=1e-9)
    args = parser.parse_args(argv)
    results = json.loads((args.run_dir / "results.json").read_text())
    recs = pl.read_parquet(args.run_dir / "recommendations.parquet")
    split = {p: pl.read_parquet(args.run_dir / "split" / f"{p}.parquet") for p in ("train", "valid", "test")}
    ks = [int(k) for k in results["config"]["metrics"]["ks"]]
    mine = recompute(recs, split["test"], ks)
    ok = True
    checked = 0
    for name, value in sorted(mine.items()):
        if name not in results["metrics"]:
            continue
        checked += 1
        diff = abs(results["metrics"][name] - value)
        flag = "ok" if diff <= args.tol else "MISMATCH"
        ok &= diff <= args.tol
        print(f"{name:<16} results.json={results['metrics'][name]:.12f} recomputed={value:.12f} {flag}")
    pairs = ["user_id", "item_id"]
    leaks = {p: split["test"].join(split[p], on=pairs, how="inner").height for p in ("train", "valid")}
    seen = pl.concat([split["train"].select(pairs), split["valid"].select(pairs)])
    recommended_seen = recs.join(seen, on=pairs, how="inner").height
    print(f"{checked} metrics checked; test pairs in train: {leaks['train']}, in valid: {leaks['valid']}; "
          f"recommended items already seen: {recommended_seen}")
    ok &= checked > 0 and leaks["train"] == 0 and leaks["valid"] == 0 and recommended_seen == 0
    print("VERIFIED" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
