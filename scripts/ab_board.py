"""Write the simulated A/B leaderboard (leaderboards/<name>.md + .manifest.json) from finished ``task=ab_test``
runs, e.g.

    python scripts/ab_board.py outputs/.../ab_ease outputs/.../ab_ials outputs/.../ab_synthetic --out leaderboards

One section per run (its simulated world: dataset, oracle, click model; see docs/ab_test.md): each arm's mean
click-through, conversion, satisfaction and retention per user, and each treatment's CTR lift over the control
with its 95% CI and Welch p-value, plain and CUPED, the CUPED CI width relative to plain, and the p-values
Holm-corrected across the run's treatments (recux.significance.holm). Only the runs given are read; the
manifest lists them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from recux.leaderboard.task_board import read_task_runs, write_task_board
from recux.significance import holm

METRICS = ("ctr", "conversion", "satisfaction", "retention")


def _p(p: float) -> str:
    return f"{p:.3g}" if p >= 1e-4 else f"{p:.1e}"


def _section(rec: dict, folder: Path) -> list[str]:
    ab = rec["ab_test"]
    treatments = [a for a in ab["arms"] if a != "control"]
    comp = {t: ab["comparisons"][t]["ctr"] for t in treatments}
    p_holm = dict(zip(treatments, holm([comp[t]["plain"]["p"] for t in treatments]), strict=True))
    pc_holm = dict(zip(treatments, holm([comp[t]["cuped"]["p"] for t in treatments]), strict=True))
    lines = [f"## {rec['dataset']['name']} — oracle: {ab['oracle']['source']}", "",
             f"Run `{rec['run_id']}` (`{folder}`), data `{rec['data_hash']}`; target CTR "
             f"{ab['oracle']['target_ctr']}, {sum(ab['sizes'])} users in {len(ab['arms'])} arms "
             f"({', '.join(map(str, ab['sizes']))}).", "",
             "| arm | users | CTR | conversion | satisfaction | retention | CTR lift [95% CI] | p (Holm) | "
             "CUPED lift [95% CI] | p (Holm) | CUPED CI width |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for arm, n in zip(ab["arms"], ab["sizes"], strict=True):
        means = " | ".join(f"{ab['arm_means'][arm][m]:.4f}" for m in METRICS)
        if arm == "control":
            lines.append(f"| control | {n} | {means} | — | — | — | — | — |")
            continue
        pl, cu = comp[arm]["plain"], comp[arm]["cuped"]
        lines.append(
            f"| {arm} | {n} | {means} | {pl['relative']:+.1%} [{pl['relative_ci_low']:+.1%}, "
            f"{pl['relative_ci_high']:+.1%}] | {_p(pl['p'])} ({_p(p_holm[arm])}) | {cu['relative']:+.1%} "
            f"[{cu['relative_ci_low']:+.1%}, {cu['relative_ci_high']:+.1%}] | {_p(cu['p'])} ({_p(pc_holm[arm])}) | "
            f"{cu['ci_width_ratio']:.3f} |")
    return lines + [""]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", help="task=ab_test run folders")
    p.add_argument("--out", default="outputs/leaderboards")
    p.add_argument("--name", default="ab", help="file stem (default ab)")
    args = p.parse_args(argv)
    recs = read_task_runs(args.runs, "ab_test", "ab_board")
    if recs is None:
        return 2
    md, manifest = write_task_board(
        recs, args.out, args.name, "simulated A/B tests",
        f"python scripts/ab_board.py {' '.join(args.runs)} --out {args.out}",
        "Per-user means; lifts relative to the control with Welch tests over users (the unit of randomisation), "
        "CUPED with a simulated pre-period; p-values Holm-corrected across each run's treatments. The simulated "
        "world favours models of the oracle's family: compare rankings across oracles (docs/ab_test.md).", _section)
    print(f"wrote {md} and {manifest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
