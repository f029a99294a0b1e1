"""Hybrid: per-user normalisations equal plain-numpy references, the weight grid covers the simplex, weight 1 on
a member reproduces its ranking, the chosen weights are the validation argmax (recomputed independently), they
depend on train/valid only, and results.json records them."""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_module

from recux import registry
from recux.errors import ConfigError
from recux.plugins.models.hybrid import Hybrid, rank_rows, simplex_grid, zscore_rows
from tests._model_world import fit_context

MEMBERS = [{"name": "ease", "l2": 50.0}, {"name": "pop"}, {"name": "itemknn"}]


def ref_zscore(row):
    row = [float(x) for x in row]
    finite = [x for x in row if math.isfinite(x)]
    low = min(finite) if finite else 0.0
    row = [x if math.isfinite(x) else low for x in row]
    mu = sum(row) / len(row)
    sd = math.sqrt(sum((x - mu) ** 2 for x in row) / len(row))
    return [(x - mu) / sd if sd > 0 else 0.0 for x in row]


def ref_rank(row):
    row = [float(x) for x in row]
    finite = [x for x in row if math.isfinite(x)]
    low = min(finite) if finite else 0.0
    row = [x if math.isfinite(x) else low for x in row]
    n = len(row)
    out = []
    for x in row:
        less = sum(y < x for y in row)
        equal = sum(y == x for y in row)
        out.append((less + (equal - 1) / 2) / (n - 1))  # average of ranks less+1 .. less+equal, minus 1
    return out


def test_normalisations_match_plain_references():
    rng = np.random.default_rng(0)
    s = rng.integers(-3, 4, size=(6, 9)).astype(np.float32)  # many ties
    s[1] = 2.0  # constant row: zscore 0, rank all equal
    s[2, 3] = -np.inf
    s[3, :4] = np.nan
    np.testing.assert_allclose(zscore_rows(s), [ref_zscore(r) for r in s], atol=1e-12)
    np.testing.assert_allclose(rank_rows(s), [ref_rank(r) for r in s], atol=1e-12)


@pytest.mark.parametrize("m, step", [(2, 0.1), (3, 0.25), (4, 0.5)])
def test_simplex_grid_is_every_composition(m, step):
    grid = simplex_grid(m, step)
    parts = round(1 / step)
    expected = {c for c in itertools.product(range(parts + 1), repeat=m) if sum(c) == parts}
    assert {tuple(round(w * parts) for w in point) for point in grid} == expected
    assert len(grid) == len(expected) == math.comb(parts + m - 1, m - 1)
    assert all(abs(sum(point) - 1) < 1e-12 for point in grid)


@pytest.fixture(scope="module")
def fitted(model_world):
    ds, split = model_world
    model = Hybrid(members=MEMBERS, step=0.25)
    ctx = fit_context(ds, split)
    model.fit(ctx)
    return model, ctx


@pytest.mark.parametrize("normalisation", ["zscore", "rank"])
@pytest.mark.parametrize("which", [0, 1])
def test_weight_one_on_a_member_reproduces_its_ranking(model_world, normalisation, which):
    ds, split = model_world
    weights = [0.0, 0.0]
    weights[which] = 1.0
    model = Hybrid(members=MEMBERS[:2], normalisation=normalisation, weights=weights)
    ctx = fit_context(ds, split)
    model.fit(ctx)
    alone = registry.build("model", MEMBERS[which]["name"], {k: v for k, v in MEMBERS[which].items() if k != "name"})
    alone.fit(fit_context(ds, split))
    assert ctx.validate(model.score) == ctx.validate(alone.score)
    users = np.arange(40)
    np.testing.assert_array_equal(np.argsort(-model.score(users), axis=1, kind="stable")[:, :10],
                                  np.argsort(-np.asarray(alone.score(users)), axis=1, kind="stable")[:, :10])


def test_chosen_weights_are_the_validation_argmax(model_world, fitted):
    """Recomputed without the model: each member fitted alone, scores z-scored by the reference, summed."""
    ds, split = model_world
    model, ctx = fitted
    members = []
    for spec in MEMBERS:
        m = registry.build("model", spec["name"], {k: v for k, v in spec.items() if k != "name"})
        m.fit(fit_context(ds, split))
        members.append(m)

    def fused(w):
        return lambda users: sum(wi * np.array([ref_zscore(r) for r in np.asarray(m.score(users))])
                                 for wi, m in zip(w, members, strict=True))

    values = {w: ctx.validate(fused(w))["ndcg@10"] for w in simplex_grid(3, 0.25)}
    best = max(values, key=values.get)
    assert model.weights == best
    recorded = {tuple(p["weights"].values()): p["valid"]["ndcg@10"] for p in model.describe()["selection"]}
    assert recorded == pytest.approx(values, abs=1e-9)
    assert list(model.describe()["weights"]) == ["ease[l2=50.0]", "pop", "itemknn"]


def test_weights_and_scores_do_not_depend_on_test_data(model_world, fitted):
    ds, split = model_world
    model, _ = fitted
    rng = np.random.default_rng(1)
    other_test = split.test.subset(rng.random(len(split.test)) < 0.3)  # a different test set, same train/valid
    other = Hybrid(members=MEMBERS, step=0.25)
    other.fit(fit_context(ds, dataclasses.replace(split, test=other_test)))
    assert other.weights == model.weights
    users = np.arange(ds.n_users)
    np.testing.assert_array_equal(other.score(users), model.score(users))


def test_member_histories_stay_out_of_the_hybrid_history(fitted):
    _, ctx = fitted
    assert ctx.history == []  # the grid is in describe(); epochs of members are not the hybrid's epochs


@pytest.mark.parametrize("params, match", [
    ({"members": [{"name": "ease"}]}, "two or more"), ({"members": "ease"}, "two or more"),
    ({"members": [{"name": "ease"}, {"l2": 3}]}, "needs a 'name'"),
    ({"members": [{"name": "ease"}, {"name": "hybrid"}]}, "may not contain"),
    ({"normalisation": "minmax"}, "model.normalisation"), ({"step": 0.3}, "model.step"),
    ({"weights": [0.5, 0.6]}, "model.weights"), ({"weights": [1.0]}, "model.weights"),
])
def test_bad_settings_are_refused_with_the_setting_named(params, match):
    with pytest.raises(ConfigError, match=match):
        Hybrid(**params)


def test_no_validation_and_no_fixed_weights_is_refused(model_world):
    ds, split = model_world
    ctx = dataclasses.replace(fit_context(ds, split), validate=None)
    with pytest.raises(ConfigError, match="model.weights"):
        Hybrid(members=MEMBERS[:2]).fit(ctx)


def test_sequential_member_on_an_unordered_split_is_refused(model_world):
    ds, split = model_world
    assert not split.time_ordered
    with pytest.raises(ConfigError, match="sasrec.*time-ordered"):
        Hybrid(members=[{"name": "ease"}, {"name": "sasrec"}]).fit(fit_context(ds, split))


def test_config_matches_constructor_defaults():
    import inspect

    from omegaconf import OmegaConf

    cfg = OmegaConf.to_container(OmegaConf.load(Path(__file__).parents[1] / "conf" / "model" / "hybrid.yaml"))
    assert cfg.pop("name") == "hybrid"
    registry.get("model", "hybrid").build(cfg)
    defaults = {k: list(p.default) if isinstance(p.default, tuple) else p.default
                for k, p in inspect.signature(Hybrid).parameters.items()}
    assert cfg == {k: defaults[k] for k in cfg}


def test_results_json_records_chosen_weights_and_validation(tmp_path):
    from recux.pipeline import run_experiment

    overrides = ["dataset=synthetic", "logger=none", "model=hybrid",
                 "model.members=[{name: ease}, {name: pop}]", "model.step=0.5"]
    with initialize_config_module(config_module="recux.conf", version_base="1.3"):
        cfg = compose("config", overrides=overrides)
    run_experiment(cfg, tmp_path / "run", overrides)
    rec = json.loads((tmp_path / "run" / "results.json").read_text())
    desc = rec["model"]["describe"]
    best = max(desc["selection"], key=lambda p: p["valid"]["ndcg@10"])
    assert desc["weights"] == best["weights"]
    assert len(desc["selection"]) == 3
    assert rec["valid_metrics"]["ndcg@10"] == pytest.approx(best["valid"]["ndcg@10"])
