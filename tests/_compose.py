"""Compose recux's Hydra config in tests, as the `recux` command does (the packaged recux.conf)."""

from __future__ import annotations

from hydra import compose, initialize_config_module

from recux.cli.run import CONFIG_MODULE


def compose_cfg(overrides: list[str]):
    with initialize_config_module(config_module=CONFIG_MODULE, version_base="1.3"):
        return compose("config", overrides=overrides)
