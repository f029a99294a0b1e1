"""Validate the simulated A/B test against what its statistics promise (recux.simulation.validation has the
world and the definitions), and print the figures:

  1. A/A false-positive rate of the Welch test (plain and CUPED) at alpha over --aa-reps repetitions: 5% ± 2%;
  2. peeking: the false-positive rate of naive t-tests at --looks interim looks vs the mSPRT's (always valid);
  3. a planted effect of known size: empirical power (rejection rate) vs the computed power (normal
     approximation, se from a pilot), within 5 points;
  4. CUPED: mean estimate vs the plain estimate and the true effect, and the mean CI width ratio.

    OMP_NUM_THREADS=1 python scripts/ab_validation.py [--aa-reps 400] [--power-reps 400] [--users 2000]
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
from scipy import stats

from recux.simulation import abstats
from recux.simulation.experiment import ABSettings
from recux.simulation.validation import (
    aa_repetitions,
    expected_ctr,
    make_world,
    pilot_se,
    planted_repetitions,
)


def binomial_band(rate: float, reps: int, level: float = 0.99) -> tuple[float, float]:
    lo, hi = stats.binom.interval(level, reps, rate)
    return lo / reps, hi / reps


def aa_section(world, args, settings) -> dict:
    t0 = time.perf_counter()
    aa = aa_repetitions(world, args.aa_reps, settings, seed=args.seed, sample=args.users)
    fpr = {k: float(np.mean(aa["p"] < settings.alpha) if k == "plain" else
                    np.mean(aa["p_cuped"] < settings.alpha) if k == "cuped" else np.mean(aa[k]))
           for k in ("plain", "cuped", "peeking", "msprt")}
    band = binomial_band(settings.alpha, args.aa_reps)
    print(f"A/A, {args.aa_reps} repetitions, {args.users} users each, alpha {settings.alpha} "
          f"({time.perf_counter() - t0:.1f} s):")
    print(f"  false-positive rate, Welch t (fixed horizon): {fpr['plain']:.3f}  (target 0.05 ± 0.02; 99% binomial "
          f"band of a correct test {band[0]:.3f}-{band[1]:.3f})")
    print(f"  false-positive rate, CUPED:                   {fpr['cuped']:.3f}")
    print(f"  peeking, naive t-test at any of {settings.n_looks} looks:  {fpr['peeking']:.3f}")
    print(f"  mSPRT (always valid) at any look:             {fpr['msprt']:.3f}")
    ks = stats.kstest(aa["p"], "uniform").pvalue
    print(f"  p-values uniform under the null: Kolmogorov-Smirnov p = {ks:.3f}")
    return fpr


def power_section(world, args, settings) -> dict:
    t0 = time.perf_counter()
    ate = float((expected_ctr(world, world.treatment) - expected_ctr(world, world.control)).mean())
    n_c = (args.users + 1) // 2
    se = pilot_se(world, n_c, args.users - n_c)
    computed = abstats.power(ate, se, settings.alpha)
    res = planted_repetitions(world, args.power_reps, settings, seed=args.seed + 1, sample=args.users)
    empirical = float(res["reject"].mean())
    mc = math.sqrt(computed * (1 - computed) / args.power_reps)
    print(f"Planted effect, {args.power_reps} repetitions ({time.perf_counter() - t0:.1f} s):")
    print(f"  true effect on per-user CTR {ate:.5f} (control CTR {expected_ctr(world, world.control).mean():.4f}); "
          f"MDE at 80% power {abstats.mde(se, settings.alpha, 0.8):.5f}")
    print(f"  power: empirical {empirical:.3f} vs computed {computed:.3f} (difference {100 * (empirical - computed):+.1f}"
          f" points; Monte-Carlo sd {100 * mc:.1f} points; target within 5)")
    print(f"  CUPED: empirical power {res['reject_cuped'].mean():.3f}")
    d, dc = res["diff"], res["diff_cuped"]
    print(f"  estimate: plain {d.mean():.5f} ± {d.std(ddof=1) / math.sqrt(d.size):.5f}, CUPED {dc.mean():.5f} ± "
          f"{dc.std(ddof=1) / math.sqrt(dc.size):.5f} (truth {ate:.5f}); sd of the estimates plain {d.std(ddof=1):.5f}"
          f", CUPED {dc.std(ddof=1):.5f}")
    ratio = float(res["width_cuped"].mean() / res["width"].mean())
    print(f"  CUPED CI width / plain CI width: {ratio:.3f} (mean over repetitions)")
    return {"ate": ate, "computed": computed, "empirical": empirical, "width_ratio": ratio,
            "plain_mean": float(d.mean()), "cuped_mean": float(dc.mean())}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--aa-reps", type=int, default=400)
    ap.add_argument("--power-reps", type=int, default=400)
    ap.add_argument("--users", type=int, default=2000, help="users per repetition")
    ap.add_argument("--population", type=int, default=20000, help="the world's users, sampled per repetition")
    ap.add_argument("--looks", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    world = make_world(n_users=args.population, seed=args.seed)
    settings = ABSettings(metrics=("ctr",), n_looks=args.looks)
    print(f"world: {args.population} users ({args.users} drawn per repetition), 200 items, target CTR 0.05, click model {world.click}")
    out = {"aa": aa_section(world, args, settings), "power": power_section(world, args, settings)}
    print(f"total {time.perf_counter() - t0:.1f} s")
    return out


if __name__ == "__main__":
    main()
