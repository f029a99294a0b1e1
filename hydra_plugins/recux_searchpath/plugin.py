"""Config folders of installed plugin packages join recux's config search path.

A third-party distribution declares ``[project.entry-points."recux.configs"] mypkg = "mypkg.conf"``, where
``mypkg/conf/model/myplugin.yaml`` holds the plugin's YAML; then ``recux model=myplugin`` finds it."""

from __future__ import annotations

from importlib.metadata import entry_points

from hydra.core.config_search_path import ConfigSearchPath
from hydra.plugins.search_path_plugin import SearchPathPlugin

CONFIG_GROUP = "recux.configs"
RECUX_CONFIG = "pkg://recux.conf"  # recux's primary config dir: other Hydra apps are left alone


class RecuxConfigSearchPath(SearchPathPlugin):
    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        is_recux = any(p.provider == "main" and p.path == RECUX_CONFIG for p in search_path.get_path())
        if not is_recux:
            return
        for ep in sorted(entry_points(group=CONFIG_GROUP), key=lambda e: e.name):
            search_path.append(provider=f"recux-{ep.name}", path=f"pkg://{ep.value}")
