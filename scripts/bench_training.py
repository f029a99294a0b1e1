"""Training speed and validation quality of the built-in models on ML-100K (per-user random 80/10/10).

Prints BPR seconds per epoch (training only), steps per second, validation seconds per evaluation, the
same loop in plain torch (to show the Lightning overhead), and validation NDCG@10 of pop / itemknn / bpr
with their default settings (``--full`` trains BPR to early stopping). Falls back to a synthetic world
of the same size (943 users, 1682 items, ~80k training pairs) when ML-100K cannot be loaded.

    .venv/bin/python scripts/bench_training.py --epochs 10 --full
"""

from __future__ import annotations

import argparse
import cProfile
import io
import logging
import pstats
import time
from typing import Any

import numpy as np

from recux import registry
from recux.data import Dataset, Interactions, Split
from recux.evaluation import Validator
from recux.model import FitContext


def load_split(seed: int) -> tuple[Dataset, Split, str]:
    try:
        from recux.preprocess import Preprocess
        from recux.splitting import RandomSplit

        ds = Preprocess().apply(registry.build("dataset", "ml-100k").load())
        return ds, RandomSplit((0.8, 0.1, 0.1)).split(ds.interactions, seed=seed), "ml-100k"
    except Exception as exc:  # offline and uncached: same-sized synthetic world
        reason = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
        print(f"ML-100K unavailable ({reason}); using a synthetic world")
        return (*synthetic_world(seed), "synthetic 943x1682")


def synthetic_world(seed: int, n_users: int = 943, n_items: int = 1682, n_pairs: int = 100_000):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n_users, 8)) @ rng.normal(size=(8, n_items)) / 2 + rng.normal(size=n_items)
    per_user = np.maximum(20, rng.zipf(1.8, n_users) * 10)
    per_user = np.minimum(per_user * n_pairs // per_user.sum(), n_items // 2)
    order = np.argsort(-(logits + rng.gumbel(size=logits.shape)), axis=1)
    users = np.repeat(np.arange(n_users), per_user)
    items = np.concatenate([order[u, :n] for u, n in enumerate(per_user)])
    inter = Interactions(users, items, n_users, n_items)
    ds = Dataset("synthetic", inter, np.arange(n_users), np.arange(n_items))
    from recux.splitting import RandomSplit

    return ds, RandomSplit((0.8, 0.1, 0.1)).split(inter, seed=seed)


def make_ctx(ds: Dataset, split: Split, seed: int, progress: bool) -> FitContext:
    train, valid = split.train.csr(), split.valid.csr()
    users = np.flatnonzero(np.diff(valid.indptr))
    return FitContext(
        dataset=ds, split=split, finetune=registry.build("finetune", "scratch"), seed=seed,
        trainer={"accelerator": "cpu", "devices": 1, "enable_progress_bar": progress},
        validate=Validator(users, train, valid, k=10),
    )


def raw_torch_epochs(split: Split, model: Any, epochs: int) -> float:
    """Median seconds per epoch of the same BPR step in a bare torch loop (no Lightning)."""
    from recux.plugins.models._bpr_net import BPRNet
    from recux.training import PairBatches

    params = model.hparams
    net = BPRNet(split.n_users, split.n_items, params["embedding_dim"], params["reg"], params["init_std"],
                 params["sparse"], model.optimizer_spec())
    opt = net.configure_optimizers()
    batches = PairBatches(split.train.user, split.train.item, split.n_items, params["batch_size"])
    times = []
    for _ in range(epochs):
        t0 = time.perf_counter()
        for i, batch in enumerate(batches):
            loss = net.training_step(batch, i)
            opt.zero_grad()
            loss.backward()
            opt.step()
        times.append(time.perf_counter() - t0)
    return float(np.median(times[1:] if len(times) > 1 else times))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=10, help="BPR epochs for the timing run")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: the model's setting)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--full", action="store_true", help="also train BPR with its defaults to early stopping")
    ap.add_argument("--profile", action="store_true", help="cProfile the timing run (top functions)")
    ap.add_argument("--progress", action="store_true", help="show the Lightning progress bar")
    args = ap.parse_args()
    logging.getLogger("pytorch_lightning").setLevel(logging.WARNING)
    import torch

    ds, split, name = load_split(args.seed)
    print(f"data: {name}: {split.n_users} users, {split.n_items} items, train {len(split.train)}, "
          f"valid {len(split.valid)}")

    for model_name in ("pop", "itemknn"):
        model = registry.build("model", model_name)
        ctx = make_ctx(ds, split, args.seed, args.progress)
        t0 = time.perf_counter()
        model.fit(ctx)
        fit_s = time.perf_counter() - t0
        print(f"{model_name:8s} fit {fit_s:6.3f}s  valid ndcg@10 {ctx.validate(model.score)['ndcg@10']:.4f}")

    overrides = {"max_epochs": args.epochs, "patience": 10**6}
    if args.threads:
        overrides["num_threads"] = args.threads
    # warm-up: the first fit in a process pays the torch/Lightning imports and numba cache loads
    registry.build("model", "bpr", {**overrides, "max_epochs": 1}).fit(make_ctx(ds, split, args.seed, False))
    model = registry.build("model", "bpr", overrides)
    params = model.hparams
    ctx = make_ctx(ds, split, args.seed, args.progress)
    prof = cProfile.Profile() if args.profile else None
    if prof:
        prof.enable()
    t0 = time.perf_counter()
    model.fit(ctx)
    fit_s = time.perf_counter() - t0
    if prof:
        prof.disable()
        out = io.StringIO()
        pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(20)
        print(out.getvalue())
    hist = ctx.history[1:] if len(ctx.history) > 1 else ctx.history  # epoch 0 includes warm-up
    epoch_s = np.array([h["epoch_seconds"] for h in hist])
    steps = np.array([h["steps"] for h in hist])
    val_s = np.array([h["val_seconds"] for h in hist if "val_seconds" in h])
    print(f"bpr timing (batch {params['batch_size']}, dim {params['embedding_dim']}, torch threads "
          f"{torch.get_num_threads()}): {len(ctx.history)} epochs, fit {fit_s:.2f}s")
    print(f"  seconds/epoch (training): median {np.median(epoch_s):.4f}  min {epoch_s.min():.4f}  "
          f"first {ctx.history[0]['epoch_seconds']:.4f}")
    print(f"  steps/second: {steps.sum() / epoch_s.sum():.1f}  ({int(steps[0])} steps/epoch)")
    print(f"  validation seconds/evaluation: median {np.median(val_s):.4f}")
    print(f"  wall seconds/epoch, all in (fit time incl. trainer setup, validation, checkpoints / epochs): "
          f"{fit_s / len(ctx.history):.4f}")
    raw = raw_torch_epochs(split, model, min(args.epochs, 8))
    print(f"  same step in a bare torch loop: {raw:.4f} s/epoch -> Lightning overhead "
          f"{(np.median(epoch_s) - raw) / steps[0] * 1e3:.2f} ms/step")

    if args.full:
        model = registry.build("model", "bpr", {"num_threads": args.threads} if args.threads else {})
        ctx = make_ctx(ds, split, args.seed, args.progress)
        t0 = time.perf_counter()
        model.fit(ctx)
        s = model.summary
        print(f"bpr defaults: best valid ndcg@10 {s.best_score:.4f} at epoch {s.best_epoch} "
              f"({s.epochs_run} epochs, {time.perf_counter() - t0:.1f}s)")


if __name__ == "__main__":
    main()
