"""recux's Hydra configs, shipped as package data and read by Hydra as ``pkg://recux.conf``.

Importing it registers ``${recux_uid:}``: a short random suffix that makes run and sweep folder names unique
(two runs started in the same second get different folders). Cached per config, so every read of a run's
``hydra.run.dir`` gives the same name; Hydra imports this package wherever it composes a config (also in a
parallel launcher's worker processes)."""

import uuid

from omegaconf import OmegaConf

OmegaConf.register_new_resolver("recux_uid", lambda: uuid.uuid4().hex[:6], use_cache=True, replace=True)
