"""LightGCN: the normalised adjacency and the layer-mean propagation (values and gradients) equal dense numpy
references; the propagated-embedding cache never serves stale weights; a fit learns a real signal on the
synthetic world (beats MostPopular), keeps its best validation epoch, repeats under a seed and survives
save/load."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from recux import registry  # noqa: E402
from recux.errors import ConfigError  # noqa: E402
from recux.plugins.models.lightgcn import LightGCN, normalized_adjacency  # noqa: E402
from recux.plugins.models.popularity import MostPopular  # noqa: E402
from tests._model_world import fit_context, heldout_ndcg

# Small, fast settings for the test world (6k training pairs, 500 graph nodes).
FAST = dict(batch_size=256, lr=0.01, reg=1e-4, n_layers=2, max_epochs=15, patience=4, num_threads=1)

# A tiny graph: 5 users, 6 items; (1, 2) is repeated, user 4 and item 5 have no edges.
TINY_USERS = np.array([0, 0, 1, 1, 1, 2, 3, 3, 0, 1])
TINY_ITEMS = np.array([0, 1, 1, 2, 4, 3, 0, 4, 3, 2])


def dense_normalized(users, items, n_users, n_items) -> np.ndarray:
    """Independent reference: binary bipartite adjacency, D^-1/2 A D^-1/2 with 0 for isolated nodes."""
    n = n_users + n_items
    a = np.zeros((n, n))
    for u, i in zip(users, items, strict=True):
        a[u, n_users + i] = 1.0
        a[n_users + i, u] = 1.0
    deg = a.sum(axis=1)
    d = np.array([1 / np.sqrt(x) if x > 0 else 0.0 for x in deg])
    return np.diag(d) @ a @ np.diag(d)


@pytest.fixture(scope="module")
def world(model_world):
    return model_world


def _fit(world, seed=0, **params):
    ds, split = world
    model = LightGCN(**{**FAST, **params})
    ctx = fit_context(ds, split, seed=seed)
    model.fit(ctx)
    return model, ctx


@pytest.fixture(scope="module")
def fitted(world):
    return _fit(world)


def test_registered_as_lightning_model():
    assert registry.get("model", "lightgcn").meta["training"] == "lightning"


def test_normalized_adjacency_equals_dense_reference():
    adj = normalized_adjacency(TINY_USERS, TINY_ITEMS, 5, 6)
    expected = dense_normalized(TINY_USERS, TINY_ITEMS, 5, 6)
    assert adj.dtype == np.float32 and adj.shape == (11, 11)
    np.testing.assert_allclose(adj.toarray(), expected, rtol=1e-6, atol=1e-7)
    assert adj.nnz == 2 * 9  # the repeated pair is one edge
    assert not adj[4].nnz and not adj[5 + 5].nnz  # isolated user and item


def _tiny_net(n_layers: int, seed: int = 0):
    import torch

    from recux.plugins.models._lightgcn_net import LightGCNNet

    torch.manual_seed(seed)
    adj = normalized_adjacency(TINY_USERS, TINY_ITEMS, 5, 6)
    return LightGCNNet(adj, 5, 6, embedding_dim=4, n_layers=n_layers, reg=0.0, init_std=1.0,
                       optimizer={"_target_": "torch.optim.Adam", "lr": 0.01})


def test_propagation_and_its_gradient_equal_dense_reference():
    import torch

    net = _tiny_net(n_layers=2)
    a = dense_normalized(TINY_USERS, TINY_ITEMS, 5, 6)
    e0 = np.vstack([net.user_emb.weight.detach().numpy(), net.item_emb.weight.detach().numpy()]).astype(float)
    expected = (e0 + a @ e0 + a @ a @ e0) / 3

    with torch.no_grad():  # the plain path (scoring)
        u, i = net.propagate()
    np.testing.assert_allclose(np.vstack([u.numpy(), i.numpy()]), expected, rtol=1e-5, atol=1e-6)

    # the autograd path (training): same values, and d<W, E>/dE0 = (W + A W + A^2 W) / 3 (A symmetric)
    w = np.random.default_rng(3).normal(size=expected.shape)
    u, i = net.propagate()
    np.testing.assert_allclose(np.vstack([u.detach().numpy(), i.detach().numpy()]), expected,
                               rtol=1e-5, atol=1e-6)
    (torch.cat([u, i]) * torch.as_tensor(w, dtype=torch.float32)).sum().backward()
    grad = np.vstack([net.user_emb.weight.grad.numpy(), net.item_emb.weight.grad.numpy()])
    np.testing.assert_allclose(grad, (w + a @ w + a @ a @ w) / 3, rtol=1e-5, atol=1e-6)


def test_zero_layers_is_matrix_factorisation():
    net = _tiny_net(n_layers=0).eval()
    scores = net.score(np.arange(5))
    expected = net.user_emb.weight.detach().numpy() @ net.item_emb.weight.detach().numpy().T
    np.testing.assert_allclose(scores, expected, rtol=1e-5, atol=1e-6)


def test_score_cache_follows_weight_changes():
    import torch

    net = _tiny_net(n_layers=2).eval()
    before = net.score(np.arange(5))
    np.testing.assert_array_equal(net.score(np.arange(5)), before)  # served from the cache

    def fresh() -> np.ndarray:
        with torch.no_grad():
            u, i = net.propagate()
        return (u @ i.T).numpy()

    net.train()  # a training step changes the weights; eval scores must see the change
    with torch.no_grad():
        net.item_emb.weight.add_(1.0)
    net.eval()
    after = net.score(np.arange(5))
    assert not np.allclose(after, before)
    np.testing.assert_allclose(after, fresh(), rtol=1e-6)

    state = {k: v.clone() for k, v in net.state_dict().items()}
    state["user_emb.weight"].mul_(-1.0)
    net.load_state_dict(state)  # loading weights (best checkpoint) in eval mode
    loaded = net.score(np.arange(5))
    assert not np.allclose(loaded, after)
    np.testing.assert_allclose(loaded, fresh(), rtol=1e-6)


def test_beats_pop(world, fitted):
    ds, split = world
    pop = MostPopular()
    pop.fit(fit_context(ds, split))
    model, _ = fitted
    assert heldout_ndcg(model, split) > heldout_ndcg(pop, split) + 0.05


def test_keeps_best_validation_epoch(fitted):
    model, ctx = fitted
    vals = [r["val/ndcg@10"] for r in ctx.history]
    best = int(np.argmax(vals))
    assert model.summary.best_epoch == ctx.history[best]["epoch"]
    # the restored weights are the best epoch's (and no stale cache from the last epoch is served)
    assert ctx.validate(model.score)["ndcg@10"] == vals[best]
    losses = [r["train_loss"] for r in ctx.history]
    assert losses[-1] < 0.8 * losses[0]


def test_same_seed_same_scores_and_save_load(world, fitted, tmp_path):
    model, _ = fitted
    users = np.arange(60)
    again, _ = _fit(world, seed=0)
    np.testing.assert_array_equal(again.score(users), model.score(users))
    other, _ = _fit(world, seed=1, max_epochs=2)
    assert not np.allclose(other.score(users), model.score(users))

    model.save(tmp_path / "lightgcn.pt")
    loaded = LightGCN.load(tmp_path / "lightgcn.pt")
    np.testing.assert_array_equal(loaded.score(users), model.score(users))
    assert loaded.hparams == model.hparams


def test_load_rejects_foreign_file(tmp_path):
    import torch

    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(ConfigError, match="not a saved LightGCN model"):
        LightGCN.load(tmp_path / "other.pt")


def test_rejects_bad_parameters():
    with pytest.raises(ConfigError, match="n_layers >= 0"):
        registry.build("model", "lightgcn", {"n_layers": -1})


def test_config_matches_constructor_defaults():
    import inspect

    from omegaconf import OmegaConf

    cfg = OmegaConf.to_container(OmegaConf.load(Path(__file__).parents[1] / "conf" / "model" / "lightgcn.yaml"))
    assert cfg.pop("name") == "lightgcn"
    info = registry.get("model", "lightgcn")
    info.build(cfg)  # every key is a constructor parameter
    defaults = {k: p.default for k, p in inspect.signature(info.obj).parameters.items()}
    assert cfg == {k: defaults[k] for k in cfg}
