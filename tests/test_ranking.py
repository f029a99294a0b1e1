"""Top-k ranking: the host kernel (exclusions applied inside it, blocks skipped by their maximum) and the torch
device path agree with a plain sort by (score descending, item code ascending), ties and padding included."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recux.ranking import mask_rows, rank_topk, topk_from_scores


def reference_topk(scores: np.ndarray, k: int, exclude: sp.csr_matrix | None, rows: np.ndarray):
    """The tie rule by a sort: float32 scores, higher first, equal scores by lower item code; -inf, NaN and
    excluded items left out; -1 / -inf padding."""
    scores = np.asarray(scores, dtype=np.float32)
    n, m = scores.shape
    items = np.full((n, k), -1, dtype=np.int32)
    vals = np.full((n, k), -np.inf, dtype=np.float32)
    for r in range(n):
        banned = set() if exclude is None else set(exclude[rows[r]].indices.tolist())
        ok = [j for j in range(m) if scores[r, j] > -np.inf and j not in banned]
        ok.sort(key=lambda j: (-scores[r, j], j))
        items[r, :len(ok[:k])] = ok[:k]
        vals[r, :len(ok[:k])] = scores[r, ok[:k]]
    return items, vals


def tied_world(seed: int, n_users: int = 40, n_items: int = 300, levels: int = 4):
    """Scores with a handful of distinct values (ties everywhere, also across the k-th place), some -inf and
    NaN, and a random exclusion matrix over all users."""
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, levels, (n_users, n_items)).astype(np.float32)
    scores[rng.random(scores.shape) < 0.05] = -np.inf
    scores[rng.random(scores.shape) < 0.02] = np.nan
    scores[0, :] = -np.inf  # a user with nothing eligible
    scores[1, 5:] = -np.inf  # a user with fewer eligible items than k
    exclude = sp.random(n_users + 7, n_items, density=0.1, random_state=seed, format="csr")
    exclude.data[:] = 1.0
    return scores, exclude


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("k", [1, 7, 20])
def test_kernel_with_exclusions_follows_the_tie_rule(seed, k):
    scores, exclude = tied_world(seed)
    rows = np.random.default_rng(seed).permutation(exclude.shape[0])[:len(scores)]
    want = reference_topk(scores, k, exclude, rows)
    got = topk_from_scores(scores, k, exclude=exclude, rows=rows)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])
    # the kernel only reads the block; masking a copy and ranking it gives the same lists
    masked = scores.copy()
    mask_rows(masked, rows, exclude)
    np.testing.assert_array_equal(topk_from_scores(masked, k)[0], want[0])


def test_unsorted_exclusion_rows_are_handled():
    scores, exclude = tied_world(5)
    shuffled = exclude.copy()
    for r in range(shuffled.shape[0]):  # reverse each row's indices: a valid but unsorted CSR
        lo, hi = shuffled.indptr[r], shuffled.indptr[r + 1]
        shuffled.indices[lo:hi] = shuffled.indices[lo:hi][::-1].copy()
    shuffled.has_sorted_indices = False
    rows = np.arange(len(scores))
    np.testing.assert_array_equal(topk_from_scores(scores, 10, shuffled, rows)[0],
                                  reference_topk(scores, 10, exclude, rows)[0])


def test_continuous_scores_and_float64_rounding_match_the_reference():
    rng = np.random.default_rng(3)
    scores = rng.standard_normal((30, 1000))
    scores[:, ::7] = 0.5 + 1e-12  # equal once rounded to float32: the host path ranks float32 scores
    scores[:, ::11] = 0.5
    got = rank_topk(lambda u: scores[u], np.arange(30), 20, batch_size=8)
    want = reference_topk(scores, 20, None, np.arange(30))
    np.testing.assert_array_equal(got[0], want[0])
    torch = pytest.importorskip("torch")  # and the device path, mostly without ties across the cut
    device = rank_topk(lambda u: torch.from_numpy(scores[u]), np.arange(30), 20, batch_size=8, device_topk=True)
    np.testing.assert_array_equal(device[0], want[0])
    np.testing.assert_array_equal(device[1], want[1])


@pytest.mark.parametrize("batch_size", [1, 6, 64])
def test_rank_topk_device_path_on_cpu_tensors_equals_the_kernel(batch_size):
    torch = pytest.importorskip("torch")
    scores, exclude = tied_world(7, n_users=50)
    users = np.random.default_rng(1).permutation(exclude.shape[0])[:30]
    table = {int(u): scores[i] for i, u in enumerate(users)}

    def score_fn(batch):
        return torch.from_numpy(np.stack([table[int(u)] for u in batch]))

    host = rank_topk(lambda b: score_fn(b).numpy(), users, 12, exclude=exclude, batch_size=batch_size)
    device = rank_topk(score_fn, users, 12, exclude=exclude, batch_size=batch_size, device_topk=True)
    want = reference_topk(scores[:30], 12, exclude, users)
    for got in (host, device):
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])


def test_device_path_with_k_beyond_the_catalogue_pads_and_leaves_the_block_alone():
    torch = pytest.importorskip("torch")
    from recux.ranking_torch import device_topk

    block = torch.tensor([[1.0, 3.0, 3.0, float("nan")], [2.0, 2.0, 2.0, 2.0]], dtype=torch.float64)
    before = block.clone()
    items, vals = device_topk(block, 6, None, np.arange(2))
    want = reference_topk(block.numpy(), 6, None, np.arange(2))
    np.testing.assert_array_equal(items, want[0])
    np.testing.assert_array_equal(vals, want[1])
    assert items.dtype == np.int32 and vals.dtype == np.float32
    assert torch.equal(torch.nan_to_num(block), torch.nan_to_num(before))  # masked a copy, not the model's block


def test_equal_metrics_from_both_paths():
    torch = pytest.importorskip("torch")
    from recux.kernels.accuracy import accuracy_metrics

    rng = np.random.default_rng(11)
    scores = np.round(rng.random((200, 80)), 1).astype(np.float32)  # many ties
    truth = sp.random(200, 80, density=0.08, random_state=2, format="csr")
    truth.data[:] = 1
    users = np.flatnonzero(np.diff(truth.indptr) > 0)
    train = sp.random(200, 80, density=0.1, random_state=3, format="csr")
    host = rank_topk(lambda b: scores[b], users, 10, exclude=train, batch_size=32)
    device = rank_topk(lambda b: torch.from_numpy(scores[b]), users, 10, exclude=train, batch_size=32,
                       device_topk=True)
    gt = truth[users]
    m_host = accuracy_metrics(host[0], gt.indptr, gt.indices, (5, 10))
    m_device = accuracy_metrics(device[0], gt.indptr, gt.indices, (5, 10))
    for key, vals in m_host.items():
        np.testing.assert_array_equal(vals, m_device[key], err_msg=key)
