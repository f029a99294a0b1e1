"""`recux`: the Hydra app. One run (`recux model=itemknn`) or a sweep (`recux -m model=pop,bpr seed=0,1`)."""

from __future__ import annotations

import os
import sys
import traceback
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

import recux.conf
from recux import sweep
from recux.distributed import global_rank
from recux.errors import RecuxError
from recux.failure import log_to_files, record_failure
from recux.identity import DEFAULT_OPTIMIZED_METRIC
from recux.results import RESULTS_FILE, claim_folder, move_aside_previous, run_config_hash
from recux.signals import (
    EXIT_RECUX_ERROR,
    EXIT_SWEEP_JOBS_FAILED,
    EXIT_TERMINATED,
    Terminated,
    install_sigterm_handler,
)

# The configs ship inside the package (recux.conf <- the repository's conf/), so a wheel install runs too.
CONFIG_MODULE = "recux.conf"
CONF_DIR = str(Path(recux.conf.__file__).parent)  # the same folder on disk (for listing its YAML files)


@hydra.main(version_base="1.3", config_path=f"pkg://{CONFIG_MODULE}", config_name="config")
def _app(cfg: DictConfig) -> float | None:
    """One job. A failing job is recorded in its folder (failed.json, traceback.txt, run.log); in a sweep it
    returns so the others run (the sweep's exit code reports it), in a single run it exits 2 (recux errors)
    or re-raises (others: exit 1 with the traceback). SIGTERM: recorded as terminated, exit 143."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from recux.pipeline import run_experiment

    hc = HydraConfig.get()
    _share_cores(hc)
    install_sigterm_handler()  # also in a parallel launcher's worker process
    multirun = hc.mode == RunMode.MULTIRUN
    run_dir, overrides, resolved = Path(hc.runtime.output_dir), list(hc.overrides.task), _resolved(cfg)
    if global_rank():  # a DDP worker re-running this command in rank 0's folder: rank 0 owns the folder
        return _ddp_worker(run_experiment, cfg, run_dir, overrides)
    claim_folder(run_dir)
    _own_hydra_files(cfg, hc, run_dir)
    existing = _existing_results(resolved, run_dir, hc.sweep.dir if multirun else None)
    if existing is not None:
        sweep.note("skipped", run_dir)
        return objective(existing)
    try:
        results = run_experiment(cfg, run_dir, overrides=overrides)
    except Terminated as exc:
        path = record_failure(run_dir, resolved, overrides, exc)
        print(f"\nrecux: terminated by SIGTERM: no results written; recorded in {path}\n", file=sys.stderr)
        raise SystemExit(EXIT_TERMINATED) from None
    except Exception as exc:
        return _job_failed(exc, run_dir, resolved, overrides, multirun)
    sweep.note("ok", run_dir)
    if results.get("status") == "ok":
        _own_hydra_files(cfg, hc, run_dir)  # this run published, so it owns the folder: its config stays there
    if results.get("status") != "ok":
        return None
    metrics = results["metrics"]
    shown = {k: v for k, v in metrics.items() if k.endswith("@10") and not k.startswith(_NOT_PRINTED)}
    shown = shown or dict(list(metrics.items())[:8])  # tasks without cut-offs (ope, ab_test): their first values
    print(f"{results['label']} seed={results['seed']} on {results['dataset']['name']} ({results['protocol']}): "
          + ", ".join(f"{k}={'null' if v is None else f'{v:.4f}'}" for k, v in shown.items()))
    print(f"results: {Path(hc.runtime.output_dir) / 'results.json'}")
    return objective(results)


# left out of the one-line summary (results.json has them): per-group gaps, and the catalogue/interaction shares
# that do not depend on the lists
_NOT_PRINTED = ("fairness/", "catalogue_share_", "interaction_share_")


def _own_hydra_files(cfg: DictConfig, hc: Any, run_dir: Path) -> None:
    """Rewrite Hydra's ``.hydra/`` files with this run's config right after claiming the folder. Hydra wrote
    them before the claim, so with two runs started in one folder the owner (the last to claim) could
    otherwise find the other run's overrides there; written again after publishing, which only the owner does."""
    from omegaconf import OmegaConf

    out = run_dir / str(hc.output_subdir or ".hydra")
    if not hc.output_subdir or not out.is_dir():
        return
    OmegaConf.save(cfg, out / "config.yaml", resolve=False)
    OmegaConf.save(OmegaConf.create(list(hc.overrides.task)), out / "overrides.yaml")


def _job_failed(exc: Exception, run_dir: Path, resolved: dict[str, Any], overrides: list[str],
                multirun: bool) -> None:
    """Record a failed job. In a sweep return (the other jobs run; main() reports the failures); a single run
    exits 2 for a recux error, or re-raises anything else (Hydra prints the traceback and exits 1)."""
    path = record_failure(run_dir, resolved, overrides, exc)
    sweep.note("failed", run_dir)
    if isinstance(exc, RecuxError):
        print(f"\nrecux: error: {exc}\n", file=sys.stderr)
        if not multirun:
            raise SystemExit(EXIT_RECUX_ERROR) from None
    elif not multirun:
        raise exc
    else:
        traceback.print_exception(exc)
    print(f"recux: this job failed (recorded in {path}); the sweep goes on", file=sys.stderr)
    return None


def _ddp_worker(run_experiment, cfg: DictConfig, run_dir: Path, overrides: list[str]) -> None:
    """A non-zero DDP rank: train, write nothing (rank 0 records the run and any failure)."""
    try:
        run_experiment(cfg, run_dir, overrides=overrides)
    except Terminated:
        raise SystemExit(EXIT_TERMINATED) from None
    except RecuxError as exc:
        print(f"\nrecux: error: {exc}\n", file=sys.stderr)
        raise SystemExit(EXIT_RECUX_ERROR) from None
    return None


def _resolved(cfg: DictConfig) -> dict[str, Any]:
    """The job's config as plain data (unresolved if it cannot be resolved: run_experiment then says why)."""
    try:
        return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]
    except Exception:
        return OmegaConf.to_container(cfg, resolve=False)  # type: ignore[return-value]


def _existing_results(resolved: dict[str, Any], run_dir: Path, sweep_dir: str | None) -> dict[str, Any] | None:
    """In a sweep with ``run.skip_existing``: the record of earlier successful results for this config hash and
    seed (this folder first, then the whole sweep folder), or None. An earlier run's files in this folder that
    are not reused are moved aside to ``previous-<run_id>/`` first (Hydra has already written this job's
    config into the folder)."""
    skip = sweep_dir is not None and bool((resolved.get("run") or {}).get("skip_existing", True))
    chash, seed = run_config_hash(resolved), resolved.get("seed")
    here = sweep.folder_record(run_dir)
    found = None
    if here is not None:
        if skip and here.get("status") == "ok" and (here.get("config_hash"), here.get("seed")) == (chash, seed):
            found = run_dir / RESULTS_FILE
        else:
            aside = move_aside_previous(run_dir)
            print(f"recux: {run_dir} held an earlier run's files: moved to {aside}", file=sys.stderr)
            log_to_files(f"an earlier run's files in this folder were moved to {aside}")
    if skip and found is None:
        found = sweep.existing_results(sweep_dir, chash, seed)
    if found is None:
        return None
    message = f"skipped: results for this config and seed exist: {found} (run.skip_existing=false reruns it)"
    print(f"recux: {message}")
    log_to_files(message)
    return sweep.read_record(found) or {}


def objective(results: dict) -> float | None:
    """What a sweeper (e.g. Optuna) optimises: the run's ``optimized_metric`` on validation, never on test."""
    metric = results.get("optimized_metric") or DEFAULT_OPTIMIZED_METRIC
    return (results.get("valid_metrics") or {}).get(metric)


def _share_cores(hc) -> None:
    """Under a parallel launcher (joblib), give each job its share of the cores: torch's and numba's OpenMP
    threads spin-wait, and two jobs each using every core run many times slower than one job."""
    launcher = str(hc.launcher.get("_target_", ""))
    n_jobs = int(hc.launcher.get("n_jobs", 1) or 1) if "joblib" in launcher.lower() else 1
    cores = os.cpu_count() or 1
    if n_jobs < 0:
        n_jobs = max(1, cores + 1 + n_jobs)
    if n_jobs == 1:
        return
    threads = max(1, cores // n_jobs)
    os.environ["OMP_NUM_THREADS"] = str(threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)
    import numba

    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))


def main() -> None:
    """The ``recux`` command; exit codes in recux.signals (0 ok, 1 Hydra/unexpected, 2 recux error, 3 some
    sweep jobs failed, 143 terminated)."""
    install_sigterm_handler()
    tally = sweep.start_tally()
    try:
        _app()
    except Terminated:
        print("\nrecux: terminated by SIGTERM\n", file=sys.stderr)
        raise SystemExit(EXIT_TERMINATED) from None
    finally:
        os.environ.pop(sweep.TALLY_ENV, None)
        counts, failed = sweep.read_tally(tally)
        tally.unlink(missing_ok=True)
    if counts["failed"] or counts["skipped"]:
        print(f"recux: sweep finished: {counts['ok']} ok, {counts['failed']} failed, {counts['skipped']} skipped "
              "(results already there)", file=sys.stderr)
    if counts["failed"]:
        print("recux: failed jobs (failed.json and traceback.txt in each folder):\n  " + "\n  ".join(failed),
              file=sys.stderr)
        raise SystemExit(EXIT_SWEEP_JOBS_FAILED)


if __name__ == "__main__":
    main()
