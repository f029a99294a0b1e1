"""The candidate sampler of the synthetic world: valid, repeatable data in integer codes, close to the exact
sampler's distribution on a world small enough for both."""

from __future__ import annotations

import numpy as np
import pytest

from recux.plugins.datasets.synthetic import SyntheticDataset

SMALL = dict(n_users=400, n_items=120, interactions_per_user=15.0, seed=2)


def true_of_observed(ds) -> np.ndarray:
    it = ds.interactions
    return (ds.user_factors[it.user] * ds.item_factors[it.item]).sum(1) / np.sqrt(ds.user_factors.shape[1])


def test_candidate_world_is_valid_and_repeatable():
    a = SyntheticDataset(**SMALL, sampler="candidates").load()
    b = SyntheticDataset(**SMALL, sampler="candidates").load()
    it = a.interactions
    for f in ("user", "item", "rating", "timestamp"):
        np.testing.assert_array_equal(getattr(it, f), getattr(b.interactions, f))
    assert it.user.dtype == np.int32 and it.item.dtype == np.int32 and a.true_scores is None
    key = it.user.astype(np.int64) * it.n_items + it.item
    assert len(np.unique(key)) == len(key)  # each (user, item) once
    same_user = np.diff(it.user) == 0
    assert np.all(np.diff(it.user) >= 0) and np.all(np.diff(it.timestamp)[same_user] >= 0)
    assert it.user_counts().min() >= 3 and set(np.unique(it.rating)) <= {1, 2, 3, 4, 5}
    # codes follow the raw ids, and the latent state and features are aligned with them
    np.testing.assert_array_equal(a.user_features["user_id"].to_numpy(), a.user_ids)
    np.testing.assert_array_equal(a.item_features["item_id"].to_numpy(), a.item_ids)
    full = SyntheticDataset(**SMALL, sampler="candidates")
    assert a.info["generator"] == full.settings() and a.info["generator"]["sampler"] == "candidates"


def test_candidate_sampler_approaches_the_exact_one_as_oversample_grows():
    exact = SyntheticDataset(**SMALL).load()
    gaps = {}
    for oversample in (4.0, 32.0):
        approx = SyntheticDataset(**SMALL, sampler="candidates", oversample=oversample).load()
        assert len(approx.interactions) == len(exact.interactions)  # every user got their k items
        gaps[oversample] = abs(true_of_observed(approx).mean() - true_of_observed(exact).mean())
        pop_e = exact.interactions.item_counts()
        assert np.corrcoef(pop_e, approx.interactions.item_counts())[0, 1] > 0.95  # same popularity skew
    # the preference signal of the observed items converges to the exact sampler's
    assert gaps[32.0] < 0.05 and gaps[32.0] < gaps[4.0]
    uniform = SyntheticDataset(**SMALL, popularity_exponent=0.0, sampler="candidates").load()
    assert np.corrcoef(pop_e, uniform.interactions.item_counts())[0, 1] < 0.9  # the check can fail


def test_bad_sampler_settings_are_refused():
    with pytest.raises(ValueError, match="dataset.sampler"):
        SyntheticDataset(sampler="dense")
    with pytest.raises(ValueError, match="dataset.oversample"):
        SyntheticDataset(sampler="candidates", oversample=0.5)
