"""`recux-leaderboard`: build Markdown/CSV/PNG leaderboards (and a W&B table) from finished runs."""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
from pathlib import Path

from recux.leaderboard import (
    DEFAULT_METRICS,
    DEFAULT_PRIMARY,
    DEFAULT_ROOTS,
    build_leaderboards,
    find_results,
    load_runs,
    log_to_wandb,
    write_leaderboards,
)

log = logging.getLogger("recux.leaderboard")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="recux-leaderboard",
        description="Aggregate results.json files over seeds into per-dataset leaderboards (one section per "
        "protocol and data: runs on different data are never compared) with paired significance tests against "
        "the best variant.",
    )
    p.add_argument(
        "roots", nargs="*", default=[],
        help="folders searched recursively for results.json (default: outputs/ and multirun/)",
    )  # fmt: skip
    p.add_argument("--out", default="leaderboards", help="output folder (default: leaderboards)")
    p.add_argument(
        "--metric", default=None,
        help="primary metric to sort and test by (default: the optimized_metric the runs record, else "
        f"{DEFAULT_PRIMARY})",
    )  # fmt: skip
    p.add_argument(
        "--metrics", default=None,
        help=f"comma-separated table columns (default: those of {','.join(DEFAULT_METRICS)} that exist)",
    )  # fmt: skip
    p.add_argument(
        "--alpha", type=float, default=0.05, help="significance level after Holm correction (0.05)"
    )
    p.add_argument("--no-wandb", dest="wandb", action="store_false", help="do not log the tables to W&B")
    p.add_argument("--plots", action=argparse.BooleanOptionalAction, default=True, help="write PNG plots")
    return p


def main(argv: list[str] | None = None) -> int:
    """Console entry point; returns the exit code (0 ok, 2 no results / bad arguments)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    if not logging.getLogger().handlers and not log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("recux-leaderboard: %(levelname)s: %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False
    if not 0 < args.alpha < 1:
        print(f"recux-leaderboard: --alpha must be between 0 and 1, got {args.alpha}", file=sys.stderr)
        return 2
    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()] if args.metrics else None

    roots = args.roots or list(DEFAULT_ROOTS)
    for root in args.roots:  # only warn for roots the user named
        if not Path(root).exists():
            log.warning("%s does not exist; skipped", root)
    paths = find_results(r for r in roots if Path(r).exists())
    runs, skipped = load_runs(paths)
    for msg in skipped:
        log.warning("%s", msg)
    searched = ", ".join(str(Path(r).resolve()) for r in roots)
    if not runs:
        why = (
            f"found {len(paths)} results.json file(s), none usable (see warnings above)"
            if paths
            else ("found no results.json")
        )
        print(
            f"recux-leaderboard: {why} under: {searched} (searched recursively).\n"
            "Produce runs first, e.g. `recux -m model=pop,itemknn,bpr seed=0,1`, or pass the folders that hold "
            "them: `recux-leaderboard path/to/runs ...`.",
            file=sys.stderr,
        )
        return 2

    boards = build_leaderboards(runs, primary=args.metric, metrics=metrics, alpha=args.alpha)
    for b in boards:
        for note in b.notes:
            log.warning("%s/%s/%s: %s", b.dataset, b.protocol, b.data_hash[:8], note)
    command = shlex.join(["recux-leaderboard", *argv])
    out = Path(args.out)
    written = write_leaderboards(boards, out, command, plots=args.plots)
    if args.wandb:
        try:
            run_dir = log_to_wandb(
                boards, out / ".wandb", config={"roots": [str(r) for r in roots], "metric": args.metric}
            )
            log.info("W&B run (tables) written to %s", run_dir)
        except Exception as e:  # noqa: BLE001 - the files are the record; W&B is a convenience
            log.warning(
                "W&B logging failed (%s: %s); the leaderboard files were written anyway", type(e).__name__, e
            )
    print(f"recux-leaderboard: {len(runs)} run(s) in {len(boards)} table(s) from {searched}")
    for path in written:
        print(f"  {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
