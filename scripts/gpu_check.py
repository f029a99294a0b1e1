"""GPU check: the same experiments on CPU and on GPU, a few epochs each, same seeds.

Prints seconds per epoch on each device, the speed-up, and the largest difference between the CPU and GPU test
metrics (they should agree within a tolerance: float32 maths differs in the last bits, and early stopping is off
here so both devices train the same number of epochs). CI never runs this; run it where a GPU is present:

    python scripts/gpu_check.py                      # lightgcn and sasrec, 3 epochs, seed 0
    python scripts/gpu_check.py --models bpr --epochs 5 --tol 0.02
    python scripts/gpu_check.py --against cpu        # dry run of the comparison on a machine without a GPU
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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="lightgcn,sasrec")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tol", type=float, default=0.01, help="max |CPU - GPU| for each test metric at k=10")
    ap.add_argument("--dataset", default="ml-100k")
    ap.add_argument("--against", default="gpu", help="trainer config compared with trainer=cpu (gpu, ddp, cpu)")
    args = ap.parse_args(argv)
    import torch

    if args.against != "cpu" and not torch.cuda.is_available():
        print("no CUDA device visible: nothing to compare (this script needs a GPU)")
        return 2
    if torch.cuda.is_available():
        print(f"GPU: {torch.cuda.get_device_name(0)}; torch {torch.__version__}")
    ok = True
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.models.split(","):
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
    print(f"\n{'model':<10} {'cpu s/ep':>9} {b + ' s/ep':>9} {'speed-up':>8} {'ndcg@10 cpu':>12} {b:>8}  "
          "largest |diff| at k=10")
    for m, c, g, sp, nc, ng, w, d, same in rows:
        print(f"{m:<10} {c:>9.4f} {g:>9.4f} {sp:>7.1f}x {nc:>12.4f} {ng:>8.4f}  {w}={d:.4g} "
              f"{'ok' if same else 'DIFFERS'}")
    return 0 if ok else 1


if __name__ == "__main__":
    os.environ.setdefault("WANDB_MODE", "offline")
    sys.exit(main())
