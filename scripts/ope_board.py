"""Write the Open Bandit Dataset OPE leaderboard (leaderboards/obd.md + obd.manifest.json) from finished
``task=ope`` runs, e.g.

    python scripts/ope_board.py outputs/.../random_to_bts outputs/.../bts_to_random --out leaderboards

One table per (behaviour -> evaluation policy, campaign): each estimator's estimate with its bootstrap CI and
relative error on the full log, and the relative error mean ± std over the run's bootstrap resamples
(task.n_runs), next to the figures the dataset's authors published for random -> BTS on campaign "all" (OBP's
examples/obd README: 30 runs). Only the runs given are read; the manifest lists them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from recux.leaderboard.task_board import read_task_runs, write_task_board

# Saito et al., Open Bandit Dataset and Pipeline (obp examples/obd/README.md): random -> BTS, campaign all,
# 30 bootstrap runs, relative estimation error mean (std).
PUBLISHED = {"dm": (0.156876, 0.109898), "ipw": (0.311082, 0.311170), "snipw": (0.311795, 0.334736),
             "dr": (0.292464, 0.315485), "sndr": (0.302407, 0.328434), "switch-dr": (0.258410, 0.160598),
             "dr-os": (0.159520, 0.109660)}


def _section(rec: dict, folder: Path) -> list[str]:
    m, ci, ope = rec["metrics"], rec.get("metrics_ci") or {}, rec["ope"]
    beh, ev = ope["behavior_policy"], ope["evaluation_policy"]
    campaign = rec["dataset"].get("campaign") or rec["config"]["dataset"].get("campaign")
    reference = beh == "random" and ev == "bts" and campaign == "all"
    lines = [f"## {beh} -> {ev}, campaign {campaign}", "",
             f"On-policy value of {ev} (its own log's mean click): {m['on_policy_value']:.6f}. Run `{rec['run_id']}` "
             f"(`{folder}`), data `{rec['data_hash']}`.", "",
             "| estimator | estimate | 95% CI | relative error | runs: mean ± std |"
             + (" published mean ± std |" if reference else ""),
             "|---|---:|---:|---:|---:|" + ("---:|" if reference else "")]
    for name in ope["estimators"]:
        lo, hi = ci.get(f"{name}/estimate", [float("nan"), float("nan")])
        cell = f"{m[f'{name}/relative_error_mean']:.4f} ± {m[f'{name}/relative_error_std']:.4f}" \
            if f"{name}/relative_error_mean" in m else "—"
        row = (f"| {name} | {m[f'{name}/estimate']:.6f} | [{lo:.6f}, {hi:.6f}] | "
               f"{m[f'{name}/relative_error']:.4f} | {cell} |")
        if reference:
            row += f" {PUBLISHED[name][0]:.4f} ± {PUBLISHED[name][1]:.4f} |" if name in PUBLISHED else " — |"
        lines.append(row)
    return lines + [""]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", help="task=ope run folders")
    p.add_argument("--out", default="outputs/leaderboards")
    args = p.parse_args(argv)
    recs = read_task_runs(args.runs, "ope", "ope_board")
    if recs is None:
        return 2
    md, manifest = write_task_board(
        recs, args.out, "obd", "Open Bandit Dataset (off-policy estimation)",
        f"python scripts/ope_board.py {' '.join(args.runs)} --out {args.out}",
        "Relative error = |estimate − on-policy value| / on-policy value. CIs: bootstrap over rounds. Settings "
        "(reward model, tuning, simulations) are in each run's results.json.", _section)
    print(f"wrote {md} and {manifest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
