"""Core helpers shared across the code base: the epoch batch base (seeded permutation, rank slicing) under
its three iterators, rank discovery, seeding, and splitmix64."""

from __future__ import annotations

import random

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from recux.distributed import global_rank, rank_world  # noqa: E402
from recux.hashing import splitmix64  # noqa: E402
from recux.plugins.models._multvae_net import UserRowBatches  # noqa: E402
from recux.seeding import seed_everything  # noqa: E402
from recux.sequences import SequenceBatches  # noqa: E402
from recux.training import PairBatches  # noqa: E402

N = 103  # odd: the last batch (3 rows) splits unevenly between two ranks


def _iterators():
    rng = np.random.default_rng(0)
    users, items = np.arange(N), rng.integers(0, 50, N)
    rows = np.arange(N)[:, None] + 1
    indptr = np.arange(N + 1)  # user u has one item: item u
    yield "pairs", lambda: PairBatches(users, items, 50, batch_size=10, seed=3), lambda b: b[0]
    yield "sequences", lambda: SequenceBatches(rows, batch_size=10, seed=3), lambda b: b[:, 0] - 1
    yield ("user rows", lambda: UserRowBatches(indptr, np.arange(N), N, batch_size=10, seed=3),
           lambda b: b.argmax(1))


def _epoch_examples(batches, key):
    return torch.cat([key(b) for b in batches]).tolist()


@pytest.mark.parametrize("name", ["pairs", "sequences", "user rows"])
def test_two_ranks_take_alternate_rows_of_each_single_process_batch(name, monkeypatch):
    """batch_size is the global batch: rank r takes rows r, r + 2, ... of every single-process batch (the last
    batch, 3 rows, splits 2 + 1), so the ranks' steps together are the single-process steps."""
    make, key = next((m, k) for n, m, k in _iterators() if n == name)
    single = [key(b).tolist() for b in make()]
    assert sorted(sum(single, [])) == list(range(N)) and sum(single, []) != list(range(N))
    for rank in (0, 1):
        monkeypatch.setenv("RANK", str(rank))
        monkeypatch.setenv("WORLD_SIZE", "2")
        batches = make()
        assert len(batches) == len(single) == -(-N // 10)
        assert [key(b).tolist() for b in batches] == [rows[rank::2] for rows in single]


def test_every_iterator_repeats_per_seed_and_epoch_and_counts_its_batches():
    for _, make, _ in _iterators():
        a, b = make(), make()
        first_a, first_b = [list(x) for x in a], [list(x) for x in b]
        assert len(first_a) == len(a) == -(-N // 10)
        for x, y in zip(first_a, first_b, strict=True):
            assert all(torch.equal(p, q) for p, q in zip(x if isinstance(x, list) else [x],
                                                         y if isinstance(y, list) else [y], strict=True))
        second = [list(x) for x in a]  # the next epoch is another permutation
        assert any(not torch.equal(torch.as_tensor(p[0]), torch.as_tensor(q[0]))
                   for p, q in zip(first_a, second, strict=True))


def test_rank_world_reads_the_launcher_environment(monkeypatch):
    for var in ("RANK", "LOCAL_RANK", "SLURM_PROCID", "WORLD_SIZE", "SLURM_NTASKS"):
        monkeypatch.delenv(var, raising=False)
    assert rank_world() == (0, 1) and global_rank() == 0
    monkeypatch.setenv("SLURM_PROCID", "3")
    monkeypatch.setenv("SLURM_NTASKS", "4")
    assert rank_world() == (3, 4) and global_rank() == 3


def test_seed_everything_matches_lightnings_seeding():
    import pytorch_lightning as pl

    def draws():
        return random.random(), float(np.random.rand()), float(torch.rand(1))

    pl.seed_everything(12, workers=True, verbose=False)
    expected = draws()
    random.seed(0), np.random.seed(0), torch.manual_seed(0)
    seed_everything(12)
    assert draws() == expected
    seed_everything(13)
    assert draws() != expected


def test_splitmix64_matches_the_reference_on_python_integers():
    def reference(x: int) -> int:
        m = (1 << 64) - 1
        z = (x + 0x9E3779B97F4A7C15) & m
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & m
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & m
        return z ^ (z >> 31)

    xs = [0, 1, 2, 12345, (1 << 63) + 7, (1 << 64) - 1]
    got = splitmix64(np.array(xs, dtype=np.uint64))
    assert [int(v) for v in got] == [reference(x) for x in xs]
    assert reference(0) == 0xE220A8397B1DCDAF  # splitmix64's first output from state 0 (Vigna's code)
