"""Time the six top-k accuracy metrics (P, R, NDCG, MRR, MAP, HitRate at one k): recux's one-pass kernel
against ranx's numba metric functions on the same synthetic input, with peak memory.

Each (case, library) runs in a fresh subprocess so that its peak RSS is its own. Times are after JIT
warm-up, best of 3. ranx's input conversion (flat arrays -> numba typed lists of 2-D arrays, the form
ranx's Run/Qrels convert to) is timed separately and not included in its metric time. "RSS at start" is
the process memory once the input is built; "peak RSS" is the peak while the metrics (and ranx's conversion)
run, data generation excluded (Linux VmHWM reset through /proc/self/clear_refs).

    .venv/bin/python scripts/bench_metrics.py            # both cases
    .venv/bin/python scripts/bench_metrics.py --cases 100k
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np

CASES = {"100k": (100_000, 100), "1m": (1_000_000, 20)}  # users, top-k width (= the k measured)
N_ITEMS = 50_021  # prime: every stride in 1..N_ITEMS-1 visits distinct items
AVG_RELEVANT = 10
REPEATS = 3


def make_data(n_users: int, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Top-k lists with distinct items per row, and a sorted CSR truth of ~AVG_RELEVANT items per user,
    about a third of them drawn from the user's own list so that hits occur at realistic rates."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, N_ITEMS, n_users, dtype=np.int64)
    stride = rng.integers(1, N_ITEMS, n_users, dtype=np.int64)
    topk = ((base[:, None] + np.arange(k, dtype=np.int64)[None, :] * stride[:, None]) % N_ITEMS).astype(np.int32)
    sizes = 1 + rng.poisson(AVG_RELEVANT - 1, n_users)
    users = np.repeat(np.arange(n_users, dtype=np.int64), sizes)
    from_list = rng.random(len(users)) < 1 / 3
    items = rng.integers(0, N_ITEMS, len(users), dtype=np.int64)
    pos = rng.integers(0, k, len(users))
    items[from_list] = topk[users[from_list], pos[from_list]]
    keys = np.unique(users * N_ITEMS + items)
    gt_users, gt_items = keys // N_ITEMS, keys % N_ITEMS
    indptr = np.zeros(n_users + 1, dtype=np.int64)
    np.cumsum(np.bincount(gt_users, minlength=n_users), out=indptr[1:])
    return topk, indptr, gt_items.astype(np.int32)


def peak_rss_mb() -> float:
    """Peak RSS since the last reset_peak_rss() (Linux VmHWM), else since process start."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def reset_peak_rss() -> None:
    """Start a new peak-RSS window so that data generation does not count (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass


def current_rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * resource.getpagesize() / 2**20


def bench_recux(topk, indptr, indices, k) -> dict:
    from recux.kernels.accuracy import accuracy_metrics

    small = make_data(200, k, seed=1)
    accuracy_metrics(*small, [k])  # JIT warm-up (or cache load)
    rss_before = current_rss_mb()
    reset_peak_rss()
    times = []
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        res = accuracy_metrics(topk, indptr, indices, [k])
        times.append(time.perf_counter() - t0)
    means = {m: float(res[f"{m}@{k}"].mean()) for m in ("precision", "recall", "ndcg", "mrr", "map", "hit")}
    return {"seconds": min(times), "convert_seconds": 0.0, "rss_before_mb": rss_before, "means": means}


def _ranx_lists():
    import numba as nb

    @nb.njit(cache=True)
    def to_lists(indptr, ids, vals):
        out = nb.typed.List()
        for u in range(indptr.shape[0] - 1):
            s, e = indptr[u], indptr[u + 1]
            a = np.empty((e - s, 2), dtype=np.float64)
            for t in range(e - s):
                a[t, 0] = ids[s + t]
                a[t, 1] = vals[s + t]
            out.append(a)
        return out

    return to_lists


def bench_ranx(topk, indptr, indices, k) -> dict:
    from ranx.metrics import average_precision, hit_rate, ndcg, precision, recall, reciprocal_rank

    to_lists = _ranx_lists()
    fns = {"precision": precision, "recall": recall, "ndcg": ndcg, "mrr": reciprocal_rank,
           "map": average_precision, "hit": hit_rate}

    def convert(tk, ptr, ind):
        n, width = tk.shape
        run_ptr = np.arange(n + 1, dtype=np.int64) * width
        run_scores = np.tile(np.arange(width, 0, -1, dtype=np.float64), n)  # best first
        qrels = to_lists(ptr, ind.astype(np.float64), np.ones(len(ind)))
        run = to_lists(run_ptr, tk.ravel().astype(np.float64), run_scores)
        return qrels, run

    q_small, r_small = convert(*make_data(200, k, seed=1))
    for f in fns.values():  # JIT warm-up (or cache load)
        f(q_small, r_small, k)
    reset_peak_rss()
    t0 = time.perf_counter()
    qrels, run = convert(topk, indptr, indices)
    convert_s = time.perf_counter() - t0
    rss_before = current_rss_mb()
    times = []
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        res = {m: f(qrels, run, k) for m, f in fns.items()}
        times.append(time.perf_counter() - t0)
    means = {m: float(v.mean()) for m, v in res.items()}
    return {"seconds": min(times), "convert_seconds": convert_s, "rss_before_mb": rss_before, "means": means}


def bench_validator() -> float:
    """Seconds per Validator call at ML-100K size (943 users x 1682 items, ~6% training density, k=10)."""
    import scipy.sparse as sp

    from recux.evaluation import Validator

    rng = np.random.default_rng(0)
    n_users, n_items = 943, 1682
    train = sp.random(n_users, n_items, density=0.06, format="csr", random_state=1, dtype=np.float32)
    valid = sp.random(n_users, n_items, density=0.006, format="csr", random_state=2, dtype=np.float32)
    user_f = rng.standard_normal((n_users, 64)).astype(np.float32)
    item_f = rng.standard_normal((n_items, 64)).astype(np.float32)
    validator = Validator(np.arange(n_users), train, valid, k=10)

    def score_fn(users):  # a matrix-factorisation model's scoring
        return user_f[users] @ item_f.T

    validator(score_fn)  # warm-up
    times = []
    for _ in range(10):
        t0 = time.perf_counter()
        validator(score_fn)
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def worker(case: str, lib: str) -> None:
    n_users, k = CASES[case]
    data = make_data(n_users, k)
    res = (bench_recux if lib == "recux" else bench_ranx)(*data, k)
    res["peak_rss_mb"] = peak_rss_mb()
    print(json.dumps(res))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", default=",".join(CASES), help="comma list of " + ", ".join(CASES))
    ap.add_argument("--libs", default="recux,ranx")
    ap.add_argument("--no-validator", action="store_true", help="skip the Validator timing")
    ap.add_argument("--worker", nargs=2, metavar=("CASE", "LIB"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(*args.worker)
        return
    import numba

    print(f"numba threads: {numba.get_num_threads()}; {AVG_RELEVANT} relevant items/user on average, "
          f"{N_ITEMS} items; best of {REPEATS} after warm-up\n")
    header = (f"{'case':<20}{'library':<8}{'metrics s':>10}{'vs ranx':>9}{'convert s':>11}"
              f"{'RSS at start':>14}{'peak RSS':>10}")
    print(header)
    print("-" * len(header))
    for case in args.cases.split(","):
        results = {}
        for lib in args.libs.split(","):
            proc = subprocess.run([sys.executable, __file__, "--worker", case, lib],
                                  capture_output=True, text=True, check=False)
            if proc.returncode:
                print(f"{case} {lib} failed:\n{proc.stderr}", file=sys.stderr)
                continue
            results[lib] = json.loads(proc.stdout.strip().splitlines()[-1])
        n_users, k = CASES[case]
        for lib, r in results.items():
            ratio = r["seconds"] / results["ranx"]["seconds"] if "ranx" in results else float("nan")
            print(f"{f'{n_users:,} x top-{k}':<20}{lib:<8}{r['seconds']:>10.3f}{ratio:>9.2f}"
                  f"{r['convert_seconds']:>11.2f}{r['rss_before_mb']:>12.0f}MB{r['peak_rss_mb']:>8.0f}MB")
        if len(results) == 2:
            diff = max(abs(results["recux"]["means"][m] - results["ranx"]["means"][m])
                       for m in results["recux"]["means"])
            print(f"{'':<20}max |mean difference| recux vs ranx: {diff:.2e}")
    if not args.no_validator:
        print(f"\nValidator at ML-100K size (943 x 1682, score_fn = 64-d dot products, k=10): "
              f"{bench_validator() * 1000:.1f} ms per call (median of 10, after warm-up)")


if __name__ == "__main__":
    main()
