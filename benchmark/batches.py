"""The base of recux's training batch iterators: one seeded permutation per epoch, sliced per rank.

Each ``iter()`` is one epoch. Its randomness comes from one torch generator seeded by (seed, epoch number)
only, so runs repeat exactly and a resumed or re-iterated object continues the same sequence.

``batch_size`` is the global batch. Under a multi-process launch of W ranks every rank builds the same
epoch (permutation, negatives, masks: one generator) and takes rows rank, rank + W, ... of each batch, so
the W shards of step t together are exactly the single-process batch t. With a mean loss, DDP's averaged
gradient is then the single-process gradient (shards of equal size; a last batch that does not split evenly
differs slightly, and one with fewer than W rows is dropped so every rank runs the same steps): a W-process
run follows the single-process run up to floating-point summation order (tests/test_ddp.py). torch is
imported when batches are made.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

from recux.distributed import rank_world
from recux.errors import ConfigError


def epoch_generator(seed: int, epoch: int) -> Any:
    """The torch generator of an epoch: seeded with (seed * 1_000_003 + epoch) mod 2**63."""
    import torch

    return torch.Generator().manual_seed((int(seed) * 1_000_003 + int(epoch)) % (2**63))


class EpochBatches:
    """Batches over ``n`` examples. Subclasses implement ``_epoch(perm, generator)``: the batches of one
    epoch given this rank's example indices in order (a LongTensor) and the epoch's generator, which they
    may draw from further (negatives, masks)."""

    def __init__(self, n: int, batch_size: int, seed: int = 0) -> None:
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        self.n = int(n)
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.epoch = 0

    def __len__(self) -> int:
        _, world = rank_world()
        full, last = divmod(self.n, self.batch_size)
        return full + (1 if last >= world else 0) if world > 1 else math.ceil(self.n / self.batch_size)

    def __iter__(self) -> Iterator[Any]:
        # A generator function: the permutation is drawn at the first next(), not at iter(), so probing
        # iterability (Lightning does) consumes no epoch.
        import torch

        rank, world = rank_world()
        gen = epoch_generator(self.seed, self.epoch)
        self.epoch += 1
        perm = torch.randperm(self.n, generator=gen)
        if world == 1:
            yield from self._epoch(perm, gen)
            return
        for batch in self._epoch(perm, gen):
            if _rows(batch) >= world:
                yield _shard(batch, rank, world)

    def _epoch(self, perm: Any, generator: Any) -> Iterator[Any]:
        raise NotImplementedError

    def _chunks(self, perm: Any) -> Iterator[Any]:
        """Consecutive ``batch_size`` slices of ``perm``."""
        for start in range(0, len(perm), self.batch_size):
            yield perm[start:start + self.batch_size]


def _rows(batch: Any) -> int:
    return len(batch[0]) if isinstance(batch, (tuple, list)) else len(batch)


def _shard(batch: Any, rank: int, world: int) -> Any:
    """Rows rank, rank + world, ... of a batch (a tensor or a tuple/list of tensors sharing dim 0)."""
    if isinstance(batch, (tuple, list)):
        return type(batch)(t[rank::world] for t in batch)
    return batch[rank::world]
