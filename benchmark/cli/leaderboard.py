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
    DEFAULT_UX_METRICS,
    DEFAULT_UX_PARETO,
    UxConfig,
    build_leaderboards,
    find_results,
    load_results,
    log_to_wandb,
)
from recux.leaderboard.files import DatasetFiles, render_files, write_files
from recux.leaderboard.manifest import (
    ManifestError,
    check_rebuild,
    manifest_path,
    manifest_results,
    read_manifest,
)

log = logging.getLogger("recux.leaderboard")

LOCAL_OUT = "outputs/leaderboards"  # the default: a local folder, rewritten freely, never the published one
PUBLISHED_OUT = "leaderboards"  # the committed record: written only with --publish (or --out), then checked


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
    p.add_argument(
        "--out", default=None,
        help=f"output folder (default: {LOCAL_OUT}, rewritten on every call). Any other folder is checked: "
        "where it holds a <dataset>.manifest.json, the runs must be the ones it lists (see --merge, --replace)",
    )  # fmt: skip
    p.add_argument(
        "--publish", action="store_true",
        help=f"write the published leaderboards in {PUBLISHED_OUT}/ (same as --out {PUBLISHED_OUT})",
    )  # fmt: skip
    mode = p.add_mutually_exclusive_group()
    mode.add_argument(
        "--merge", action="store_true",
        help="add the runs found to those the manifest lists (read again from their folders); refuses if a "
        "listed run is missing or replaced by a newer one",
    )  # fmt: skip
    mode.add_argument(
        "--replace", action="store_true",
        help="rebuild the leaderboard from the runs found only, dropping runs its manifest lists",
    )  # fmt: skip
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
        "--ux", action=argparse.BooleanOptionalAction, default=True,
        help="add a UX view (accuracy next to the UX measures, Pareto plots) to every section whose runs have a "
        "UX metric its accuracy table does not show",
    )  # fmt: skip
    p.add_argument(
        "--ux-metrics", default=None,
        help="comma-separated columns of the UX view, the first the accuracy the others are set against "
        f"(default: {','.join(DEFAULT_UX_METRICS)}); a column appears where a run of the section has it",
    )  # fmt: skip
    p.add_argument(
        "--ux-pareto", default=None,
        help="the Pareto plots' x-axes, comma-separated, alternatives within one joined by '|' (the first "
        f"present is drawn; default: {','.join('|'.join(c) for c in DEFAULT_UX_PARETO)})",
    )  # fmt: skip
    p.add_argument(
        "--alpha", type=float, default=0.05, help="significance level after Holm correction (0.05)"
    )
    p.add_argument("--no-wandb", dest="wandb", action="store_false", help="do not log the tables to W&B")
    p.add_argument("--plots", action=argparse.BooleanOptionalAction, default=True, help="write PNG plots")
    return p


def _out_folder(args: argparse.Namespace) -> tuple[Path, bool]:
    """The output folder and whether existing manifests there are checked (all but the local default)."""
    if args.publish and args.out is not None and Path(args.out).resolve() != Path(PUBLISHED_OUT).resolve():
        raise ManifestError(f"--publish writes to {PUBLISHED_OUT}/; drop --out {args.out} or --publish")
    out = Path(PUBLISHED_OUT if args.publish else args.out or LOCAL_OUT)
    return out, args.merge or args.replace or out.resolve() != Path(LOCAL_OUT).resolve()


def _check_existing(rendered: list[DatasetFiles], out: Path, mode: str, target: str) -> list[str]:
    """What each write will do to the leaderboards already in ``out``; raises ManifestError (nothing is written)
    if one would be replaced or lose runs without --merge / --replace."""
    done, refusals = [], []
    for d in rendered:
        path = manifest_path(out, d.stem)
        try:
            if path.exists() and mode == "replace":
                try:
                    done.append(check_rebuild(path, read_manifest(path), d.entries, mode, target))
                except ManifestError as e:  # an unreadable manifest may be replaced
                    done.append(f"replaced {path.name} ({e})")
                continue
            if path.exists():
                done.append(check_rebuild(path, read_manifest(path), d.entries, mode, target))
                continue
            if any((out / name).exists() for name in d.files) and mode != "replace":
                raise ManifestError(
                    f"refused to overwrite {out / (d.stem + '.md')} (or its CSV/plots): it has no manifest "
                    f"({path.name}) to check this build's runs against. Write elsewhere (--out DIR), or replace "
                    "it with --replace."
                )
            done.append(f"{path.name}: created, {len(d.entries)} run(s)")
        except ManifestError as e:
            refusals.append(str(e))
    if refusals:
        raise ManifestError("\n".join(refusals) + "\nNothing was written.")
    return done


def _setup_logging() -> None:
    if not logging.getLogger().handlers and not log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("recux-leaderboard: %(levelname)s: %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False


def main(argv: list[str] | None = None) -> int:
    """Console entry point; returns the exit code (0 ok, 2 no results / bad arguments / a write refused because
    the runs do not match the manifest of the leaderboard it would overwrite)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    _setup_logging()
    if not 0 < args.alpha < 1:
        print(f"recux-leaderboard: --alpha must be between 0 and 1, got {args.alpha}", file=sys.stderr)
        return 2
    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()] if args.metrics else None
    try:
        ux = UxConfig.from_options(args.ux_metrics, args.ux_pareto) if args.ux else None
    except ValueError as e:
        print(f"recux-leaderboard: {e}", file=sys.stderr)
        return 2

    roots = args.roots or list(DEFAULT_ROOTS)
    for root in args.roots:  # only warn for roots the user named
        if not Path(root).exists():
            log.warning("%s does not exist; skipped", root)
    try:
        out, checked = _out_folder(args)
        listed = manifest_results(out) if args.merge else []
    except ManifestError as e:
        print(f"recux-leaderboard: {e}", file=sys.stderr)
        return 2
    paths = sorted(
        set(find_results(r for r in roots if Path(r).exists())) | {p for p in listed if p.exists()}
    )
    runs, failed, skipped = load_results(paths)
    for msg in skipped:
        log.warning("%s", msg)
    for f in failed:
        log.warning(
            "%s: status %r (%s); listed under Failed runs, not ranked", f.path, f.status, f.error or "?"
        )
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
    rendered = render_files(boards, command, plots=args.plots, failed=failed, ux=ux)
    mode = "merge" if args.merge else "replace" if args.replace else "exact"
    try:
        target = "--publish" if args.publish else f"--out {out}"
        done = _check_existing(rendered, out, mode, target) if checked else []
    except ManifestError as e:
        print(f"recux-leaderboard: {e}", file=sys.stderr)
        return 2
    resolved_roots = [str(Path(r).resolve()) for r in roots]
    if args.merge:
        for d in rendered:
            if manifest_path(out, d.stem).exists():
                resolved_roots += read_manifest(manifest_path(out, d.stem)).get("roots") or []
    written = write_files(rendered, out, command, roots=list(dict.fromkeys(resolved_roots)))
    if args.wandb:
        try:
            ux_plots = {(d.dataset, *key): out / name for d in rendered for key, name in d.ux_plots.items()}
            run_dir = log_to_wandb(
                boards, out / ".wandb", config={"roots": [str(r) for r in roots], "metric": args.metric},
                ux=ux, ux_plots=ux_plots,
            )  # fmt: skip
            log.info("W&B run (tables) written to %s", run_dir)
        except Exception as e:  # noqa: BLE001 - the files are the record; W&B is a convenience
            log.warning(
                "W&B logging failed (%s: %s); the leaderboard files were written anyway", type(e).__name__, e
            )
    where = (f"{out} (the local folder, rewritten on every call; publish with --publish)" if not checked
             else str(out))  # fmt: skip
    print(f"recux-leaderboard: {len(runs)} run(s) in {len(boards)} table(s) from {searched}"
          + (f", {len(failed)} failed run(s) listed apart" if failed else "") + f"; written to {where}")  # fmt: skip
    for line in done:
        print(f"  {line}")
    for path in written:
        print(f"  {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
