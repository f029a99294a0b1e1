"""One experiment, end to end: config -> registry -> dataset -> preprocess -> split -> fit -> top-k over the whole
catalogue -> metrics -> results files (+ W&B). The Hydra CLI and the tests both call ``run_experiment``."""

from __future__ import annotations

import logging
import os
import random
import resource
import time
import uuid
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from recux import registry
from recux.data import Dataset, Interactions, Split
from recux.errors import ConfigError
from recux.model import FitContext
from recux.ranking import rank_topk
from recux.results import RunArtifacts, config_hash, library_versions
from recux.tracking import make_tracker

log = logging.getLogger("recux")

# Split protocols whose test items come after each user's training items (allowed for sequential models).
_TIME_ORDERED = ("leave_last_one_out", "temporal_", "global_temporal_")

# Config keys that never change a run's results: excluded from the variant hash (the leaderboard's group key).
_NOT_RESULT_KEYS = ("seed", "logger", "eval.batch_size", "run", "trainer.enable_progress_bar",
                    "trainer.progress_refresh_rate")


def _plugin_params(node: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    params = dict(node)
    name = params.pop("name", None)
    if name is None:
        raise ConfigError(f"plugin config {params} has no 'name'; add `name: <registered plugin name>`")
    return str(name), params


def _peak_memory_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def global_rank() -> int:
    """This process's rank in a multi-process (DDP) launch; 0 when single-process. Lightning sets these
    variables in the worker processes it launches, before they run the pipeline again."""
    for var in ("RANK", "LOCAL_RANK", "SLURM_PROCID"):
        if os.environ.get(var, "").isdigit():
            return int(os.environ[var])
    return 0


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    os.environ["PYTHONHASHSEED"] = str(seed)


def build_label(model_name: str, finetune_name: str, overrides: list[str]) -> str:
    """Display name of a variant: the model, its fine-tuning strategy unless scratch, and other overrides."""
    skip = ("seed=", "model=", "finetune=", "experiment=", "hparams_search=", "logger", "trainer", "dataset", "split",
            "hydra", "eval.batch_size",
            "run.")
    extra = [o.lstrip("+~") for o in overrides if not o.lstrip("+~").startswith(skip)]
    extra = [o[len("model."):] if o.startswith("model.") else o for o in extra]
    label = model_name if finetune_name == "scratch" else f"{model_name}+{finetune_name}"
    return f"{label}({', '.join(sorted(extra))})" if extra else label


def _concat(a: Interactions, b: Interactions) -> Interactions:
    def cat(x, y):
        return None if x is None or y is None else np.concatenate([x, y])

    return Interactions(user=np.concatenate([a.user, b.user]), item=np.concatenate([a.item, b.item]),
                        n_users=a.n_users, n_items=a.n_items, rating=cat(a.rating, b.rating),
                        timestamp=cat(a.timestamp, b.timestamp))


def _split_frame(ds: Dataset, split: Split, part: str) -> pl.DataFrame:
    return ds.to_frame(getattr(split, part))


def run_experiment(cfg: DictConfig, run_dir: str | Path, overrides: list[str] | None = None) -> dict[str, Any]:
    """Run one experiment described by a composed config and write its artefacts into ``run_dir``."""
    t_start = time.perf_counter()
    run_dir = Path(run_dir)
    resolved: dict[str, Any] = OmegaConf.to_container(cfg, resolve=True)  # type: ignore[assignment]
    seed = int(cfg.seed)
    seed_everything(seed)

    # -- plugins (unknown names fail here, before any work)
    ds_name, ds_params = _plugin_params(resolved["dataset"])
    model_name, model_params = _plugin_params(resolved["model"])
    ft_name, ft_params = _plugin_params(resolved["finetune"])
    model_info = registry.get("model", model_name)
    metric_specs = list(resolved["metrics"]["plugins"])
    ks = tuple(int(k) for k in resolved["metrics"]["ks"])
    if not ks or min(ks) < 1:
        raise ConfigError(f"metrics.ks={list(ks)} must be a non-empty list of positive cut-offs, e.g. [5,10,20]")
    from recux.evaluation import Validator, build_metrics, evaluate_topk

    metrics = build_metrics(metric_specs)

    # -- data
    t0 = time.perf_counter()
    dataset: Dataset = registry.build("dataset", ds_name, ds_params).load()
    dataset = instantiate(cfg.preprocess).apply(dataset)
    split: Split = instantiate(cfg.split).split(dataset.interactions, seed=seed)
    data_seconds = time.perf_counter() - t0
    if model_info.meta.get("protocol") == "sequential" and not split.protocol.startswith(_TIME_ORDERED):
        raise ConfigError(
            f"model '{model_name}' is sequential: it predicts the next items from the user's history in time "
            f"order, which the split '{split.protocol}' does not keep (its test items are not the latest). Use "
            f"`recux experiment={model_name}` (leave-last-one-out), or add `split=loo` (or split=temporal)."
        )
    k_max = max(ks)
    if k_max > dataset.n_items:
        raise ConfigError(
            f"metrics.ks contains k={k_max}, larger than the catalogue ({dataset.n_items} items after "
            f"preprocessing). Use cut-offs <= {dataset.n_items}, e.g. metrics.ks=[5,10,20]."
        )
    train_csr = split.train.csr()
    valid_csr = split.valid.csr()
    test_csr = split.test.csr()
    valid_users = np.flatnonzero(np.diff(valid_csr.indptr) > 0)
    test_users = np.flatnonzero(np.diff(test_csr.indptr) > 0)
    if len(test_users) == 0:
        raise ConfigError(
            f"the split '{split.protocol}' left no test interactions (dataset {dataset.n_users} users, "
            f"{len(dataset.interactions)} interactions). Use a dataset with more interactions per user or "
            "another split (split=random)."
        )

    label = build_label(model_name, ft_name, list(overrides or []))
    variant = config_hash(resolved, drop=_NOT_RESULT_KEYS)
    rank = global_rank()
    # only rank 0 tracks, evaluates and writes: it ranks every test user itself (no per-rank metric shards)
    tracker = make_tracker(None if rank else resolved.get("logger"), run_dir, resolved, name=f"{label}-s{seed}", group=variant,
                           tags=[dataset.name, split.protocol, model_name])
    batch_size = int(resolved.get("eval", {}).get("batch_size", 1024))
    try:
        with RunArtifacts(run_dir) as art:
            if resolved.get("run", {}).get("save_split", True):
                for part in ("train", "valid", "test"):
                    _split_frame(dataset, split, part).write_parquet(art.path(f"split/{part}.parquet"))

            # -- fit
            finetune = registry.build("finetune", ft_name, ft_params)
            model = model_info.build(model_params)
            validator = Validator(valid_users, train_csr, valid_csr, k=10, batch_size=batch_size) \
                if len(valid_users) else None
            ctx = FitContext(
                dataset=dataset, split=split, finetune=finetune, seed=seed, run_dir=art.stage,
                trainer=dict(resolved.get("trainer", {}) or {}),
                logger=tracker.lightning_logger() if model_info.meta.get("training") == "lightning" else None,
                validate=validator,
            )
            t0 = time.perf_counter()
            model.fit(ctx)
            fit_seconds = time.perf_counter() - t0
            if rank:
                art.cancel()
                return {"status": f"rank {rank}: trained; rank 0 evaluates and writes results"}
            if ctx.history and model_info.meta.get("training") != "lightning":
                for rec in ctx.history:
                    tracker.log({f"val/{k}" if not k.startswith(("val/", "train/")) else k: v
                                 for k, v in rec.items()})

            # -- test: full ranking, training and validation items masked
            t0 = time.perf_counter()
            model.condition_on(_concat(split.train, split.valid))
            exclude = (train_csr + valid_csr).tocsr() if resolved["eval"].get("exclude_valid", True) else train_csr
            exclude.sort_indices()
            topk, topk_scores = rank_topk(model.score, test_users, k_max, exclude=exclude, batch_size=batch_size)
            truth = test_csr[test_users]
            report = evaluate_topk(
                topk, truth, metrics=metrics, ks=ks, scores=topk_scores, train=train_csr, users=test_users,
                n_items=dataset.n_items, item_features=dataset.item_features,
            )
            eval_seconds = time.perf_counter() - t0

            # -- artefacts
            raw_users = dataset.user_ids[test_users]
            per_user = report.per_user.with_columns(pl.Series("user_id", dataset.user_ids[
                report.per_user["user"].to_numpy()])).drop("user").select(
                ["user_id", *[c for c in report.per_user.columns if c != "user"]])
            per_user.write_parquet(art.path("per_user_metrics.parquet"))
            valid_pos = topk >= 0
            rows, ranks = np.nonzero(valid_pos)
            pl.DataFrame({
                "user_id": raw_users[rows],
                "rank": (ranks + 1).astype(np.int32),
                "item_id": dataset.item_ids[topk[rows, ranks]],
                "score": topk_scores[rows, ranks],
            }).write_parquet(art.path("recommendations.parquet"))
            if resolved.get("run", {}).get("save_model", False):
                model.save(art.path("model.pkl"))

            epochs = len(ctx.history) or None
            epoch_secs = [h["epoch_seconds"] for h in ctx.history if "epoch_seconds" in h]
            steps = sum(h.get("steps", 0) for h in ctx.history)
            timing = {
                "data_seconds": round(data_seconds, 4),
                "fit_seconds": round(fit_seconds, 4),
                "eval_seconds": round(eval_seconds, 4),
                "epochs": epochs,
                "seconds_per_epoch": round(float(np.mean(epoch_secs)), 4) if epoch_secs else None,
                "steps_per_second": round(steps / sum(epoch_secs), 2) if epoch_secs and steps else None,
                "total_seconds": round(time.perf_counter() - t_start, 4),
            }
            valid_best: dict[str, float] = {}
            if ctx.history:
                scored = [h for h in ctx.history if f"val/{ctx.monitor}" in h or ctx.monitor in h]
                if scored:
                    key = f"val/{ctx.monitor}" if f"val/{ctx.monitor}" in scored[0] else ctx.monitor
                    best = max(scored, key=lambda h: h[key])
                    valid_best = {k.removeprefix("val/"): float(v) for k, v in best.items()
                                  if k.startswith("val/") or k == ctx.monitor}
            elif validator is not None:
                valid_best = {k: float(v) for k, v in validator(model.score).items()}
            results = {
                "schema": 1,
                "run_id": f"{datetime.now(timezone.utc):%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}",
                "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "status": "ok",
                "label": label,
                "variant_hash": variant,
                "config_hash": config_hash(resolved),
                "seed": seed,
                "dataset": {"name": dataset.name, "n_users": dataset.n_users, "n_items": dataset.n_items,
                            "n_interactions": len(dataset.interactions),
                            "info": {k: v for k, v in dataset.info.items() if k != "preprocessing"}},
                "protocol": split.protocol,
                "split": {**resolved["split"], **split.settings, "n_train": len(split.train),
                          "n_valid": len(split.valid), "n_test": len(split.test)},
                "preprocessing": dataset.info.get("preprocessing", resolved.get("preprocess")),
                "model": {"name": model_name, "params": model_params, "training": model_info.meta.get("training")},
                "finetune": {"name": ft_name, **finetune.describe(), "params": ft_params},
                "metrics": report.means,
                "directions": report.directions,
                "valid_metrics": valid_best,
                "users": {"evaluated": report.n_evaluated,
                          "excluded_empty_test": int(dataset.n_users - len(test_users)) + report.n_excluded_empty},
                "timing": timing,
                "peak_memory_mb": round(_peak_memory_mb(), 1),
                "versions": library_versions(),
                "config": resolved,
                "files": {"per_user_metrics": "per_user_metrics.parquet",
                          "recommendations": "recommendations.parquet", "split": "split/"},
            }
            art.set_results(results)
        tracker.summary({**{f"test/{k}": v for k, v in report.means.items()},
                         **{f"timing/{k}": v for k, v in timing.items() if v is not None},
                         "users/evaluated": report.n_evaluated, "peak_memory_mb": results["peak_memory_mb"]})
        tracker.finish(0)
    except BaseException:
        tracker.finish(1)
        raise
    log.info("results written to %s", run_dir / "results.json")
    return results
