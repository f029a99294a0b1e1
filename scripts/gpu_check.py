"""GPU check: the same experiments on CPU and on GPU, a few epochs each, same seeds; and the two ranking paths.

Prints seconds per epoch on each device, the speed-up, and the largest difference between the CPU and GPU test
metrics (they should agree within a tolerance: float32 maths differs in the last bits, and early stopping is off
here so both devices train the same number of epochs). Then the ranking check: score blocks computed on the
device ranked by the device top-k (recux.ranking_torch) and by the host kernel (block copied to the host), once
with continuous scores and once with scores rounded to quarters (ties across the k-th place everywhere): the
top-k items and scores must be identical, and the table gives both paths' times. CI never runs this; run it
where a GPU is present:

    python scripts/gpu_check.py                      # lightgcn and sasrec, 3 epochs, seed 0
    python scripts/gpu_check.py --models bpr --epochs 5 --tol 0.02
    python scripts/gpu_check.py --against cpu        # dry run of the comparison on a machine without a GPU
    python scripts/gpu_check.py --models none --ranking-users 200000 --ranking-items 100000   # ranking only
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS = {  # model -> overrides selecting it with its protocol
    "lightgcn": ["model=lightgcn"],
    "sasrec": ["experiment=sasrec"],
    "bert4rec": ["experiment=bert4rec"],
    "bpr": ["model=bpr"],
    "multvae": ["model=multvae"],
}


def run_once(overrides: list[str], out: Path) -> dict:
    from hydra import compose, initialize_config_module

    from recux.pipeline import run_experiment

    with initialize_config_module(config_module="recux.conf", version_base="1.3"):
        cfg = compose("config", overrides=overrides)
    t0 = time.perf_counter()
    res = run_experiment(cfg, out, overrides)
    res["wall"] = time.perf_counter() - t0
    return res


def ranking_check(device: str, n_users: int, n_items: int, dim: int = 64, k: int = 20, batch_size: int = 1024,
                  ties: bool = False, seed: int = 0) -> dict:
    """Rank ``n_users`` over ``n_items`` from dot-product scores computed on ``device`` by both paths; returns
    both results and times (seconds, excluding a warm-up batch)."""
    import numpy as np
    import scipy.sparse as sp
    import torch

    from recux.ranking import rank_topk

    gen = torch.Generator().manual_seed(seed)
    user_emb = torch.randn(n_users, dim, generator=gen).to(device)
    item_emb = torch.randn(n_items, dim, generator=gen).to(device)
    seen = sp.random(n_users, n_items, density=min(0.5, 20 / n_items), random_state=seed, format="csr")

    def score(batch):
        s = user_emb[torch.as_tensor(batch, device=device)] @ item_emb.T
        return torch.round(s * 4) / 4 if ties else s

    def timed(device_topk: bool):
        rank_topk(score, np.arange(min(n_users, 8)), k, exclude=seen, device_topk=device_topk)  # warm-up
        sync()
        t0 = time.perf_counter()
        out = rank_topk(score, np.arange(n_users), k, exclude=seen, batch_size=batch_size, device_topk=device_topk)
        sync()
        return out, time.perf_counter() - t0

    def sync():
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    (dev_items, dev_scores), t_dev = timed(True)
    (host_items, host_scores), t_host = timed(False)
    return {"device": device, "ties": ties, "users": n_users, "items": n_items, "k": k,
            "device_seconds": t_dev, "host_seconds": t_host, "differing_rows": differing_rows(
                (dev_items, dev_scores), (host_items, host_scores))}


def differing_rows(a: tuple, b: tuple) -> int:
    """Rows whose top-k items or scores differ between two rankings (0 = identical)."""
    import numpy as np

    return int(np.count_nonzero((a[0] != b[0]).any(axis=1) | (a[1] != b[1]).any(axis=1)))


def print_ranking(rows: list[dict]) -> bool:
    print(f"\n{'ranking':<12} {'users x items':>16} {'k':>3} {'device top-k s':>15} {'host top-k s':>13} "
          f"{'speed-up':>8}  result")
    ok = True
    for r in rows:
        same = r["differing_rows"] == 0
        ok &= same
        print(f"{r['device'] + (' ties' if r['ties'] else ''):<12} {r['users']:>8} x {r['items']:<6} {r['k']:>3} "
              f"{r['device_seconds']:>15.3f} {r['host_seconds']:>13.3f} "
              f"{r['host_seconds'] / r['device_seconds']:>7.1f}x  "
              + ("identical" if same else f"DIFFERS in {r['differing_rows']} rows"))
    return ok


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="lightgcn,sasrec")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tol", type=float, default=0.01, help="max |CPU - GPU| for each test metric at k=10")
    ap.add_argument("--dataset", default="ml-100k")
    ap.add_argument("--against", default="gpu", help="trainer config compared with trainer=cpu (gpu, ddp, cpu)")
    ap.add_argument("--ranking-users", type=int, default=100_000, help="users of the ranking check (0: skip it)")
    ap.add_argument("--ranking-items", type=int, default=50_000)
    args = ap.parse_args(argv)
    import torch

    if args.against != "cpu" and not torch.cuda.is_available():
        print("no CUDA device visible: nothing to compare (this script needs a GPU)")
        return 2
    if torch.cuda.is_available():
        print(f"GPU: {torch.cuda.get_device_name(0)}; torch {torch.__version__}")
    ok = True
    rows = []
    models = [] if args.models == "none" else args.models.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        for model in models:
            common = [*EXPERIMENTS.get(model, [f"model={model}"]), f"dataset={args.dataset}", f"seed={args.seed}",
                      f"model.max_epochs={args.epochs}", f"model.patience={args.epochs + 1}", "logger=none",
                      "trainer.enable_progress_bar=false"]
            res = {}
            for i, device in enumerate(("cpu", args.against)):
                res[i] = run_once([*common, f"trainer={device}"], Path(tmp) / f"{model}-{i}-{device}")
            cpu, gpu = res[0], res[1]
            diffs = {k: abs(cpu["metrics"][k] - gpu["metrics"][k]) for k in cpu["metrics"] if k.endswith("@10")}
            worst = max(diffs, key=diffs.get)
            same = diffs[worst] <= args.tol
            ok &= same
            spe_c, spe_g = cpu["timing"]["seconds_per_epoch"], gpu["timing"]["seconds_per_epoch"]
            rows.append((model, spe_c, spe_g, spe_c / spe_g if spe_g else float("nan"),
                         cpu["metrics"]["ndcg@10"], gpu["metrics"]["ndcg@10"], worst, diffs[worst], same))
    b = args.against
    if args.ranking_users:
        device = "cpu" if args.against == "cpu" else "cuda"
        ok &= print_ranking([ranking_check(device, args.ranking_users, args.ranking_items, ties=ties, seed=args.seed)
                             for ties in (False, True)])
    if not rows:
        return 0 if ok else 1
    print(f"\n{'model':<10} {'cpu s/ep':>9} {b + ' s/ep':>9} {'speed-up':>8} {'ndcg@10 cpu':>12} {b:>8}  "
          "largest |diff| at k=10")
    for m, c, g, sp, nc, ng, w, d, same in rows:
        print(f"{m:<10} {c:>9.4f} {g:>9.4f} {sp:>7.1f}x {nc:>12.4f} {ng:>8.4f}  {w}={d:.4g} "
              f"{'ok' if same else 'DIFFERS'}")
    return 0 if ok else 1


if __name__ == "__main__":
    os.environ.setdefault("WANDB_MODE", "offline")
    sys.exit(main())
