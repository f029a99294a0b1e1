"""Compose recux's Hydra config in tests, as the `recux` command does (the packaged recux.conf)."""

from __future__ import annotations

import json
from pathlib import Path

from hydra import compose, initialize_config_module

from recux.cli.run import CONFIG_MODULE


def compose_cfg(overrides: list[str]):
    with initialize_config_module(config_module=CONFIG_MODULE, version_base="1.3"):
        return compose("config", overrides=overrides)


def run_record(overrides: list[str], folder: Path) -> dict:
    """Run the experiment these overrides compose into ``folder`` and return its results.json."""
    from recux.pipeline import run_experiment

    run_experiment(compose_cfg(overrides), folder, overrides)
    return json.loads((folder / "results.json").read_text())
