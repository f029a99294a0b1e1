"""Simulated impressions per second of the user simulator's session kernel (recux.simulation.kernels): fixed
top-K slates, every user's sessions until churn, on a random world.

    OMP_NUM_THREADS=1 python scripts/bench_simulator.py [--users 100000] [--items 1000] [--sessions 5] [--repeat 3]
"""

from __future__ import annotations

import argparse
import time

import numba
import numpy as np

from recux.simulation.oracle import Oracle
from recux.simulation.sessions import ClickModel, simulate


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=100_000)
    ap.add_argument("--items", type=int, default=1000)
    ap.add_argument("--sessions", type=int, default=5)
    ap.add_argument("--slate", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    click = ClickModel(slate_size=args.slate, n_sessions=args.sessions, return_base=0.9, return_gain=1.0)
    scores = rng.standard_normal((args.users, 16)).astype(np.float32) @ rng.standard_normal(
        (16, args.items)).astype(np.float32)
    oracle = Oracle.calibrated(scores, 0.05, float(click.exam.mean()), heterogeneity=0.5)
    slates = np.argsort(-oracle.attract, axis=1)[:, : args.slate].astype(np.int32)
    users = np.arange(args.users)
    simulate(slates[:10], users[:10], oracle.attract, click, seed=0)  # compile
    best = None
    for r in range(args.repeat):
        t0 = time.perf_counter()
        out = simulate(slates, users, oracle.attract, click, seed=r)
        seconds = time.perf_counter() - t0
        rate = out.impressions.sum() / seconds
        best = rate if best is None else max(best, rate)
    print(f"{args.users} users x up to {args.sessions} sessions x {args.slate} positions: "
          f"{int(out.impressions.sum())} impressions in {seconds:.3f} s; best of {args.repeat}: "
          f"{best / 1e6:.1f} M impressions/s ({numba.get_num_threads()} numba threads)")
    return {"impressions_per_second": best}


if __name__ == "__main__":
    main()
