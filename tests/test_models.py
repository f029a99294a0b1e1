"""Built-in models: each learns a real signal on a synthetic latent-factor world (beats MostPopular on
held-out NDCG@10; MostPopular beats Random), ItemKNN matches a dense numpy cosine, and fitted models
are deterministic under the seed and survive save/load."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from recux import registry  # noqa: E402
from recux.plugins.models.itemknn import ItemKNN, cosine_topk  # noqa: E402
from recux.plugins.models.popularity import MostPopular  # noqa: E402
from recux.plugins.models.random import RandomModel  # noqa: E402
from tests._model_world import fit_context, heldout_ndcg

# Small, fast BPR settings for the test world (6k training pairs).
BPR_FAST = dict(batch_size=256, lr=0.01, init_std=0.01, max_epochs=12, patience=4, num_threads=1)


@pytest.fixture(scope="module")
def world(model_world):
    return model_world


@pytest.fixture(scope="module")
def pop_ndcg(world):
    ds, split = world
    model = MostPopular()
    model.fit(fit_context(ds, split))
    return heldout_ndcg(model, split)


def _fit(model, world, seed=0, **kw):
    ds, split = world
    ctx = fit_context(ds, split, seed=seed, **kw)
    model.fit(ctx)
    return model, ctx


# ---------------------------------------------------------------- registration


def test_models_are_registered_with_their_training_kind():
    names = ("random", "pop", "itemknn", "bpr")
    kinds = {name: registry.get("model", name).meta["training"] for name in names}
    assert kinds == {"random": "none", "pop": "closed_form", "itemknn": "closed_form", "bpr": "lightning"}


def test_importing_model_plugins_does_not_import_torch():
    import subprocess

    code = "import sys, recux.plugins.models, recux.plugins.finetune; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ---------------------------------------------------------------- random and popularity


def test_random_is_deterministic_per_seed_and_independent_of_batching(world):
    a, _ = _fit(RandomModel(), world, seed=3)
    b, _ = _fit(RandomModel(), world, seed=3)
    c, _ = _fit(RandomModel(), world, seed=4)
    users = np.arange(40)
    sa = a.score(users)
    assert sa.shape == (40, a.n_items) and sa.dtype == np.float32
    np.testing.assert_array_equal(sa, b.score(users))
    np.testing.assert_array_equal(sa[[7, 2]], a.score(np.array([7, 2])))  # same row whatever the batch
    assert not np.array_equal(sa, c.score(users))
    assert 0.0 <= sa.min() and sa.max() < 1.0
    assert abs(sa.mean() - 0.5) < 0.02  # 8000 uniform draws: sd of the mean ~0.003
    # each user's ranking is a different permutation
    assert len({tuple(np.argsort(r)) for r in sa}) == 40


def test_random_explicit_seed_overrides_run_seed(world):
    a, _ = _fit(RandomModel(seed=11), world, seed=0)
    b, _ = _fit(RandomModel(seed=11), world, seed=5)
    np.testing.assert_array_equal(a.score(np.arange(5)), b.score(np.arange(5)))


def test_pop_scores_are_training_counts(world):
    model, _ = _fit(MostPopular(), world)
    _, split = world
    counts = Counter(split.train.item.tolist())
    expected = np.array([counts.get(i, 0) for i in range(split.n_items)], dtype=np.float32)
    scores = model.score(np.array([0, 5, 9]))
    for row in scores:
        np.testing.assert_array_equal(row, expected)
    scores[0, 0] = -np.inf  # callers mask in place: the block must be writable and not shared
    assert model.score(np.array([0]))[0, 0] == expected[0]


def test_pop_beats_random(world, pop_ndcg):
    rnd, _ = _fit(RandomModel(), world)
    assert pop_ndcg > 2 * heldout_ndcg(rnd, world[1])


# ---------------------------------------------------------------- ItemKNN


def _dense_knn(x: np.ndarray, k: int, shrink: float) -> np.ndarray:
    """Independent reference: cosine with shrink, per target column j keep the k best neighbours i
    (higher similarity first, then lower item code), positive similarities only, no self-similarity."""
    x = x.astype(np.float64)
    n = x.shape[1]
    norms = np.sqrt((x ** 2).sum(axis=0))
    denom = np.outer(norms, norms) + shrink
    sim = np.zeros((n, n))
    ok = denom > 0
    sim[ok] = (x.T @ x)[ok] / denom[ok]
    w = np.zeros((n, n))
    for j in range(n):
        cand = sorted((i for i in range(n) if i != j and sim[i, j] > 0), key=lambda i: (-sim[i, j], i))
        for i in cand[:k]:
            w[i, j] = sim[i, j]
    return w


def _tiny_matrix(seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = (rng.random((25, 10)) < 0.3).astype(np.float32)
    # duplicated columns create exact similarity ties that k must cut through; an empty column too
    x = np.hstack([x, x[:, [2, 2, 5]], np.zeros((25, 1), np.float32)])
    return x


@pytest.mark.parametrize("k,shrink", [(3, 0.0), (3, 2.0), (1, 0.5), (100, 10.0)])
def test_itemknn_similarity_matches_dense_reference(k, shrink):
    x = _tiny_matrix()
    expected = _dense_knn(x, k, shrink)
    w = cosine_topk(sp.csr_matrix(x), k, shrink).toarray()
    np.testing.assert_allclose(w, expected, rtol=1e-6, atol=1e-7)
    # a tiny block budget exercises the blocked path: same answer
    w_blocked = cosine_topk(sp.csr_matrix(x), k, shrink, block_bytes=1).toarray()
    np.testing.assert_array_equal(w_blocked, w)
    if k < 100:
        assert ((w > 0).sum(axis=0) <= k).all()


def test_itemknn_reference_has_ties_at_the_cut():
    """Guard that the tie-breaking case above is really exercised."""
    x = _tiny_matrix().astype(np.float64)
    norms = np.sqrt((x ** 2).sum(axis=0))
    sim = x.T @ x / (np.outer(norms, norms) + 0.0 + 1e-300)
    np.fill_diagonal(sim, 0)
    has_tie = any(np.sort(sim[:, j])[::-1][2] == np.sort(sim[:, j])[::-1][3] > 0 for j in range(x.shape[1]))
    assert has_tie


def test_itemknn_scores_are_user_rows_times_similarity(world):
    ds, split = world
    model, _ = _fit(ItemKNN(k=20, shrink=5.0), world)
    x = split.train.csr().toarray()
    w = _dense_knn(x, 20, 5.0)
    users = np.array([0, 3, 17, 299])
    np.testing.assert_allclose(model.score(users), x[users] @ w, rtol=1e-5, atol=1e-6)


def test_itemknn_beats_pop(world, pop_ndcg):
    model, _ = _fit(ItemKNN(), world)
    assert heldout_ndcg(model, world[1]) > pop_ndcg + 0.05


def test_itemknn_save_load_roundtrip(world, tmp_path):
    model, _ = _fit(ItemKNN(k=30), world)
    model.save(tmp_path / "knn.pkl")
    loaded = ItemKNN.load(tmp_path / "knn.pkl")
    np.testing.assert_array_equal(loaded.score(np.arange(20)), model.score(np.arange(20)))


def test_itemknn_rejects_bad_parameters():
    from recux.errors import ConfigError

    with pytest.raises(ConfigError, match="k must be"):
        registry.build("model", "itemknn", {"k": 0})


# ---------------------------------------------------------------- BPR


@pytest.fixture(scope="module")
def bpr_fit(world):
    from recux.plugins.models.bpr import BPR

    return _fit(BPR(**BPR_FAST), world, seed=0)


def test_a_models_thread_count_does_not_outlive_its_fit(world):
    """Sweeps run several jobs in one process: num_threads applies during fit only."""
    import torch

    from recux.plugins.models.bpr import BPR

    before = torch.get_num_threads()
    target = 1 if before > 1 else 2
    seen = []
    ds, split = world
    ctx = fit_context(ds, split)
    inner = ctx.validate
    ctx.validate = lambda fn: (seen.append(torch.get_num_threads()), inner(fn))[1]
    BPR(**{**BPR_FAST, "max_epochs": 2, "num_threads": target}).fit(ctx)
    assert seen and set(seen) == {target}
    assert torch.get_num_threads() == before


def test_bpr_beats_pop(world, bpr_fit, pop_ndcg):
    model, _ = bpr_fit
    assert heldout_ndcg(model, world[1]) > pop_ndcg + 0.05


def test_bpr_loss_decreases(bpr_fit):
    _, ctx = bpr_fit
    losses = [r["train_loss"] for r in ctx.history]
    assert losses[-1] < 0.8 * losses[0]
    assert losses[0] == pytest.approx(np.log(2), abs=0.01)  # small init: scores ~0, loss ~log 2


def test_bpr_keeps_best_validation_epoch(bpr_fit):
    model, ctx = bpr_fit
    vals = [r["val/ndcg@10"] for r in ctx.history]
    best = int(np.argmax(vals))
    assert model.summary.best_epoch == ctx.history[best]["epoch"]
    assert model.summary.best_score == vals[best]
    # the run over-fits, so early stopping fired `patience` evaluations after the best epoch
    assert model.summary.stopped_early and best < len(vals) - 1
    assert len(vals) == best + 1 + BPR_FAST["patience"]
    assert vals[-1] < vals[best]
    # the returned weights are the best epoch's: re-validating reproduces its value exactly
    assert ctx.validate(model.score)["ndcg@10"] == vals[best]


def test_bpr_same_seed_same_scores_and_save_load(world, bpr_fit, tmp_path):
    from recux.plugins.models.bpr import BPR

    model, _ = bpr_fit
    again, _ = _fit(BPR(**BPR_FAST), world, seed=0)
    users = np.arange(50)
    np.testing.assert_array_equal(again.score(users), model.score(users))
    other, _ = _fit(BPR(**{**BPR_FAST, "max_epochs": 2}), world, seed=1)
    assert not np.allclose(other.score(users), model.score(users))

    model.save(tmp_path / "bpr.pt")
    loaded = BPR.load(tmp_path / "bpr.pt")
    np.testing.assert_array_equal(loaded.score(users), model.score(users))
    assert loaded.hparams == model.hparams


def test_bpr_load_rejects_foreign_file(tmp_path):
    import torch

    from recux.errors import ConfigError
    from recux.plugins.models.bpr import BPR

    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(ConfigError, match="not a saved BPR model"):
        BPR.load(tmp_path / "other.pt")


def test_bpr_rejects_weight_decay_with_sparse_gradients():
    from recux.errors import ConfigError

    with pytest.raises(ConfigError, match="use reg"):
        registry.build("model", "bpr", {"sparse": True, "weight_decay": 1e-4})


def test_bpr_sparse_adam_also_learns(world, pop_ndcg):
    from recux.plugins.models.bpr import BPR

    model, _ = _fit(BPR(**{**BPR_FAST, "sparse": True, "reg": 1e-4}), world)
    assert heldout_ndcg(model, world[1]) > pop_ndcg + 0.05


@pytest.mark.parametrize("name", sorted(p.stem for p in (Path(__file__).parents[1] / "conf" / "model").glob("*.yaml")))
def test_model_configs_build_and_match_constructor_defaults(name):
    """The YAML (what `recux` runs) and the constructor (what Python users build) carry the same defaults."""
    import inspect

    from omegaconf import OmegaConf

    path = Path(__file__).parents[1] / "conf" / "model" / f"{name}.yaml"
    cfg = OmegaConf.to_container(OmegaConf.load(path))
    assert cfg.pop("name") == name
    info = registry.get("model", name)
    info.build(cfg)  # every key is a constructor parameter
    defaults = {k: list(p.default) if isinstance(p.default, tuple) else p.default  # YAML has no tuples
                for k, p in inspect.signature(info.obj).parameters.items()}
    assert cfg == {k: defaults[k] for k in cfg}
