"""One way to seed a run: Python's ``random``, NumPy's global generator and, when torch is in use, torch.

The pipeline calls it at the start of a run (before torch may be imported) and ``LightningRecommender.fit``
calls it again once torch is loaded, so a Lightning model starts from the same torch state for the same seed.
Hash randomisation (``PYTHONHASHSEED``) cannot be set from inside a running interpreter; recux never
iterates over sets or dicts of strings where their order would reach a result.
"""

from __future__ import annotations

import os
import random
import sys

import numpy as np


def seed_everything(seed: int) -> None:
    """Seed ``random`` with ``seed``, NumPy with ``seed mod 2**32`` and, if torch is imported, torch (all
    devices), exactly as ``pytorch_lightning.seed_everything(seed, workers=True)`` does for seeds in
    0..2**32-1 (including its environment variables, read by Lightning's dataloader workers)."""
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch = sys.modules.get("torch")
    if torch is not None:
        os.environ["PL_GLOBAL_SEED"] = str(seed)
        os.environ["PL_SEED_WORKERS"] = "1"
        torch.manual_seed(seed)
