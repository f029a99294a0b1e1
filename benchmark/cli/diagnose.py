"""``recux-diagnose``: the UX diagnosis of a finished run (where is the experience bad, and for whom?), optionally
against a baseline run on the same data.

    recux-diagnose outputs/ml-100k/ease/<run> [--baseline outputs/ml-100k/pop/<run>] [--metric ndcg@10 ...]

Writes diagnosis.md and one PNG per metric beside the run's results.json (or into --out DIR) and, when the run
logged to W&B (its ``logger`` config) and --no-wandb is not given, a W&B table (offline, under DIR/.wandb).
The run's data is rebuilt from its stored config (the dataset must still be loadable). See recux.diagnosis for
the segments and the statistics. Exit codes: 0 written, 2 bad input (the message says what and how to fix it).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from recux.errors import RecuxError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="recux-diagnose", description=__doc__.split("\n\n")[0])
    p.add_argument("run", help="a finished run's folder (holding results.json and per_user_metrics.parquet)")
    p.add_argument("--baseline", default=None, help="a run on the same data (same data hash) to compare with")
    p.add_argument("--metric", action="append", default=None,
                   help="a per-user metric, e.g. ndcg@10 (repeat for several; default: the run's optimized metric)")
    p.add_argument("--out", default=None, help="output folder (default: the run's folder)")
    p.add_argument("--alpha", type=float, default=0.05, help="significance level after Holm correction (0.05)")
    p.add_argument("--no-wandb", dest="wandb", action="store_false", help="do not log a W&B table")
    return p


def _tracker(folder, out: Path):
    from recux.tracking import make_tracker

    rec = folder.record
    return make_tracker(rec.config.get("logger"), out, rec.config, name=f"{rec.label}-s{rec.seed}-diagnosis",
                        group=f"{rec.data_hash}-{rec.variant_hash}", tags=[rec.dataset_name, "diagnosis"])


def run(args: argparse.Namespace) -> list[Path]:
    from recux.diagnosis import diagnose
    from recux.diagnosis_report import (
        check_same_data,
        choose_metrics,
        load_run,
        rebuild_data,
        title_of,
        write_report,
    )

    if not 0 < args.alpha < 1:
        raise RecuxError(f"--alpha must be between 0 and 1, got {args.alpha}")
    folder = load_run(args.run)
    base = None if args.baseline is None else load_run(args.baseline, role="baseline")
    if base is not None:
        check_same_data(folder, base)
    metrics = choose_metrics(args.metric, folder.per_user, folder.record.optimized_metric)
    data = rebuild_data(folder)
    diag = diagnose(folder.per_user, data, metrics, folder.record.directions,
                    baseline=None if base is None else base.per_user, alpha=args.alpha)
    out = Path(args.out) if args.out else folder.path
    tracker = _tracker(folder, out) if args.wandb else None
    try:
        written = write_report(diag, out, title_of(folder.record, base and base.record), tracker)
    finally:
        if tracker is not None:
            tracker.finish(0)
    worst = diag.worst()
    print(f"recux-diagnose: {len(diag.rows)} segment rows, {len(worst)} significant shortfall(s)")
    from recux.diagnosis_render import describe

    for i, row in enumerate(worst[:3] or diag.largest_shortfalls(), 1):
        print(f"  {i}. {describe(row, diag).replace('**', '')}" + ("" if worst else " (not significant)"))
    return written


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    try:
        written = run(args)
    except RecuxError as e:
        print(f"recux-diagnose: {e}", file=sys.stderr)
        return 2
    for path in written:
        print(f"  {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
