"""Write the learning curves (recux.leaderboard.curves) of finished runs: per dataset a Markdown file with the
tables and the paired comparisons at each fraction, CSVs of the points and comparisons, and one PNG per curve
family (x: training fraction, log; y: the metric's mean ± 95% CI over seeds; a line per model/strategy), e.g.

    python scripts/learning_curves.py /work/acc/curves /work/repro_ux2/loo /work/repro_ux2/seq --out DIR

Fraction 1.0 is an ordinary run (``data.train_fraction=1.0`` leaves the data hash as it was), so published runs
can be given as the 100% points. The same view is part of `recux-leaderboard` output when such runs exist.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from recux.leaderboard import build_leaderboards, find_results, load_runs
from recux.leaderboard.curves_render import render_curves
from recux.leaderboard.render import _file_stems
from recux.results import atomic_write


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("roots", nargs="+", help="folders searched for results.json")
    ap.add_argument("--out", required=True, help="output folder")
    ap.add_argument("--metric", default=None, help="primary metric (default: the runs' optimized_metric)")
    ap.add_argument("--no-plots", dest="plots", action="store_false")
    args = ap.parse_args(argv)
    runs, notes = load_runs(find_results(args.roots))
    for n in notes:
        print(f"note: {n}", file=sys.stderr)
    boards = build_leaderboards(runs, primary=args.metric, significance=False)
    by_dataset: dict[str, list] = {}
    for b in boards:
        by_dataset.setdefault(b.dataset, []).append(b)
    out, written = Path(args.out), 0
    for dataset, stem in _file_stems(by_dataset).items():
        md, files = render_curves(stem, by_dataset[dataset], args.plots)
        if not md:
            continue
        header = f"# Learning curves: {dataset}\n\nFrom {len(runs)} run(s) under: {', '.join(args.roots)}.\n"
        atomic_write(out / f"{stem}_curves.md", header + md)
        for name, content in files.items():
            atomic_write(out / name, content)
        written += 1
        print(f"{dataset}: {out / f'{stem}_curves.md'} and {len(files)} file(s)")
    if not written:
        print("no dataset has runs at two or more training fractions (data.train_fraction)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
