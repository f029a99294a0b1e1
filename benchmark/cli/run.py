"""`recux`: the Hydra app. One run (`recux model=itemknn`) or a sweep (`recux -m model=pop,bpr seed=0,1`)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

import recux.conf
from recux.errors import RecuxError
from recux.identity import DEFAULT_OPTIMIZED_METRIC

# The configs ship inside the package (recux.conf <- the repository's conf/), so a wheel install runs too.
CONFIG_MODULE = "recux.conf"
CONF_DIR = str(Path(recux.conf.__file__).parent)  # the same folder on disk (for listing its YAML files)


@hydra.main(version_base="1.3", config_path=f"pkg://{CONFIG_MODULE}", config_name="config")
def _app(cfg: DictConfig) -> float | None:
    from hydra.core.hydra_config import HydraConfig

    from recux.pipeline import run_experiment

    hc = HydraConfig.get()
    _share_cores(hc)
    try:
        results = run_experiment(cfg, hc.runtime.output_dir, overrides=list(hc.overrides.task))
    except RecuxError as exc:
        print(f"\nrecux: error: {exc}\n", file=sys.stderr)
        raise SystemExit(2) from None
    if results.get("status") != "ok":
        return None
    metrics = results["metrics"]
    print(f"{results['label']} seed={results['seed']} on {results['dataset']['name']} ({results['protocol']}): "
          + ", ".join(f"{k}={v:.4f}" for k, v in metrics.items() if k.endswith("@10")))
    print(f"results: {Path(hc.runtime.output_dir) / 'results.json'}")
    return objective(results)


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
    _app()


if __name__ == "__main__":
    main()
