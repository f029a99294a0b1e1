"""iALS (implicit's ALS): the item factors of the last sweep solve the confidence-weighted ridge problem the
module documents (checked against a dense numpy solve), the validation-best sweep is the one kept, it learns
a real signal on the synthetic world, the seed fixes the result, and it survives save/load."""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import pytest

from recux import registry  # noqa: E402
from recux.errors import ConfigError  # noqa: E402
from recux.plugins.models.ials import IALS  # noqa: E402
from recux.plugins.models.popularity import MostPopular  # noqa: E402
from tests._model_world import fit_context, heldout_ndcg

FAST = dict(factors=16, regularization=5.0, alpha=3.0, iterations=15, patience=3, num_threads=1)


@pytest.fixture(scope="module")
def world(model_world):
    return model_world


@pytest.fixture(scope="module")
def fitted(world):
    ds, split = world
    ctx = fit_context(ds, split, seed=0)
    model = IALS(**FAST)
    model.fit(ctx)
    return model, ctx


def test_item_factors_solve_the_weighted_ridge_problem(world):
    """min sum_ui c_ui (p_ui - x_u.y_i)^2 + reg (|x|^2 + |y|^2) with c = alpha on observed pairs (p = 1)
    and 1 elsewhere (p = 0): given the user factors, each item's factors are a weighted ridge solution."""
    ds, split = world
    alpha, reg = 4.0, 2.0
    model = IALS(factors=8, regularization=reg, alpha=alpha, iterations=3, use_cg=False, num_threads=1)
    ctx = fit_context(ds, split, seed=1)
    ctx.validate = None  # no validation: the last sweep (items solved last) is kept
    model.fit(ctx)
    x_u = model.user_factors.astype(np.float64)
    p = split.train.csr().toarray()
    conf = np.where(p > 0, alpha, 1.0)
    expected = np.empty_like(model.item_factors, dtype=np.float64)
    for i in range(p.shape[1]):
        a = (x_u * conf[:, i, None]).T @ x_u + reg * np.eye(x_u.shape[1])
        expected[i] = np.linalg.solve(a, (x_u * conf[:, i, None]).T @ p[:, i])
    np.testing.assert_allclose(model.item_factors, expected, rtol=2e-3, atol=2e-4)
    np.testing.assert_allclose(model.score(np.array([3, 1])), x_u[[3, 1]] @ model.item_factors.T, rtol=1e-5)
    assert len(ctx.history) == 3 and model.best_iteration == 2


def test_ials_beats_pop(world, fitted):
    ds, split = world
    pop = MostPopular()
    pop.fit(fit_context(ds, split))
    assert heldout_ndcg(fitted[0], split) > heldout_ndcg(pop, split) + 0.05


def test_ials_keeps_the_validation_best_sweep(fitted):
    model, ctx = fitted
    scored = [h for h in ctx.history if "val/ndcg@10" in h]
    best = max(scored, key=lambda h: h["val/ndcg@10"])
    assert model.best_iteration == best["epoch"]
    assert ctx.validate(model.score)["ndcg@10"] == pytest.approx(best["val/ndcg@10"], abs=1e-12)
    # stopped after `patience` validations without improvement (or at the budget)
    assert len(ctx.history) == min(FAST["iterations"], best["epoch"] + 1 + FAST["patience"])


def test_ials_same_seed_same_scores_and_save_load(world, fitted, tmp_path):
    ds, split = world
    model, _ = fitted
    again = IALS(**FAST)
    again.fit(fit_context(ds, split, seed=0))
    other = IALS(**FAST)
    other.fit(fit_context(ds, split, seed=1))
    users = np.arange(50)
    np.testing.assert_array_equal(again.score(users), model.score(users))
    assert not np.allclose(other.score(users), model.score(users))
    model.save(tmp_path / "ials.pkl")
    np.testing.assert_array_equal(IALS.load(tmp_path / "ials.pkl").score(users), model.score(users))


@pytest.mark.parametrize("kw", [dict(factors=0), dict(alpha=0.0), dict(regularization=-1.0), dict(iterations=0)])
def test_ials_rejects_bad_parameters(kw):
    with pytest.raises(ConfigError, match="ials"):
        IALS(**kw)


def test_ials_config_matches_constructor_defaults():
    from omegaconf import OmegaConf

    cfg = OmegaConf.to_container(OmegaConf.load(Path(__file__).parents[1] / "conf" / "model" / "ials.yaml"))
    assert cfg.pop("name") == "ials"
    info = registry.get("model", "ials")
    info.build(cfg)
    defaults = {k: p.default for k, p in inspect.signature(info.obj).parameters.items()}
    assert cfg == {k: defaults[k] for k in cfg}
