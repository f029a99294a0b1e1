"""Training speed and validation quality of the model zoo on ML-100K (per-user random 80/10/10).

One function per model, ``bench_<name>(data) -> dict(seconds_per_epoch, steps_per_second, eval_seconds,
valid_ndcg)`` (extra keys are printed too); ``main`` prints a table. Timings: a short run of ``data.epochs``
epochs with early stopping off (median training seconds per epoch after the first, steps per second,
median validation seconds); valid_ndcg: the model's defaults trained to early stopping (``--full``), else
the timing run's best. Falls back to a same-sized synthetic world when ML-100K cannot be loaded.
The machine's cores are shared: run it when quiet and best-of-N (``--repeat``).

    .venv/bin/python scripts/bench_models.py lightgcn --epochs 20 --full
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from bench_training import load_split, make_ctx  # noqa: E402

from recux import registry  # noqa: E402
from recux.data import Dataset, Split  # noqa: E402


@dataclass
class BenchData:
    """What every bench function gets: the loaded data and the run's settings."""

    ds: Dataset
    split: Split
    name: str
    seed: int = 0
    epochs: int = 20  # epochs of the timing run
    full: bool = False  # also train the defaults to early stopping for valid_ndcg
    threads: int | None = None  # num_threads for models that take it


def lightning_timing(model_name: str, data: BenchData, **params: Any) -> dict[str, float]:
    """Time a Lightning model: a 1-epoch warm-up fit (imports, numba caches), then ``data.epochs`` epochs
    without early stopping; with ``data.full`` also a default fit to early stopping for valid_ndcg."""
    if data.threads:
        params.setdefault("num_threads", data.threads)
    registry.build("model", model_name, {**params, "max_epochs": 1}).fit(make_ctx(data.ds, data.split, data.seed,
                                                                                   False))
    model = registry.build("model", model_name, {**params, "max_epochs": data.epochs, "patience": 10**6})
    ctx = make_ctx(data.ds, data.split, data.seed, False)
    model.fit(ctx)
    hist = ctx.history[1:] if len(ctx.history) > 1 else ctx.history
    epoch_s = np.array([h["epoch_seconds"] for h in hist])
    steps = np.array([h["steps"] for h in hist])
    out = {
        "seconds_per_epoch": float(np.median(epoch_s)),
        "min_seconds_per_epoch": float(epoch_s.min()),
        "steps_per_second": float(steps.sum() / epoch_s.sum()),
        "eval_seconds": float(np.median([h["val_seconds"] for h in hist if "val_seconds" in h])),
        "valid_ndcg": float(max(h["val/ndcg@10"] for h in ctx.history if "val/ndcg@10" in h)),
    }
    if data.full:
        full = {k: v for k, v in params.items() if k == "num_threads"}
        model = registry.build("model", model_name, full)
        ctx = make_ctx(data.ds, data.split, data.seed, False)
        t0 = time.perf_counter()
        model.fit(ctx)
        out.update(valid_ndcg=float(model.summary.best_score), best_epoch=model.summary.best_epoch,
                   fit_seconds=time.perf_counter() - t0)
    return out


def bench_bpr(data: BenchData) -> dict[str, float]:
    """BPR-MF at RecBole's reference size (batch 2048, dim 64, one negative per positive, 80k pairs)."""
    return lightning_timing("bpr", data, batch_size=2048, embedding_dim=64)


def bench_itemknn(data: BenchData) -> dict[str, float]:
    """ItemKNN (cosine, k neighbours kept per item): fit = one sparse item-item product."""
    return _closed_form_timing("itemknn", data)


def bench_pop(data: BenchData) -> dict[str, float]:
    """MostPopular: fit = counting; the timing is mostly evaluation."""
    return _closed_form_timing("pop", data)


def bench_lightgcn(data: BenchData) -> dict[str, float]:
    """LightGCN at RecBole's reference size (batch 2048, dim 64, 3 layers; RecBole 1.2.1: 1.23 s/epoch on
    this 2-core machine). Each step propagates over the whole graph (6 sparse products with the backward)."""
    return lightning_timing("lightgcn", data, batch_size=2048, embedding_dim=64, n_layers=3)


def _closed_form_timing(model_name: str, data: BenchData, **params: Any) -> dict[str, float]:
    """Fit a closed-form model with its defaults (a warm-up fit first): fit seconds, validation seconds
    and validation NDCG@10 of the kept model; per-sweep seconds where the model records sweeps.
    The warm-up fit loads libraries and numba caches."""
    warm = registry.build("model", model_name, params)
    warm_ctx = make_ctx(data.ds, data.split, data.seed, False)
    warm.fit(warm_ctx)
    warm_ctx.validate(warm.score)  # numba caches of the ranking kernels load here, not in the timing
    model = registry.build("model", model_name, params)
    ctx = make_ctx(data.ds, data.split, data.seed, False)
    t0 = time.perf_counter()
    model.fit(ctx)
    fit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    valid = ctx.validate(model.score)["ndcg@10"]
    eval_s = time.perf_counter() - t0
    sweeps = [h["epoch_seconds"] for h in ctx.history if "epoch_seconds" in h]
    return {
        "seconds_per_epoch": float(np.median(sweeps)) if sweeps else fit_s,  # EASE: its one solve
        "steps_per_second": float("nan"),
        "eval_seconds": eval_s,
        "valid_ndcg": float(valid),
        "fit_seconds": fit_s,
        **({"sweeps": len(sweeps)} if sweeps else {}),
    }


def bench_ease(data: BenchData) -> dict[str, float]:
    """EASE: one dense float64 solve over the catalogue (seconds_per_epoch = fit seconds)."""
    return _closed_form_timing("ease", data)


def bench_ials(data: BenchData) -> dict[str, float]:
    """iALS (implicit's CPU ALS): seconds per ALS sweep, total fit seconds with early stopping."""
    return _closed_form_timing("ials", data, **({"num_threads": data.threads} if data.threads else {}))


def bench_multvae(data: BenchData) -> dict[str, float]:
    """Mult-VAE with its defaults ([600] hidden, 200 latent, batches of 128 user rows)."""
    return lightning_timing("multvae", data)


def _loo(data: BenchData) -> BenchData:
    """The same data split leave-last-one-out by time (split=loo), which sequential models require."""
    from dataclasses import replace

    from recux.splitting import LeaveLastOut

    return replace(data, split=LeaveLastOut().split(data.ds.interactions, seed=data.seed),
                   name=f"{data.name} loo")


def bench_sasrec(data: BenchData) -> dict[str, float]:
    """SASRec with its defaults (max_len 50, hidden 64, 2 layers, batches of 128 windows, full-softmax
    loss) on leave-last-one-out; RecBole's SASRec (one sample per prefix) took ~141 s/epoch here."""
    return lightning_timing("sasrec", _loo(data))


def bench_bert4rec(data: BenchData) -> dict[str, float]:
    """BERT4Rec with its defaults (max_len 50, hidden 64, 2 layers, 4 heads, mask prob 0.4) on
    leave-last-one-out."""
    return lightning_timing("bert4rec", _loo(data))


# RecBole 1.2.1 with its default configs on this 2-core machine (issue 3): seconds per training epoch.
RECBOLE_SECONDS_PER_EPOCH = {"bpr": 0.21, "lightgcn": 1.23, "sasrec": 141.0}

BENCHES = {name[len("bench_"):]: fn for name, fn in sorted(globals().items())
           if name.startswith("bench_") and callable(fn)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="*", help=f"models to bench (default: all of {', '.join(BENCHES)})")
    ap.add_argument("--epochs", type=int, default=20, help="epochs of the timing run")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None, help="num_threads for models that take it")
    ap.add_argument("--full", action="store_true", help="train the defaults to early stopping for valid_ndcg")
    ap.add_argument("--repeat", type=int, default=1, help="repeat the timing and keep the fastest")
    args = ap.parse_args()
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    unknown = [m for m in args.models if m not in BENCHES]
    if unknown:
        ap.error(f"no bench function for {unknown}; known: {sorted(BENCHES)}")
    ds, split, name = load_split(args.seed)
    print(f"data: {name}: {split.n_users} users, {split.n_items} items, train {len(split.train)}")
    import torch

    print(f"torch threads {args.threads or torch.get_num_threads()}; timing {args.epochs} epochs, "
          f"best of {args.repeat}")
    header = (f"{'model':10s} {'s/epoch':>9s} {'min s/ep':>9s} {'steps/s':>8s} {'eval s':>8s} {'valid ndcg':>10s}"
              f" {'RecBole s/ep':>12s} {'speed-up':>8s}")
    rows = []
    for model in args.models or list(BENCHES):
        runs = []
        for r in range(args.repeat):
            data = BenchData(ds, split, name, args.seed, args.epochs, args.full and r == 0, args.threads)
            runs.append(BENCHES[model](data))
        best = min(runs, key=lambda x: x["seconds_per_epoch"])
        res = {**best, "valid_ndcg": runs[0]["valid_ndcg"]}
        extra = {k: v for k, v in res.items() if k not in ("seconds_per_epoch", "min_seconds_per_epoch",
                                                           "steps_per_second", "eval_seconds", "valid_ndcg")}
        ref = RECBOLE_SECONDS_PER_EPOCH.get(model, np.nan)
        rows.append(f"{model:10s} {res['seconds_per_epoch']:9.4f} {res.get('min_seconds_per_epoch', np.nan):9.4f} "
                    f"{res['steps_per_second']:8.1f} {res['eval_seconds']:8.4f} {res['valid_ndcg']:10.4f}"
                    f" {ref:12.2f} {ref / res['seconds_per_epoch']:8.1f}"
                    + (f"  {extra}" if extra else ""))
        print(rows[-1], flush=True)
    print(header)
    print("\n".join(rows))


if __name__ == "__main__":
    main()
