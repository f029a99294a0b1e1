"""Every Optuna search config (conf/hparams_search/*.yaml) composes with the recux config, selects its model,
maximises, and searches only real constructor parameters of that model with valid Optuna ranges -- so a
typo fails here rather than after a sweep's first trial."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

from recux import registry

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"
SEARCHES = sorted(p.stem for p in (CONF_DIR / "hparams_search").glob("*.yaml"))


def _compose(name: str):
    with initialize_config_module(config_module="recux.conf", version_base="1.3"):
        return compose("config", overrides=[f"hparams_search={name}"], return_hydra_config=True)


def test_searches_exist_for_the_trained_models():
    assert {"bpr", "lightgcn"} <= set(SEARCHES)


@pytest.mark.parametrize("name", SEARCHES)
def test_search_config_targets_the_models_parameters(name):
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra_plugins.hydra_optuna_sweeper._impl import create_optuna_distribution_from_override

    cfg = _compose(name)
    sweeper = cfg.hydra.sweeper
    assert "optuna" in sweeper._target_.lower()
    assert sweeper.direction == "maximize"
    assert sweeper.n_trials >= 10
    model = cfg.model.name
    signature = inspect.signature(registry.get("model", model).obj).parameters
    params = OmegaConf.to_container(sweeper.params)
    assert params, f"{name}: no parameters to search"
    parser = OverridesParser.create()
    for key, spec in params.items():
        group, _, param = key.partition(".")
        assert group == "model" and param in signature, f"{name}: {key} is not a {model} parameter"
        override = parser.parse_override(f"{key}={spec}")
        dist = create_optuna_distribution_from_override(override)  # raises on a malformed range
        low = getattr(dist, "low", None)
        if low is not None:
            assert low < dist.high, f"{name}: empty range for {key}"
            if "Log" in type(dist).__name__:
                assert low > 0, f"{name}: log range of {key} must start above 0"
