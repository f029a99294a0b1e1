"""Sequence data path: chronological per-user sequences and training windows match a straightforward
per-user Python construction, next-item targets never appear in their own input, masking hides exactly
the labels, and batches cover every row once per epoch, reproducibly."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recux.data import Interactions
from recux.errors import ConfigError
from recux.sequences import SequenceBatches, chronological, last_items, mask_items, windows


def random_log(seed: int = 0, n_users: int = 30, n_items: int = 50, ties: bool = True) -> Interactions:
    """Users with 0-40 distinct items; coarse timestamps so many events share a second."""
    rng = np.random.default_rng(seed)
    users, items = [], []
    for u in range(n_users):
        n = int(rng.integers(0, 41)) if u % 7 else 0  # some users have no events
        users += [u] * n
        items += list(rng.choice(n_items, n, replace=False))
    times = rng.integers(0, 8 if ties else 10**9, len(users))
    perm = rng.permutation(len(users))
    return Interactions(user=np.asarray(users)[perm], item=np.asarray(items)[perm], n_users=n_users,
                        n_items=n_items, timestamp=times[perm])


def reference_histories(inter: Interactions) -> list[list[int]]:
    """Per user, tokens (item + 1) ordered by timestamp, equal timestamps in row order (plain Python)."""
    hist: list[list[tuple[int, int, int]]] = [[] for _ in range(inter.n_users)]
    for row, (u, i, t) in enumerate(zip(inter.user, inter.item, inter.timestamp, strict=True)):
        hist[u].append((int(t), row, int(i) + 1))
    return [[tok for _, _, tok in sorted(h)] for h in hist]


@pytest.mark.parametrize("max_len", [1, 5, 50])
def test_last_items_are_the_latest_items_left_padded(max_len):
    inter = random_log()
    ref = reference_histories(inter)
    got = last_items(inter, max_len)
    assert got.shape == (inter.n_users, max_len)
    for u, h in enumerate(ref):
        tail = h[-max_len:]
        assert got[u].tolist() == [0] * (max_len - len(tail)) + tail


def test_equal_timestamps_keep_row_order():
    inter = Interactions(user=[0, 0, 0, 0], item=[3, 1, 2, 0], n_users=1, n_items=4, timestamp=[5, 5, 1, 5])
    assert last_items(inter, 4).tolist() == [[3, 4, 2, 1]]  # item 2 first (t=1), then rows 0, 1, 3
    tokens, starts, counts = chronological(inter)
    assert tokens.tolist() == [3, 4, 2, 1] and starts.tolist() == [0] and counts.tolist() == [4]


@pytest.mark.parametrize("width,stride", [(6, None), (6, 2), (11, 10), (41, None)])
def test_windows_match_a_per_user_construction(width, stride):
    inter = random_log(seed=1)
    rows, users = windows(inter, width, stride=stride, min_items=2)
    step = width - 1 if stride is None else stride
    expected = []
    for u, h in enumerate(reference_histories(inter)):
        end = len(h)
        while end > 0:
            w = h[max(0, end - width):end]
            if len(w) >= 2:
                expected.append((u, [0] * (width - len(w)) + w))
            if end - width <= 0:
                break
            end -= step
    assert [(int(u), r.tolist()) for u, r in zip(users, rows, strict=True)] == expected


def test_default_windows_make_every_item_but_the_first_a_target_exactly_once():
    inter = random_log(seed=2)
    rows, users = windows(inter, 6)
    ref = reference_histories(inter)
    for u, h in enumerate(ref):
        targets = []
        for r in rows[users == u]:
            inp, tgt = r[:-1], r[1:]
            targets += [int(t) for a, t in zip(inp, tgt, strict=True) if a and t]
        assert sorted(targets) == sorted(h[1:])


def test_next_item_inputs_never_contain_their_target():
    """In a window, the input at position t holds only items strictly earlier than target t."""
    inter = random_log(seed=3)
    rank = {}
    for u, h in enumerate(reference_histories(inter)):
        for pos, tok in enumerate(h):
            rank[u, tok] = pos
    rows, users = windows(inter, 8, stride=3)
    for u, r in zip(users, rows, strict=True):
        inp, tgt = r[:-1], r[1:]
        for t in range(len(tgt)):
            if tgt[t] == 0:
                continue
            seen = [rank[u, int(x)] for x in inp[:t + 1] if x]
            assert tgt[t] not in inp[:t + 1]
            assert all(p < rank[u, int(tgt[t])] for p in seen)


def test_windows_validate_arguments():
    inter = random_log()
    with pytest.raises(ConfigError):
        windows(inter, 1)
    with pytest.raises(ConfigError):
        windows(inter, 5, stride=0)
    with pytest.raises(ConfigError):
        last_items(inter, 0)


def test_mask_items_hides_exactly_the_labels():
    rows = torch.as_tensor(last_items(random_log(seed=4), 20))
    gen = torch.Generator().manual_seed(0)
    mask_token = 999
    inputs, labels = mask_items(rows, gen, prob=0.3, mask_token=mask_token)
    masked = inputs == mask_token
    assert torch.equal(masked, labels != 0)  # a label exactly where the input is [MASK]
    assert torch.equal(labels[masked], rows[masked])  # the label is the hidden item
    assert torch.equal(inputs[~masked], rows[~masked])  # everything else untouched
    assert not masked[rows == 0].any()  # padding is never a target
    nonempty = (rows != 0).any(1)
    assert masked[nonempty].any(1).all() and not masked[~nonempty].any()
    rate = masked.sum().item() / (rows != 0).sum().item()
    assert 0.22 < rate < 0.38
    for r in range(len(rows)):  # the hidden item is not visible anywhere else in its row's input
        for lab in labels[r][labels[r] != 0].tolist():
            assert lab not in inputs[r].tolist()


def test_force_last_rows_mask_only_their_last_item():
    rows = torch.as_tensor(last_items(random_log(seed=6, n_users=400), 12))
    nonempty = (rows != 0).any(1)
    gen = torch.Generator().manual_seed(1)
    inputs, labels = mask_items(rows, gen, prob=0.3, mask_token=999, last_prob=1.0)
    assert torch.equal(labels[:, :-1], torch.zeros_like(labels[:, :-1]))
    assert torch.equal(labels[:, -1], torch.where(nonempty, rows[:, -1], 0))
    inputs, labels = mask_items(rows, gen, prob=0.3, mask_token=999, last_prob=0.5)
    last_only = ((labels != 0).sum(1) == 1) & (labels[:, -1] != 0) & nonempty
    frac = last_only.sum().item() / nonempty.sum().item()
    assert 0.4 < frac < 0.7  # half forced, plus random rows that happened to mask only their last item
    assert torch.equal(inputs == 999, labels != 0)


def test_batches_cover_every_row_once_per_epoch_and_repeat_under_the_seed():
    rows = np.arange(103 * 4).reshape(103, 4)
    batches = SequenceBatches(rows, batch_size=10, seed=7)
    assert len(batches) == 11
    epoch1 = torch.cat(list(batches))
    epoch2 = torch.cat(list(batches))
    assert sorted(epoch1[:, 0].tolist()) == sorted(rows[:, 0].tolist())
    assert sorted(epoch2[:, 0].tolist()) == sorted(rows[:, 0].tolist())
    assert not torch.equal(epoch1, epoch2)  # a fresh order each epoch
    again = SequenceBatches(rows, batch_size=10, seed=7)
    assert torch.equal(torch.cat(list(again)), epoch1)
    assert torch.equal(torch.cat(list(again)), epoch2)
    other = SequenceBatches(rows, batch_size=10, seed=8)
    assert not torch.equal(torch.cat(list(other)), epoch1)


def test_batches_apply_a_seeded_transform():
    rows = last_items(random_log(seed=5), 10)

    def run(seed):
        b = SequenceBatches(rows, batch_size=8, seed=seed,
                            transform=lambda x, g: mask_items(x, g, prob=0.5, mask_token=77))
        return [t for batch in b for t in batch]

    a, b, c = run(0), run(0), run(1)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(torch.equal(x, y) for x, y in zip(a, c, strict=True))
