"""EASE: the weights equal the constrained least-squares solution computed column by column (a ridge
regression of item j on every other item), the diagonal is zero, scores are user rows times B, it learns
a real signal on the synthetic world, and it survives save/load."""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from recux import registry  # noqa: E402
from recux.errors import ConfigError  # noqa: E402
from recux.plugins.models.ease import EASE, ease_weights  # noqa: E402
from recux.plugins.models.popularity import MostPopular  # noqa: E402
from tests._model_world import fit_context, heldout_ndcg


@pytest.fixture(scope="module")
def world(model_world):
    return model_world


@pytest.fixture(scope="module")
def fitted(world):
    ds, split = world
    model = EASE(l2=50.0)
    model.fit(fit_context(ds, split))
    return model


def per_column_reference(x: np.ndarray, l2: float, cols=None) -> np.ndarray:
    """argmin ||X - XB||^2 + l2 ||B||^2 s.t. diag(B) = 0, one column at a time: column j is the ridge
    regression of X[:, j] on the other columns (B[j, j] is fixed at 0, so it drops out).
    Returns the columns ``cols`` (default: all) of B."""
    n = x.shape[1]
    cols = np.arange(n) if cols is None else np.asarray(cols)
    b = np.zeros((n, len(cols)))
    for c, j in enumerate(cols):
        others = np.delete(np.arange(n), j)
        a = x[:, others]
        b[others, c] = np.linalg.solve(a.T @ a + l2 * np.eye(n - 1), a.T @ x[:, j])
    return b


@pytest.mark.parametrize("l2", [0.5, 3.0, 40.0])
def test_weights_equal_per_column_constrained_least_squares(l2):
    rng = np.random.default_rng(int(l2 * 10))
    x = (rng.random((40, 15)) < 0.3).astype(float)
    x[:, 4] = 0.0  # an item nobody has: its column and row of B must be zero
    b = ease_weights(sp.csr_matrix(x), l2)
    np.testing.assert_allclose(b, per_column_reference(x, l2), rtol=1e-9, atol=1e-12)
    assert np.all(np.diag(b) == 0.0)
    assert np.all(b[4] == 0.0) and np.all(b[:, 4] == 0.0)


def test_fit_scores_are_train_rows_times_weights_and_zero_diagonal(world, fitted):
    _, split = world
    model = fitted
    assert np.all(np.diag(model.weights) == 0.0)
    x = split.train.csr().toarray().astype(np.float64)
    cols = np.random.default_rng(0).choice(split.n_items, 12, replace=False)
    b = per_column_reference(x, 50.0, cols)  # 12 of the 200 columns keep the test fast
    users = np.array([5, 0, 299, 17])
    s = model.score(users)
    assert s.shape == (4, split.n_items) and s.dtype == np.float32
    np.testing.assert_allclose(s[:, cols], x[users] @ b, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(model.weights[:, cols], b, rtol=1e-4, atol=1e-6)


def test_ease_beats_pop(world, fitted):
    ds, split = world
    pop = MostPopular()
    pop.fit(fit_context(ds, split))
    assert heldout_ndcg(fitted, split) > heldout_ndcg(pop, split) + 0.05


def test_ease_save_load_roundtrip(fitted, tmp_path):
    model = fitted
    model.save(tmp_path / "ease.pkl")
    loaded = EASE.load(tmp_path / "ease.pkl")
    users = np.arange(30)
    np.testing.assert_array_equal(loaded.score(users), model.score(users))


@pytest.mark.parametrize("l2", [0.0, -1.0])
def test_ease_rejects_non_positive_l2(l2):
    with pytest.raises(ConfigError, match="l2 must be > 0"):
        EASE(l2=l2)


def test_ease_config_matches_constructor_defaults():
    from omegaconf import OmegaConf

    cfg = OmegaConf.to_container(OmegaConf.load(Path(__file__).parents[1] / "conf" / "model" / "ease.yaml"))
    assert cfg.pop("name") == "ease"
    info = registry.get("model", "ease")
    assert info.meta["training"] == "closed_form"
    info.build(cfg)
    defaults = {k: p.default for k, p in inspect.signature(info.obj).parameters.items()}
    assert cfg == {k: defaults[k] for k in cfg}
