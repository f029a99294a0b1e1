"""Print the per-period tables of continual-task runs (task=continual) side by side, as Markdown: per period the
test accuracy on the next period, backward transfer and forgetting after the update, and the update's cost; and,
for each continual run with a retrain run of the same model and data, the update cost against that retrain.

    python scripts/continual_report.py RUN_DIR_OR_RESULTS_JSON [...] [--metric ndcg@10]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def load(path: str) -> dict[str, Any]:
    p = Path(path)
    record = json.loads((p / "results.json" if p.is_dir() else p).read_text(encoding="utf-8"))
    if "continual" not in record:
        raise SystemExit(f"{path}: not a task=continual results.json (no 'continual' block)")
    return record


def _f(x: Any, digits: int = 4) -> str:
    return "–" if x is None else f"{x:.{digits}f}" if isinstance(x, float) else str(x)


def period_table(records: list[dict[str, Any]], metric: str) -> list[str]:
    lines = [f"| run | stage (train ≤ period) | test period | test users | {metric} | avg {metric} (tasks ≤ t) | "
             f"BWT | forgetting | epochs (best) | train s | fit s |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for rec in records:
        for row in rec["continual"]["periods"]:
            lines.append(
                f"| {rec['label']} | {row['stage']} | {row['test_period']} | {row['test_users']} | "
                f"{_f(row[metric])} | {_f(row[f'avg_{metric}'])} | {_f(row[f'bwt_{metric}'])} | "
                f"{_f(row[f'forgetting_{metric}'])} | {row['epochs']} ({row['best_epoch']}) | "
                f"{_f(row.get('train_seconds'), 1)} | {_f(row['fit_seconds'], 1)} |")
    return lines


def cost_table(records: list[dict[str, Any]], metric: str) -> list[str]:
    """Each continual run against the retrain run of the same model, data and update data."""
    def key(rec):
        scheme = rec["continual"]["scheme"]
        same = {k: v for k, v in scheme.items() if k not in ("mode", "update_max_epochs")}
        model = {k: rec["model"].get(k) for k in ("name", "params")}  # not describe(): costs differ per run
        return json.dumps([rec["dataset"].get("name"), rec["seed"], model, (rec.get("finetune") or {}).get("name"),
                           same], sort_keys=True)

    retrains = {key(r): r for r in records if r["continual"]["scheme"]["mode"] == "retrain"}
    lines = [f"| continual run | vs retrain | stage | epochs | train s | Δ{metric} (continual − retrain) |",
             "|---|---|---|---|---|---|"]
    for rec in records:
        base = retrains.get(key(rec))
        if rec["continual"]["scheme"]["mode"] != "continual" or base is None:
            continue
        for row, ref in zip(rec["continual"]["periods"][1:], base["continual"]["periods"][1:], strict=True):
            lines.append(
                f"| {rec['label']} | {base['label']} | {row['stage']} | {row['epochs']} vs {ref['epochs']} | "
                f"{_f(row.get('train_seconds'), 1)} vs {_f(ref.get('train_seconds'), 1)} | "
                f"{row[metric] - ref[metric]:+.4f} |")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--metric", default=None, help="default: each run's optimized metric")
    args = ap.parse_args()
    records = [load(p) for p in args.runs]
    metric = args.metric or records[0]["continual"]["metric"]
    print("\n".join(period_table(records, metric)))
    print()
    print("\n".join(cost_table(records, metric)))


if __name__ == "__main__":
    main()
