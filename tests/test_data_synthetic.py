"""The synthetic world: determinism, power-law popularity, preference signal, alignment after filtering."""

from __future__ import annotations

import numpy as np
import pytest

from recux import registry
from recux.preprocess import Preprocess


def make(**params):
    return registry.build("dataset", "synthetic", params).load()


@pytest.fixture(scope="module")
def world():
    return make()


def _gini(counts: np.ndarray) -> float:
    x = np.sort(counts.astype(float))
    n = len(x)
    return float((2 * np.arange(1, n + 1) - n - 1) @ x / (n * x.sum()))


def test_same_seed_identical_other_seed_differs(world):
    again = make()
    for name in ("user", "item", "rating", "timestamp"):
        np.testing.assert_array_equal(getattr(world.interactions, name), getattr(again.interactions, name))
    np.testing.assert_array_equal(world.true_scores, again.true_scores)
    assert world.item_features.equals(again.item_features) and world.user_features.equals(again.user_features)
    other = make(seed=1)
    assert len(other.interactions) != len(world.interactions) or not np.array_equal(
        other.interactions.item, world.interactions.item
    )
    assert not np.allclose(other.true_scores, world.true_scores)


def test_shapes_and_types(world):
    assert (world.n_users, world.n_items) == (500, 300)
    assert world.true_scores.shape == (500, 300) and world.true_scores.dtype == np.float32
    assert world.user_factors.shape == (500, 16) and world.item_factors.shape == (300, 16)
    inter = world.interactions
    pairs = inter.user.astype(np.int64) * world.n_items + inter.item
    assert np.unique(pairs).size == len(inter)  # sampled without replacement
    assert np.bincount(inter.user, minlength=world.n_users).min() >= 3
    assert abs(len(inter) / world.n_users - 20) < 3  # mean activity as requested
    assert set(np.unique(inter.rating).tolist()) <= {1.0, 2.0, 3.0, 4.0, 5.0}
    assert inter.timestamp.dtype == np.int64 and np.unique(inter.timestamp).size > 0.95 * len(inter)


def test_power_law_popularity(world):
    _, counts = np.unique(world.interactions.item, return_counts=True)
    counts = np.sort(counts)[::-1]
    assert counts[0] > 10 * np.median(counts)
    top10 = counts[: len(counts) // 10].sum() / counts.sum()
    assert top10 > 0.3  # the top 10% of items take far more than 10% of interactions
    flat = make(popularity_exponent=0.0)
    _, flat_counts = np.unique(flat.interactions.item, return_counts=True)
    assert _gini(flat_counts) < _gini(counts) - 0.2


def test_observed_items_are_preferred(world):
    """Users interact more with items they truly like: observed true scores exceed the user's average."""
    inter = world.interactions
    observed = world.true_scores[inter.user, inter.item]
    baseline = world.true_scores.mean(axis=1)[inter.user]
    assert observed.mean() - baseline.mean() > 0.3
    # ... and rate them higher: ratings correlate with the true preference.
    assert np.corrcoef(observed, inter.rating)[0, 1] > 0.5


def test_true_scores_match_factors(world):
    expected = world.user_factors @ world.item_factors.T / np.sqrt(16)
    np.testing.assert_allclose(world.true_scores, expected, rtol=1e-5, atol=1e-5)


def test_alignment_kept_after_k_core():
    ds = make(n_users=200, n_items=150, interactions_per_user=8)
    out = Preprocess(min_user_interactions=6, min_item_interactions=6).apply(ds)
    assert out.n_items < ds.n_items and out.n_users < ds.n_users
    np.testing.assert_allclose(
        out.true_scores, out.user_factors @ out.item_factors.T / np.sqrt(16), rtol=1e-5, atol=1e-5
    )
    # Each code still maps to the same raw generator index as before.
    old_item = {int(r): c for c, r in enumerate(ds.item_ids)}
    idx = np.array([old_item[int(r)] for r in out.item_ids])
    np.testing.assert_array_equal(out.item_factors, ds.item_factors[idx])
    assert out.item_features["item_id"].to_list() == out.item_ids.tolist()


def test_item_features_follow_factors(world):
    """Items sharing a genre are closer in latent space than random pairs (content carries signal)."""
    feats = world.item_features
    assert feats["item_id"].to_list() == world.item_ids.tolist()
    first = np.array([g[0] for g in feats["genres"].to_list()])
    v = world.item_factors / np.linalg.norm(world.item_factors, axis=1, keepdims=True)
    sim = v @ v.T
    same = first[:, None] == first[None, :]
    np.fill_diagonal(same, False)
    assert sim[same].mean() > sim[~same].mean() + 0.05
    for text, genres in zip(feats["text"].to_list(), feats["genres"].to_list(), strict=True):
        assert all(g in text for g in genres)
