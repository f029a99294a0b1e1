"""LM-SASRec check: frozen / LoRA / full (and optionally AdaLoRA) for a few epochs on ML-100K
leave-last-one-out, on CPU and on a GPU; prints seconds per epoch and per step, trainable parameters and
test NDCG@10 for each strategy and device (early stopping off: every run trains --epochs).

    python scripts/gpu_check_lm.py                                  # frozen,lora,full; 3 epochs; cpu + cuda
    python scripts/gpu_check_lm.py --devices cuda --epochs 5        # GPU only
    python scripts/gpu_check_lm.py --against cpu --dry-run          # no GPU: tiny settings, CPU against itself

It builds the FitContext itself (encoder, item texts "title (year): genres", frozen embeddings) so it does not
depend on the pipeline's encoder wiring. ``--encoder`` points at another Hugging Face folder or name (default:
the packaged all-MiniLM-L6-v2). CPU budget: a MiniLM LoRA/full step on 256 texts is ~2.3 s on 2 cores, so keep
--epochs small on CPU (--cpu-epochs).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

import numpy as np

DRY = dict(max_len=20, hidden_size=32, inner_size=64, n_layers=1, batch_size=128, encode_per_step=32)


def item_texts(dataset: Any) -> list[str]:
    """ML-100K: "title (year): genre, genre"; a dataset without titles: "item <raw id>"."""
    feats = dataset.item_features
    if feats is None or "title" not in feats.columns:
        return [f"item {i}" for i in dataset.item_ids]
    out = []
    for row in feats.iter_rows(named=True):
        year = f" ({row['release_year']})" if row.get("release_year") else ""
        genres = ", ".join(row.get("genres") or [])
        out.append(f"{row['title']}{year}: {genres}" if genres else f"{row['title']}{year}")
    return out


def prepare(dataset: str, seed: int) -> Any:
    from hydra import compose, initialize_config_module

    from recux.stages import RunSpec, prepare_data

    with initialize_config_module(config_module="recux.conf", version_base="1.3"):
        cfg = compose("config", overrides=["experiment=sasrec", f"dataset={dataset}", f"seed={seed}"])
    spec = RunSpec.from_config(cfg)
    return spec, prepare_data(spec)


def test_metrics(model: Any, data: Any) -> dict[str, float]:
    """Full-catalogue test metrics at 10 as the runner ranks them: condition on train + valid, mask both."""
    from recux.data import Interactions
    from recux.evaluation import Validator

    a, b = data.split.train, data.split.valid
    model.condition_on(Interactions(user=np.r_[a.user, b.user], item=np.r_[a.item, b.item], n_users=a.n_users,
                                    n_items=a.n_items, timestamp=np.r_[a.timestamp, b.timestamp]))
    seen = data.train_csr + data.valid_csr
    ndcg = Validator(data.test_users, seen, data.test_csr, k=10)(model.score)
    return {"ndcg@10": ndcg["ndcg@10"]}


def run_one(strategy: str, device: str, epochs: int, data: Any, texts: list[str], encoder_src: str | None,
            seed: int, dry: bool, threads: int | None = None, patience: int | None = None) -> dict[str, Any]:
    from recux import registry
    from recux.evaluation import Validator
    from recux.model import FitContext
    from recux.plugins.encoders.hf import HFEncoder
    from recux.plugins.models.lm_sasrec import LMSASRec

    encoder = HFEncoder(model=encoder_src, device=device, max_length=32)
    t0 = time.perf_counter()
    cached = encoder.embed(texts)
    embed_s = time.perf_counter() - t0
    model = LMSASRec(**(DRY if dry else {}), max_epochs=epochs, patience=patience or epochs + 1,
                     num_threads=threads if device == "cpu" else None)
    validator = Validator(data.valid_users, data.train_csr, data.valid_csr, k=10)
    accel = "gpu" if device.startswith("cuda") else "cpu"
    ctx = FitContext(dataset=data.dataset, split=data.split, finetune=registry.build("finetune", strategy, {}),
                     seed=seed, validate=validator, encoder=encoder, item_texts=texts,
                     item_embeddings=lambda: cached,
                     trainer={"accelerator": accel, "devices": 1, "enable_progress_bar": False})
    t0 = time.perf_counter()
    model.fit(ctx)
    fit_s = time.perf_counter() - t0
    cost = model.describe()
    return {"strategy": strategy, "device": device, "fit_s": fit_s, "embed_s": embed_s, **cost,
            **test_metrics(model, data)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--strategies", default="frozen,lora,full")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--cpu-epochs", type=int, default=None, help="epochs on CPU (default: --epochs)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dataset", default="ml-100k")
    ap.add_argument("--encoder", default=None, help="HF name or folder (default: packaged all-MiniLM-L6-v2)")
    ap.add_argument("--devices", default=None, help="comma list of cpu, cuda (default: cpu,cuda)")
    ap.add_argument("--against", default=None, help="cpu: compare CPU with itself (no GPU needed)")
    ap.add_argument("--patience", type=int, default=None, help="early stopping (default: off, every epoch runs)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads on CPU (default: all)")
    ap.add_argument("--dry-run", action="store_true", help="tiny model settings, for a quick test of the script")
    args = ap.parse_args(argv)
    import torch

    devices = (args.devices or ("cpu," + (args.against or "cuda"))).split(",")
    if any(d.startswith("cuda") for d in devices) and not torch.cuda.is_available():
        print("no CUDA device visible: run with --devices cpu or --against cpu (this check wants a GPU)")
        return 2
    if torch.cuda.is_available():
        print(f"GPU: {torch.cuda.get_device_name(0)}; torch {torch.__version__}")
    spec, data = prepare(args.dataset, args.seed)
    texts = item_texts(data.dataset)
    print(f"{args.dataset}: {data.split.n_users} users, {data.split.n_items} items; text e.g. {texts[0]!r}")
    rows = []
    for strategy in args.strategies.split(","):
        for device in devices:
            epochs = args.cpu_epochs if (device == "cpu" and args.cpu_epochs) else args.epochs
            rows.append(run_one(strategy, device, epochs, data, texts, args.encoder, args.seed, args.dry_run,
                                args.threads, args.patience))
            r = rows[-1]
            print(f"  done {strategy} on {device}: {r['fit_s']:.1f} s, ndcg@10 {r['ndcg@10']:.4f}", flush=True)
    print(f"\n{'strategy':<9} {'device':<7} {'epochs':>6} {'s/epoch':>8} {'s/step':>7} {'trainable':>10} "
          f"{'total':>10} {'ndcg@10':>8} {'peak MB':>8}")
    for r in rows:
        p = r["params"]
        print(f"{r['strategy']:<9} {r['device']:<7} {r['epochs']:>6} {r['seconds_per_epoch']:>8.2f} "
              f"{r['seconds_per_step']:>7.3f} {p['trainable']:>10,} {p['total']:>10,} {r['ndcg@10']:>8.4f} "
              f"{r['peak_memory_mb']:>8.0f}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("WANDB_MODE", "offline")
    sys.exit(main())
