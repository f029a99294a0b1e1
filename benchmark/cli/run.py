"""`recux`: the Hydra app. One run (`recux model=itemknn`) or a sweep (`recux -m model=pop,bpr seed=0,1`)."""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from benchmark.errors import RecuxError

CONF_DIR = str(Path(__file__).resolve().parents[2] / "conf")


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="config")
def _app(cfg: DictConfig) -> float | None:
    from hydra.core.hydra_config import HydraConfig

    from benchmark.pipeline import run_experiment

    hc = HydraConfig.get()
    try:
        results = run_experiment(cfg, hc.runtime.output_dir, overrides=list(hc.overrides.task))
    except RecuxError as exc:
        print(f"\nrecux: error: {exc}\n", file=sys.stderr)
        raise SystemExit(2) from None
    metrics = results["metrics"]
    print(f"{results['label']} seed={results['seed']} on {results['dataset']['name']} ({results['protocol']}): "
          + ", ".join(f"{k}={v:.4f}" for k, v in metrics.items() if k.endswith("@10")))
    print(f"results: {Path(hc.runtime.output_dir) / 'results.json'}")
    # a sweeper (e.g. Optuna) optimises the returned value: validation NDCG@10, never test
    return results["valid_metrics"].get("ndcg@10")


def main() -> None:
    _app()


if __name__ == "__main__":
    main()
