"""MultVAE: dense user rows built from CSR arrays equal scipy's, each epoch's batches hold every training row
once, the loss and the scores equal a numpy forward pass of the same weights (multinomial log-likelihood +
beta * KL; decoder of the mean code of the *training* row), it learns a real signal on the synthetic world,
the seed fixes the result, and it survives save/load."""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from recux import registry  # noqa: E402
from recux.errors import ConfigError  # noqa: E402
from recux.plugins.models.multvae import MultVAE  # noqa: E402
from recux.plugins.models.popularity import MostPopular  # noqa: E402
from tests._model_world import fit_context, heldout_ndcg

FAST = dict(hidden_dims=[64], latent_dim=16, batch_size=64, lr=3e-3, total_anneal_steps=50, anneal_cap=0.2,
            max_epochs=40, patience=8, num_threads=1)


@pytest.fixture(scope="module")
def world(model_world):
    return model_world


@pytest.fixture(scope="module")
def fitted(world):
    ds, split = world
    ctx = fit_context(ds, split, seed=0)
    model = MultVAE(**FAST)
    model.fit(ctx)
    return model, ctx


def _random_csr(seed: int, n_users: int = 30, n_items: int = 25) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    m = sp.csr_matrix((rng.random((n_users, n_items)) < 0.2).astype(np.float32))
    m[3] = 0  # an empty row
    m.eliminate_zeros()
    m.sort_indices()
    return m


def test_dense_rows_equal_scipy_rows():
    import torch

    from recux.plugins.models._multvae_net import dense_rows

    m = _random_csr(0)
    users = np.array([7, 3, 0, 7, 29, 12])  # repeats and an empty row
    got = dense_rows(torch.as_tensor(m.indptr, dtype=torch.long), torch.as_tensor(m.indices, dtype=torch.long),
                     torch.as_tensor(users), m.shape[1])
    np.testing.assert_array_equal(got.numpy(), m[users].toarray())
    empty = dense_rows(torch.as_tensor(m.indptr, dtype=torch.long), torch.as_tensor(m.indices, dtype=torch.long),
                       torch.as_tensor([3]), m.shape[1])
    assert empty.shape == (1, 25) and not empty.any()


def test_each_epoch_yields_every_nonempty_training_row_once_in_a_new_order():
    from recux.plugins.models._multvae_net import UserRowBatches

    m = _random_csr(1)
    batches = UserRowBatches(m.indptr, m.indices, m.shape[1], batch_size=7, seed=0)
    nonempty = m[np.diff(m.indptr) > 0].toarray()
    assert len(batches) == int(np.ceil(len(nonempty) / 7))
    epochs = [np.concatenate([b.numpy() for b in batches]) for _ in range(2)]
    for rows in epochs:
        assert sorted(map(bytes, rows.astype(np.uint8))) == sorted(map(bytes, nonempty.astype(np.uint8)))
    assert not np.array_equal(epochs[0], epochs[1])


def _numpy_forward(net, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Eval-mode Mult-VAE in numpy: L2-normalised input, tanh MLP encoder -> (mu, logvar), decoder(mu)."""
    lin = lambda layer: (layer.weight.detach().double().numpy(), layer.bias.detach().double().numpy())  # noqa: E731
    enc = [lin(m) for m in net.encoder if hasattr(m, "weight")]
    dec = [lin(m) for m in net.decoder if hasattr(m, "weight")]
    h = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    for i, (w, b) in enumerate(enc):
        h = h @ w.T + b
        h = np.tanh(h) if i < len(enc) - 1 else h
    mu, logvar = h[:, :net.latent_dim], h[:, net.latent_dim:]
    h = mu
    for i, (w, b) in enumerate(dec):
        h = h @ w.T + b
        h = np.tanh(h) if i < len(dec) - 1 else h
    return h, mu, logvar


def test_scores_decode_the_mean_code_of_the_training_row(world, fitted):
    _, split = world
    model, _ = fitted
    users = np.array([4, 0, 250, 4])
    x = split.train.csr()[users].toarray().astype(np.float64)
    logits, _, _ = _numpy_forward(model.net, x)
    s = model.score(users)
    assert s.shape == (4, split.n_items) and s.dtype == np.float32
    np.testing.assert_allclose(s, logits, rtol=1e-4, atol=1e-4)


def test_loss_is_multinomial_nll_plus_annealed_kl(world, fitted):
    import torch

    _, split = world
    model, _ = fitted
    net = model.net.eval()  # no dropout, z = mu: deterministic
    x = split.train.csr()[:20].toarray().astype(np.float64)
    logits, mu, logvar = _numpy_forward(net, x)
    logp = logits - logits.max(1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(1, keepdims=True))
    nll = -(logp * x).sum(1).mean()
    kl = (0.5 * (np.exp(logvar) + mu**2 - 1 - logvar)).sum(1).mean()
    assert net.total_anneal_steps == 50 and net.anneal_cap == 0.2
    assert net.global_step > 50  # annealing is over: beta = anneal_cap
    with torch.no_grad():
        got = float(net.training_step(torch.as_tensor(x, dtype=torch.float32), 0))
    assert got == pytest.approx(nll + 0.2 * kl, rel=1e-4)


def test_multvae_beats_pop(world, fitted):
    ds, split = world
    pop = MostPopular()
    pop.fit(fit_context(ds, split))
    assert heldout_ndcg(fitted[0], split) > heldout_ndcg(pop, split) + 0.03


def test_multvae_keeps_best_validation_epoch(fitted):
    model, ctx = fitted
    best = max((h for h in ctx.history if "val/ndcg@10" in h), key=lambda h: h["val/ndcg@10"])
    assert model.summary.best_epoch == best["epoch"]
    assert ctx.validate(model.score)["ndcg@10"] == pytest.approx(best["val/ndcg@10"], abs=1e-6)
    losses = [h["train_loss"] for h in ctx.history]
    assert min(losses[-3:]) < losses[0]


def test_multvae_same_seed_same_scores_and_save_load(world, fitted, tmp_path):
    ds, split = world
    model, _ = fitted
    short = {**FAST, "max_epochs": 3}
    a, b, c = MultVAE(**short), MultVAE(**short), MultVAE(**short)
    a.fit(fit_context(ds, split, seed=0))
    b.fit(fit_context(ds, split, seed=0))
    c.fit(fit_context(ds, split, seed=1))
    users = np.arange(60)
    np.testing.assert_array_equal(a.score(users), b.score(users))
    assert not np.allclose(a.score(users), c.score(users))
    model.save(tmp_path / "vae.pt")
    loaded = MultVAE.load(tmp_path / "vae.pt")
    np.testing.assert_array_equal(loaded.score(users), model.score(users))
    assert loaded.hparams == model.hparams


def test_multvae_load_rejects_foreign_file(tmp_path):
    import torch

    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(ConfigError, match="not a saved MultVAE model"):
        MultVAE.load(tmp_path / "other.pt")


@pytest.mark.parametrize("kw", [dict(latent_dim=0), dict(hidden_dims=[0]), dict(dropout=1.0),
                                dict(total_anneal_steps=-1)])
def test_multvae_rejects_bad_parameters(kw):
    with pytest.raises(ConfigError, match="multvae"):
        MultVAE(**kw)


def test_multvae_config_matches_constructor_defaults():
    from omegaconf import OmegaConf

    cfg = OmegaConf.to_container(OmegaConf.load(Path(__file__).parents[1] / "conf" / "model" / "multvae.yaml"))
    assert cfg.pop("name") == "multvae"
    info = registry.get("model", "multvae")
    assert info.meta["training"] == "lightning"
    info.build(cfg)
    defaults = {k: p.default for k, p in inspect.signature(info.obj).parameters.items()}
    defaults["hidden_dims"] = list(defaults["hidden_dims"])  # a tuple default; YAML gives a list
    assert cfg == {k: defaults[k] for k in cfg}
