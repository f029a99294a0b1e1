"""Hydra search-path plugin: adds the config folders that third-party recux plugin packages declare."""
