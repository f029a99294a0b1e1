"""Validate recux's off-policy estimators on the Open Bandit Dataset against the published figures.

OBP's protocol (st-tech/zr-obp examples/obd/evaluate_off_policy_estimators.py, whose README publishes the
random -> BTS table below): the behaviour policy's log (campaign "all", small sample, 10,000 rounds) is
resampled with replacement ``n_runs`` times (run b: ``RandomState(b).choice(n, n)``); on each resample a
per-position logistic regression (C=100, max_iter=10000, lbfgs, random_state=12345; 3-fold cross-fitting with
KFold(shuffle=True, random_state=12345)) gives q_hat; the evaluation policy's action distribution is
Bernoulli TS with the ZOZOTOWN prior (1,000,000 simulations, seed 12345) or uniform random (1/80); the ground
truth is the evaluation policy's own on-policy value (the mean click in its log). Switch-DR and DRos are tuned
per run with SLOPE over lambda in {10, 50, 100, 500, 1000, 5000, 10000, inf}.

  .venv/bin/python scripts/ope_validation.py [--n-runs 30] [--tol 1e-4] [--path /path/to/obd] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from recux.bandit import BanditLogs
from recux.ope.evaluate import make_estimators
from recux.ope.protocol import bootstrap_runs, policy_action_dist
from recux.ope.reward_model import LogisticRewardModel
from recux.plugins.datasets.obd import OpenBanditDataset

# examples/obd/README.md of st-tech/zr-obp (random -> BTS, campaign all, 30 runs, logistic regression).
PUBLISHED = {"dm": (0.156876, 0.109898), "ipw": (0.311082, 0.311170), "snipw": (0.311795, 0.334736),
             "dr": (0.292464, 0.315485), "sndr": (0.302407, 0.328434), "switch-dr": (0.258410, 0.160598),
             "dr-os": (0.159520, 0.109660)}


def run(logs: BanditLogs, behaviour: str, evaluation: str, n_runs: int, model: LogisticRewardModel,
        n_sim: int) -> tuple[dict[str, list[float]], dict[str, float]]:
    data = logs[behaviour]
    t0 = time.perf_counter()
    dist = policy_action_dist(evaluation, logs, data.n_actions, data.len_list, n_sim=n_sim, random_state=12345)
    action_dist_s = time.perf_counter() - t0
    res = bootstrap_runs(data, dist, logs[evaluation].on_policy_value, n_runs, model, make_estimators)
    return res.errors, {"action_dist_s": action_dist_s, **res.times}


def table(errors: dict[str, list[float]], published: dict[str, tuple[float, float]] | None) -> str:
    lines = [f"{'estimator':<10} {'mean':>9} {'std':>9}" + ("   published (mean, std)   diff mean" if published else "")]
    for name, vals in errors.items():
        m, s = float(np.mean(vals)), float(np.std(vals, ddof=1))  # pandas describe(): ddof=1
        line = f"{name:<10} {m:9.6f} {s:9.6f}"
        if published:
            pm, ps = published[name]
            line += f"   ({pm:.6f}, {ps:.6f})   {m - pm:+.6f}"
        lines.append(line)
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n-runs", type=int, default=30)
    ap.add_argument("--tol", type=float, default=1e-10, help="LogisticRegression tol (sklearn default 1e-4: not converged)")
    ap.add_argument("--solver", default="newton", help="recux newton, or a LogisticRegression solver (OBP: lbfgs)")
    ap.add_argument("--n-sim", type=int, default=1_000_000)
    ap.add_argument("--path", default=None, help="a local obd folder (else the verified cache/download)")
    ap.add_argument("--reverse", action="store_true", help="also BTS -> random")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    start = time.perf_counter()
    logs = OpenBanditDataset(campaign="all", path=args.path).load()
    model = LogisticRewardModel(tol=args.tol, solver=args.solver)
    out = {}
    pairs = [("random", "bts")] + ([("bts", "random")] if args.reverse else [])
    for behaviour, evaluation in pairs:
        errors, times = run(logs, behaviour, evaluation, args.n_runs, model, args.n_sim)
        print(f"== {behaviour} -> {evaluation}, campaign all, {args.n_runs} runs, logistic regression {args.solver} tol={args.tol}")
        print(table(errors, PUBLISHED if (behaviour, evaluation) == ("random", "bts") else None))
        print("times: " + ", ".join(f"{k} {v:.1f}" for k, v in times.items()))
        out[f"{behaviour}->{evaluation}"] = {"errors": errors, "times": times}
    total = time.perf_counter() - start
    print(f"total wall time {total:.1f} s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({**out, "total_s": total, "tol": args.tol, "solver": args.solver, "n_runs": args.n_runs}, f, indent=1)


if __name__ == "__main__":
    main()
