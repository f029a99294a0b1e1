"""``recux-rescore``: add a metric set to finished runs from the top-k lists they saved, without refitting.

    recux-rescore RUN_DIR [RUN_DIR ...] --metrics ux --out DIR

Each run folder is copied to DIR/<its name> with the new metrics, per-user columns and fairness section added;
the originals are never changed. A run whose saved lists do not reproduce every metric it recorded is refused
(see recux.rescore). A multirun folder (holding run folders) stands for every run in it. Exit codes: 0 all
rescored, 2 bad input, 3 some runs refused (the others are written; each refusal is printed).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from recux.errors import RecuxError


def _runs(paths: list[str]) -> list[Path]:
    out: list[Path] = []
    for p in map(Path, paths):
        out += [p] if (p / "results.json").is_file() else sorted(f.parent for f in p.glob("*/results.json"))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="recux-rescore", description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", help="run folders (or folders of run folders, e.g. a multirun sweep)")
    p.add_argument("--metrics", required=True, help="a built-in metric set (conf/metrics/<name>.yaml) or a YAML file")
    p.add_argument("--out", required=True, help="folder that receives the rescored copies")
    args = p.parse_args(argv)
    from recux.rescore import rescore

    runs = _runs(args.runs)
    if not runs:
        print(f"recux-rescore: no run folders (with results.json) in {', '.join(args.runs)}", file=sys.stderr)
        return 2
    refused = 0
    for run in runs:
        try:
            dest = rescore(run, args.metrics, args.out)
        except RecuxError as e:
            refused += 1
            print(f"recux-rescore: {run}: {e}", file=sys.stderr)
            continue
        print(f"rescored {run} -> {dest}")
    return 3 if refused else 0


if __name__ == "__main__":
    sys.exit(main())
