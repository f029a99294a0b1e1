"""Scale benchmark: a synthetic world of 1M users x 100k items x 50M interactions through the pipeline's own
stages (recux.stages): load, preprocess, split, one BPR epoch, and full-ranking evaluation with the accuracy
metrics (rank every test user over the whole catalogue with seen items masked, top-20, then precision, recall,
NDCG, MRR, MAP, hit at 5/10/20).

Each stage runs in a child process of its own, so its peak memory (ru_maxrss: resident set high-water mark,
imports included) is that stage's alone; stages hand over their outputs through pickles in --workdir (the
time to read them is reported apart from the stage's time). Prints a table and writes --json.

    OMP_NUM_THREADS=1 nice python scripts/bench_scale.py --json scale.json            # the full world
    python scripts/bench_scale.py --users 100000 --items 10000 --interactions 5000000   # 1/10 scale
    python scripts/bench_scale.py --stages evaluate --workdir W   # rerun one stage on W's saved inputs

The configuration is the one `recux dataset=synthetic_1m model=bpr metrics=accuracy ...` composes (see
``overrides``), so the evaluated metrics equal a pipeline run's with model.max_epochs=1 on the same data.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

STAGES = ("load", "preprocess", "split", "bpr_epoch", "evaluate")


def overrides(args: argparse.Namespace) -> list[str]:
    """The Hydra overrides of the benchmark's run (also what a test gives run_experiment)."""
    per_user = args.interactions / args.users
    return [
        "dataset=synthetic_1m", f"dataset.n_users={args.users}", f"dataset.n_items={args.items}",
        f"dataset.interactions_per_user={per_user:.6g}", f"seed={args.seed}",
        "model=bpr", f"model.embedding_dim={args.dim}", f"model.batch_size={args.batch_size}", "model.sparse=true",
        f"model.lr={args.lr}", "metrics=accuracy", f"metrics.ks=[{','.join(map(str, args.ks))}]",
        f"optimized_metric=ndcg@{min(10, max(args.ks))}", f"eval.batch_size={args.eval_batch}", "logger=none",
        "trainer.enable_progress_bar=false", "run.save_split=false", "eval.efficiency=false",
    ]


def spec_of(args: argparse.Namespace) -> Any:
    from hydra import compose, initialize_config_module

    from recux.stages import RunSpec

    ov = overrides(args)
    with initialize_config_module(config_module="recux.conf", version_base="1.3"):
        cfg = compose("config", overrides=ov)
    return RunSpec.from_config(cfg, ov)


# ------------------------------------------------------------------------------------------------ stages


def _save(obj: Any, path: Path) -> None:
    with open(path, "wb") as fh:
        pickle.dump(obj, fh, protocol=pickle.HIGHEST_PROTOCOL)


def _load(path: Path) -> Any:
    with open(path, "rb") as fh:
        return pickle.load(fh)


def stage_load(spec: Any, work: Path, timer: Any) -> dict[str, Any]:
    from recux import stages

    with timer():
        ds = stages.load_dataset(spec)
    _save(ds, work / "dataset.pkl")
    return {"n_users": ds.n_users, "n_items": ds.n_items, "n_interactions": len(ds.interactions)}


def stage_preprocess(spec: Any, work: Path, timer: Any) -> dict[str, Any]:
    from recux import stages

    ds = _load(work / "dataset.pkl")
    with timer():
        ds = stages.preprocess(spec, ds)
    _save(ds, work / "dataset.pkl")
    return {"n_interactions": len(ds.interactions)}


def stage_split(spec: Any, work: Path, timer: Any) -> dict[str, Any]:
    from recux import stages

    ds = _load(work / "dataset.pkl")
    with timer():
        split = stages.make_split(spec, ds)
    _save(split, work / "split.pkl")
    return {"n_train": len(split.train), "n_valid": len(split.valid), "n_test": len(split.test)}


def _prepared(spec: Any, work: Path) -> Any:
    from recux import stages

    ds, split = _load(work / "dataset.pkl"), _load(work / "split.pkl")
    return stages.prepared_from_split(ds, split)


def stage_bpr_epoch(spec: Any, work: Path, timer: Any) -> dict[str, Any]:
    """One epoch of the configured BPR over every training pair, without validation (the epoch alone)."""
    from recux import registry
    from recux.model import FitContext

    ds, split = _load(work / "dataset.pkl"), _load(work / "split.pkl")
    model = registry.build("model", spec.model.name, {**spec.model.params, "max_epochs": 1})
    finetune = registry.build("finetune", spec.finetune.name, spec.finetune.params)
    ctx = FitContext(dataset=ds, split=split, finetune=finetune, seed=spec.seed, run_dir=work / "fit",
                     trainer=dict(spec.resolved.get("trainer") or {}), validate=None, monitor=spec.optimized.name)
    with timer():
        model.fit(ctx)
    model.save(work / "model.pt")
    epoch = ctx.history[0]
    return {"epoch_seconds": epoch["epoch_seconds"], "steps": epoch["steps"], "train_loss": epoch["train_loss"],
            "pairs": len(split.train)}


def stage_evaluate(spec: Any, work: Path, timer: Any) -> dict[str, Any]:
    """The pipeline's rank and evaluate stages over every test user (the CSR matrices are built first)."""
    from recux import registry, stages
    from recux.evaluation import build_metrics

    data = _prepared(spec, work)
    model = registry.get("model", spec.model.name).obj.load(work / "model.pt")
    metrics = build_metrics(spec.metric_specs)
    with timer() as t:
        ranking = stages.rank(spec, model, data)
        t["rank_seconds"] = ranking.seconds
        report = stages.evaluate(spec, metrics, ranking, data)
    return {"users": int(report.n_evaluated), "rank_seconds": round(t["rank_seconds"], 2),
            "metrics": report.means}


RUNNERS = {"load": stage_load, "preprocess": stage_preprocess, "split": stage_split, "bpr_epoch": stage_bpr_epoch,
           "evaluate": stage_evaluate}


class _Timer:
    """``with timer() as extra:`` times the block; ru_maxrss before it is the inputs' share of the peak."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.rss_before_mb = 0.0
        self.extra: dict[str, Any] = {}

    def __call__(self) -> _Timer:
        return self

    def __enter__(self) -> dict[str, Any]:
        self.rss_before_mb = peak_rss_mb()
        self._t0, self._cpu0 = time.perf_counter(), cpu_seconds()
        return self.extra

    def __exit__(self, *exc: Any) -> None:
        self.seconds = time.perf_counter() - self._t0
        self.cpu_seconds = cpu_seconds() - self._cpu0


def cpu_seconds() -> float:
    """User + system CPU time of this process, all threads (wall time on a shared machine also counts waiting)."""
    use = resource.getrusage(resource.RUSAGE_SELF)
    return use.ru_utime + use.ru_stime


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_stage(args: argparse.Namespace) -> None:
    """Child process: run one stage and write its record to <workdir>/<stage>.json."""
    t0 = time.perf_counter()
    spec = spec_of(args)
    work = Path(args.workdir)
    timer = _Timer()
    out = RUNNERS[args.stage](spec, work, timer)
    out.update(stage=args.stage, seconds=round(timer.seconds, 2), cpu_seconds=round(timer.cpu_seconds, 2),
               load_avg=round(os.getloadavg()[0], 1), peak_rss_mb=round(peak_rss_mb(), 1),
               rss_before_mb=round(timer.rss_before_mb, 1),
               child_seconds=round(time.perf_counter() - t0, 2))
    (work / f"{args.stage}.json").write_text(json.dumps(out))


# ------------------------------------------------------------------------------------------------ parent


def table(rows: list[dict[str, Any]]) -> str:
    lines = [f"{'stage':<11} {'wall s':>8} {'CPU s':>8} {'peak RSS MB':>12} {'RSS before MB':>14} {'load':>5}  notes"]
    shown = ("stage", "seconds", "cpu_seconds", "peak_rss_mb", "rss_before_mb", "load_avg", "child_seconds",
             "metrics")
    for r in rows:
        notes = {k: v for k, v in r.items() if k not in shown}
        lines.append(f"{r['stage']:<11} {r['seconds']:>8.1f} {r['cpu_seconds']:>8.1f} {r['peak_rss_mb']:>12.0f} "
                     f"{r['rss_before_mb']:>14.0f} {r['load_avg']:>5.1f}  {json.dumps(notes)}")
    return "\n".join(lines)


def parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--users", type=int, default=1_000_000)
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--interactions", type=int, default=50_000_000, help="about this many (mean per user x users)")
    ap.add_argument("--dim", type=int, default=64, help="BPR embedding size")
    ap.add_argument("--batch-size", type=int, default=65_536, help="BPR training pairs per step")
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--eval-batch", type=int, default=64,
                    help="users per scoring block (64 x 100k float32 = 25 MB: the allocator reuses it)")
    ap.add_argument("--ks", type=int, nargs="+", default=[5, 10, 20])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--stages", default=",".join(STAGES), help=f"comma-separated subset of {','.join(STAGES)}")
    ap.add_argument("--workdir", default=None, help="where stages hand over data (default: a temporary folder)")
    ap.add_argument("--json", default=None, help="write the stage records here")
    ap.add_argument("--stage", default=None, help=argparse.SUPPRESS)  # child process: run this stage only
    args = ap.parse_args(argv)
    unknown = set(args.stages.split(",")) - set(STAGES)
    if unknown:
        ap.error(f"--stages: unknown {sorted(unknown)}; choose from {', '.join(STAGES)}")
    if args.users < 1 or args.items < 2 or not args.users <= args.interactions <= args.users * args.items:
        ap.error("--users >= 1, --items >= 2 and users <= --interactions <= users x items")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.stage:
        run_stage(args)
        return 0
    argv = list(sys.argv[1:] if argv is None else argv)
    with tempfile.TemporaryDirectory(prefix="recux-scale-") as tmp:
        work = Path(args.workdir or tmp)
        work.mkdir(parents=True, exist_ok=True)
        rows = []
        for stage in args.stages.split(","):
            cmd = [sys.executable, str(Path(__file__).resolve()), *argv, "--workdir", str(work), "--stage", stage]
            subprocess.run(cmd, check=True, env={**os.environ, "WANDB_MODE": "offline"})
            rows.append(json.loads((work / f"{stage}.json").read_text()))
            print(f"{stage}: {rows[-1]['seconds']:.1f} s, peak {rows[-1]['peak_rss_mb']:.0f} MB", flush=True)
    print(f"\n{args.users} users x {args.items} items x ~{args.interactions} interactions; BPR dim {args.dim}, "
          f"batch {args.batch_size}; top-{max(args.ks)}; {os.cpu_count()} CPUs")
    print(table(rows))
    result = {"settings": {k: v for k, v in vars(args).items() if k not in ("stage", "json")},
              "overrides": overrides(args), "stages": rows}
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
