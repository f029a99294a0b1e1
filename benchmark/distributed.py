"""Where this process stands in a multi-process (DDP) launch. No torch import: torch is consulted only if the
process has already imported it (a process group cannot exist otherwise)."""

from __future__ import annotations

import os
import sys

_RANK_VARS = ("RANK", "LOCAL_RANK", "SLURM_PROCID")
_WORLD_VARS = ("WORLD_SIZE", "SLURM_NTASKS")


def _env_int(names: tuple[str, ...]) -> int | None:
    for var in names:
        if os.environ.get(var, "").isdigit():
            return int(os.environ[var])
    return None


def rank_world() -> tuple[int, int]:
    """(global rank, world size): from torch.distributed once its process group is up, else from the
    launcher's environment (Lightning and torchrun set RANK/WORLD_SIZE, SLURM sets SLURM_PROCID/SLURM_NTASKS
    in the processes they start), else (0, 1)."""
    torch = sys.modules.get("torch")
    if torch is not None:
        dist = torch.distributed
        if dist.is_available() and dist.is_initialized():
            return dist.get_rank(), dist.get_world_size()
    rank = _env_int(_RANK_VARS) or 0
    world = _env_int(_WORLD_VARS) or 1
    return rank, max(world, rank + 1)


def global_rank() -> int:
    """This process's rank; 0 when single-process."""
    return rank_world()[0]
