"""Offline-to-online check: estimate each treatment's CTR from logs of the control policy (off-policy estimation)
and compare with the truth and with the simulated A/B test of the same treatment.

The world is the ab_test task's (recux.plugins.tasks.ab_test: data, oracle, every arm's slates). The control is
logged epsilon-greedy (recux.simulation.logged: at each position the control's item w.p. 1 - epsilon, else a
uniform candidate; propensities recorded), --log-sessions sessions per user. Estimators, position by position
(the position-based click model makes each position's click depend on its item alone), with
w = 1[logged item = treatment's item at k] / p_k(logged item):
  IPW   V = mean_{u,s} (1/K) sum_k click_{usk} w_{usk}       (per-user means, se over users)
  SNIPW V = (1/K) sum_k [sum_{u,s} click w / sum_{u,s} w]      (self-normalised per position)
The truth is the treatment's expected CTR per impression, mean_u (1/K) sum_k e_k a(u, t_uk); the A/B arm's CTR is
the mean per-user CTR of the users the test assigned to it. The A/B runs with task.return_gain=0 (returns do not
depend on satisfaction) so that it measures the same estimand: with satisfaction-driven churn a user's last session
is selected for being unsatisfying, and the per-user CTR over sessions falls below the per-session CTR. These minimal estimators stand in for the OPE
plugins of issue 11 section 1 (branch ope), which the lead can swap in.

    OMP_NUM_THREADS=1 python scripts/ab_offline_online.py [--dataset synthetic] [--oracle auto]
        [--treatments ease,itemknn,bpr] [--epsilon 0.3] [--log-sessions 400]
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time

import numpy as np
from hydra import compose, initialize_config_module

from recux import registry, stages
from recux.cli.run import CONFIG_MODULE
from recux.results import RunArtifacts
from recux.simulation.experiment import run_ab
from recux.simulation.logged import ImpressionLog, candidates, log_control


def ipw(log: ImpressionLog, treatment: np.ndarray) -> tuple[float, float]:
    """IPW estimate of the treatment's CTR per impression and its standard error over users."""
    w = (log.items == treatment[:, None, :]) / log.propensity
    per_user = (log.clicks * w).mean(axis=(1, 2))
    return float(per_user.mean()), float(per_user.std(ddof=1) / math.sqrt(per_user.size))


def snipw(log: ImpressionLog, treatment: np.ndarray) -> float:
    w = (log.items == treatment[:, None, :]) / log.propensity
    num, den = (log.clicks * w).sum(axis=(0, 1)), w.sum(axis=(0, 1))
    return float(np.mean(np.where(den > 0, num / np.maximum(den, 1e-300), 0.0)))


def true_ctr(attract: np.ndarray, users: np.ndarray, slates: np.ndarray, exam: np.ndarray) -> float:
    a = attract[users[:, None], slates].astype(np.float64)
    return float((a * exam[None, : slates.shape[1]]).mean())


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="synthetic")
    ap.add_argument("--oracle", default="auto")
    ap.add_argument("--users", type=int, default=2000, help="synthetic datasets: dataset.n_users")
    ap.add_argument("--treatments", default="ease,itemknn,bpr")
    ap.add_argument("--epsilon", type=float, default=0.3)
    ap.add_argument("--log-sessions", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    t_start = time.perf_counter()
    with initialize_config_module(config_module=CONFIG_MODULE, version_base="1.3"):  # as the recux command
        cfg = compose("config", overrides=[f"dataset={args.dataset}", "logger=none", "task=ab_test", f"task.oracle={args.oracle}",
                                           f"task.treatments=[{args.treatments}]", f"seed={args.seed}",
                                           "task.return_gain=0", "trainer.enable_progress_bar=false",
                                           *([f"dataset.n_users={args.users}"] if args.dataset == "synthetic"
                                             else [])])
    spec = stages.RunSpec.from_config(cfg)
    task = registry.build("task", "ab_test", spec.task.params)
    with tempfile.TemporaryDirectory() as tmp:
        art = RunArtifacts(tmp)
        world = task.build_world(spec, art)
        art.discard()
    attract, users, exam = world.oracle.attract, world.users, task.click.exam
    data = world.data
    exclude = (data.train_csr + data.valid_csr).tocsr() if spec.exclude_valid else data.train_csr
    t0 = time.perf_counter()
    log = log_control(world.slates["control"], candidates(exclude, users, data.dataset.n_items), users, attract,
                      task.click, args.epsilon, args.log_sessions, world.seed)
    log_seconds = time.perf_counter() - t0
    ab = run_ab(world.slates, users, attract, task.click, world.seed, task.ab)
    print(f"{args.dataset}, oracle {world.oracle.source}: {len(users)} users, {log.items.size} logged impressions "
          f"(epsilon {args.epsilon}, {args.log_sessions} sessions/user, {log_seconds:.2f} s); A/B arms of "
          f"{ab.sizes[0]} users")
    print("| policy | true CTR | A/B arm CTR [95% CI] | IPW ± se | SNIPW | IPW error vs truth | IPW error vs A/B |")
    print("|---|---|---|---|---|---|---|")
    rows = []
    for name in world.slates:
        slates = world.slates[name]
        truth = true_ctr(attract, users, slates, exam)
        est, se = ipw(log, slates)
        sn = snipw(log, slates)
        arm = ab.arm_means[name]["ctr"]
        lo, hi = ab.arm_ci[name]["ctr"]
        ci = f"[{lo:.4f}, {hi:.4f}]"
        rows.append({"policy": name, "truth": truth, "ab": arm, "ipw": est, "ipw_se": se, "snipw": sn})
        print(f"| {name} | {truth:.4f} | {arm:.4f} {ci} | {est:.4f} ± {se:.4f} | {sn:.4f} | "
              f"{(est - truth) / truth:+.1%} | {(est - arm) / arm:+.1%} |")
    print(f"total {time.perf_counter() - t_start:.1f} s")
    return rows


if __name__ == "__main__":
    main()
