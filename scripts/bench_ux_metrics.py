"""Time the user-experience metric suite against the six top-k accuracy metrics on the same synthetic input
(issue 10, "Speed": the UX suite may cost at most 3x the accuracy metrics), and print both and the ratio.

The input: N users x top-K lists (default 100k x 20) over a catalogue of M items (default 50k) whose
popularity is skewed, half of each list drawn by popularity and half uniformly (lists can come out short:
-1 padding); a training history CSR of ~50 items per user (also the popularity source), a held-out ground
truth of ~10 items per user (a third from the user's own list), an item_features frame with a "genres"
list column (20 categories, 1-3 per item) and 64-d item embeddings.

Both timings are of ``recux.evaluation.evaluate_topk`` end to end (input checks, metrics, per-user table,
standard errors): the accuracy run with precision, recall, ndcg, mrr, map, hit; the UX run with the metric
list of --metrics (a metric-set YAML, default conf/metrics/ux.yaml) or of --names, given train, history,
item_features and, when evaluate_topk accepts it, item_embeddings. Metric names that are not registered are
left out and listed. One warm-up run of each first (numba compilation), then the median of --repeats runs (the two alternate).
Each metric's own compute time (median, in suite order) and the rest of evaluate_topk are printed too, and
the phases of that rest timed one by one on the same input (phase_seconds). Beside each wall-clock median:
the minimum and the process CPU time (all threads), which a machine shared with other jobs inflates less;
the numba thread count and the load average frame the numbers.

    .venv/bin/python scripts/bench_ux_metrics.py
    .venv/bin/python scripts/bench_ux_metrics.py --names pop_lift,aplt,personalisation
    .venv/bin/python scripts/bench_ux_metrics.py --users 2000 --items 500 --repeats 1
"""

from __future__ import annotations

import argparse
import inspect
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import scipy.sparse as sp

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_YAML = ROOT / "conf" / "metrics" / "ux.yaml"
# Used when neither --names nor the YAML file is there: the default set plus the names agreed for issue 10.
AGREED_UX = (
    "ild", "semantic_ild", "unexpectedness", "unexpectedness_pop", "serendipity", "miscalibration",
    "pop_lift", "aplt", "ltc", "exposure_entropy", "personalisation",
    "exposure_share_head", "exposure_share_mid", "exposure_share_tail",
    "exposure_relevance_head", "exposure_relevance_mid", "exposure_relevance_tail",
)
N_CATEGORIES = 20
DIM = 64


def _distinct_rows(cands: np.ndarray, k: int) -> np.ndarray:
    """The first k distinct items of each row of candidates, in order; -1 where a row has fewer."""
    order = np.argsort(cands, axis=1, kind="stable")  # equal items keep their order: the first is kept
    s = np.take_along_axis(cands, order, axis=1)
    dup_sorted = np.zeros(s.shape, dtype=bool)
    dup_sorted[:, 1:] = s[:, 1:] == s[:, :-1]
    dup = np.empty_like(dup_sorted)
    np.put_along_axis(dup, order, dup_sorted, axis=1)
    pos = np.argsort(dup, axis=1, kind="stable")[:, :k]  # kept positions first, in list order
    out = np.take_along_axis(cands, pos, axis=1).astype(np.int32)
    out[np.arange(k)[None, :] >= (~dup).sum(axis=1)[:, None]] = -1
    return out


def _csr(rows: np.ndarray, items: np.ndarray, n_users: int, n_items: int) -> sp.csr_matrix:
    keys = np.unique(rows.astype(np.int64) * n_items + items)
    data = np.ones(len(keys), dtype=np.float32)
    return sp.csr_matrix((data, (keys // n_items, keys % n_items)), shape=(n_users, n_items))


def _genres(rng: np.random.Generator, n_items: int) -> pl.DataFrame:
    names = np.array([f"genre_{c:02d}" for c in range(N_CATEGORIES)])
    picks = np.argsort(rng.random((n_items, N_CATEGORIES)), axis=1)[:, :3]
    sizes = rng.integers(1, 4, n_items)
    lists = [names[p[:m]].tolist() for p, m in zip(picks, sizes, strict=True)]
    return pl.DataFrame({"genres": lists}, schema={"genres": pl.List(pl.String)})


def make_data(n_users: int, n_items: int, k: int = 20, history_len: int = 50, gt_len: int = 10,
              seed: int = 0) -> dict[str, Any]:
    """The synthetic input (see the module docstring): topk, ground_truth, train (= history rows),
    item_features, item_embeddings."""
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, n_items + 1) ** 0.8
    p = weights[rng.permutation(n_items)]
    p /= p.sum()
    n_cand = 3 * k
    cands = np.where(rng.random((n_users, n_cand)) < 0.5, rng.choice(n_items, (n_users, n_cand), p=p),
                     rng.integers(0, n_items, (n_users, n_cand)))
    topk = _distinct_rows(cands, k)
    h_sizes = 1 + rng.poisson(history_len - 1, n_users)
    h_users = np.repeat(np.arange(n_users), h_sizes)
    train = _csr(h_users, rng.choice(n_items, len(h_users), p=p), n_users, n_items)
    g_sizes = 1 + rng.poisson(gt_len - 1, n_users)
    g_users = np.repeat(np.arange(n_users), g_sizes)
    g_items = rng.choice(n_items, len(g_users), p=p)
    from_list = topk[g_users, rng.integers(0, k, len(g_users))]
    use = (rng.random(len(g_users)) < 1 / 3) & (from_list >= 0)
    g_items[use] = from_list[use]
    return {
        "topk": topk, "ground_truth": _csr(g_users, g_items, n_users, n_items), "train": train,
        "item_features": _genres(rng, n_items),
        "item_embeddings": rng.standard_normal((n_items, DIM)).astype(np.float32),
    }


def metric_specs(args: argparse.Namespace) -> tuple[list[Any], tuple[int, ...] | None, str]:
    """(metric specs, ks of the YAML or None, where they came from)."""
    if args.names:
        return [n.strip() for n in args.names.split(",") if n.strip()], None, "--names"
    path = Path(args.metrics)
    if path.exists():
        from omegaconf import OmegaConf

        cfg = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
        ks = tuple(int(k) for k in cfg["ks"]) if cfg.get("ks") else None
        return list(cfg.get("plugins") or []), ks, str(path)
    from recux.evaluation import DEFAULT_METRICS

    return [*DEFAULT_METRICS, *AGREED_UX], None, f"{path} not found: the default set plus the agreed UX names"


def registered(specs: list[Any]) -> tuple[list[Any], list[str]]:
    from recux import registry

    known = set(registry.names("metric"))
    name = lambda s: s if isinstance(s, str) else s["name"]  # noqa: E731
    return [s for s in specs if name(s) in known], [name(s) for s in specs if name(s) not in known]


class _Timed:
    """Wraps built metrics so that each one's compute time is recorded (in suite order: a metric that fills a
    cache shared with later ones, e.g. exposure counts, carries that cost); wall and process CPU seconds."""

    def __init__(self, specs: list[Any]) -> None:
        from recux.evaluation import build_metrics
        from recux.metric import Metric

        self.times: dict[str, list[float]] = {}
        self.totals: list[float] = []
        self.cpu_totals: list[float] = []
        sink = self.times

        class Probe(Metric):
            def __init__(self, name: str, inner: Metric) -> None:
                self.name, self.inner = name, inner

            def compute(self, ctx):
                t0 = time.perf_counter()
                res = self.inner.compute(ctx)
                sink.setdefault(self.name, []).append(time.perf_counter() - t0)
                return res

        self.metrics = [(info, Probe(info.name, m)) for info, m in build_metrics(specs)]

    def once(self, fn) -> Any:
        c0, t0 = time.process_time(), time.perf_counter()
        report = fn(self.metrics)
        self.totals.append(time.perf_counter() - t0)
        self.cpu_totals.append(time.process_time() - c0)
        return report

    def medians(self) -> tuple[float, dict[str, float]]:
        """(median total seconds, median compute seconds per metric) of the runs since the warm-up."""
        return statistics.median(self.totals), {n: statistics.median(t) for n, t in self.times.items()}

    def summary(self) -> str:
        return (f"min {min(self.totals):.6f}, cpu median {statistics.median(self.cpu_totals):.6f}, "
                f"cpu min {min(self.cpu_totals):.6f}")


def time_both(acc: _Timed, acc_fn, ux: _Timed, ux_fn, repeats: int) -> Any:
    """One warm-up run of each (numba compilation, caches), then ``repeats`` alternating runs (a change of
    machine load during the benchmark hits both alike). Returns the last UX report."""
    for timed, fn in ((acc, acc_fn), (ux, ux_fn)):
        fn(timed.metrics)
        timed.times.clear()
    for _ in range(repeats):
        acc.once(acc_fn)
        report = ux.once(ux_fn)
    return report


def _best(fn, repeats: int) -> tuple[float, float]:
    """(median, min) wall seconds of ``repeats`` calls after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), min(times)


def phase_times(data: dict[str, Any], ux_report: Any, n_items: int, repeats: int) -> dict[str, tuple[float, float]]:
    """The parts of evaluate_topk around the metrics, each timed alone on the benchmark's input: input checks
    (top-k, ground truth, repeated items), training popularity, history rows, embedding normalisation, and the
    per-user table with its means and standard errors (the UX report's columns)."""
    from recux import evaluation as ev

    topk, truth, train = data["topk"], data["ground_truth"], data["train"]
    per_user = {c: ux_report.per_user[c].to_numpy() for c in ux_report.per_user.columns if c != "user"}

    def checks():
        t = ev._checked_topk(topk)
        _, gt = ev._ground_truth_arrays(truth, len(t))
        ev._check_no_repeats(t, None)
        ev._check_codes(t, gt, n_items)

    def table():
        import polars as pl

        frame = pl.DataFrame({"user": np.arange(len(topk)), **per_user})
        [ev._nanmean(v) for v in per_user.values()]
        ev.summarise(frame)

    return {
        "input checks": _best(checks, repeats),
        "train popularity": _best(lambda: ev.train_popularity(train, n_items), repeats),
        "history rows": _best(lambda: ev._history_rows(train, len(topk)), repeats),
        "embedding normalisation": _best(lambda: ev._metric_embeddings(
            data["item_embeddings"], [(_NeedsEmbeddings, None)], n_items), repeats),
        f"per-user table, means, stderr ({len(per_user)} columns)": _best(table, repeats),
    }


class _NeedsEmbeddings:
    name, meta = "embedding metric", {"needs": ("item_embeddings",)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--users", type=int, default=100_000)
    ap.add_argument("--items", type=int, default=50_000)
    ap.add_argument("--k", type=int, default=20, help="top-k width")
    ap.add_argument("--metrics", default=str(DEFAULT_YAML), help="metric-set YAML (plugins, ks) of the UX run")
    ap.add_argument("--names", help="comma list of metric names instead of --metrics")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if args.repeats < 1 or args.users < 2 or args.items < args.k:
        ap.error("--repeats must be >= 1, --users >= 2 and --items >= --k")

    from recux.evaluation import ACCURACY_METRICS, evaluate_topk

    specs, yaml_ks, source = metric_specs(args)
    specs, skipped = registered(specs)
    ks = tuple(k for k in (yaml_ks or (5, 10, 20)) if k <= args.k) or (args.k,)
    data = make_data(args.users, args.items, args.k, seed=args.seed)
    topk, truth, train = data["topk"], data["ground_truth"], data["train"]
    extra: dict[str, Any] = {"train": train, "history": train, "item_features": data["item_features"]}
    if "item_embeddings" in inspect.signature(evaluate_topk).parameters:
        extra["item_embeddings"] = data["item_embeddings"]
    print(f"input: {args.users} users x top-{args.k} ({(topk >= 0).sum() / len(topk):.1f} real items/list), "
          f"{args.items} items, {N_CATEGORIES} categories, {DIM}-d embeddings; history "
          f"{train.nnz / args.users:.1f} items/user, ground truth {truth.nnz / args.users:.1f} items/user")
    print(f"ks: {','.join(map(str, ks))}")
    print(f"ux metrics from: {source}")
    print(f"ux metrics: {','.join(s if isinstance(s, str) else s['name'] for s in specs)}")
    print(f"ux inputs: {','.join(extra)}")
    print(f"skipped (not registered): {','.join(skipped) or '-'}")
    import numba

    print(f"threads: numba {numba.get_num_threads()} of {os.cpu_count()} CPUs; load average "
          f"{os.getloadavg()[0]:.2f} at the start")
    if not specs:
        print("no registered UX metric to time", file=sys.stderr)
        return 2
    def run(**kw):
        return lambda built: evaluate_topk(topk, truth, metrics=built, ks=ks, n_items=args.items, **kw)

    acc, ux = _Timed(list(ACCURACY_METRICS)), _Timed(specs)
    report = time_both(acc, run(), ux, run(**extra), args.repeats)
    (acc_s, acc_parts), (ux_s, ux_parts) = acc.medians(), ux.medians()
    print(f"accuracy_seconds: {acc_s:.6f} (median of {args.repeats}: {','.join(ACCURACY_METRICS)}; {acc.summary()})")
    print(f"ux_seconds: {ux_s:.6f} (median of {args.repeats}; {ux.summary()})")
    print(f"ratio_ux_over_accuracy: {ux_s / acc_s:.4f}")
    print(f"ratio of the minima: {min(ux.totals) / min(acc.totals):.4f}; of the CPU medians: "
          f"{statistics.median(ux.cpu_totals) / statistics.median(acc.cpu_totals):.4f}")
    print(f"accuracy compute_seconds (the six in one kernel pass): {sum(acc_parts.values()):.6f}, "
          f"evaluate_topk overhead: {acc_s - sum(acc_parts.values()):.6f}")
    print(f"ux evaluate_topk overhead (input checks, popularity, history, per-user table, standard errors): "
          f"{ux_s - sum(ux_parts.values()):.6f}")
    for name, (med, low) in phase_times(data, report, args.items, args.repeats).items():
        print(f"phase_seconds {name}: {med:.6f} (min {low:.6f})")
    for name, secs in ux_parts.items():
        print(f"compute_seconds {name}: {secs:.6f}")
    for name, secs in ux.times.items():
        print(f"compute_seconds_min {name}: {min(secs):.6f}")
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")
    for name, value in report.means.items():
        if name.endswith(f"@{max(ks)}"):
            print(f"value {name}: {value:.6g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
