"""SASRec: causal attention never reads the future (perturbing later items leaves earlier outputs
unchanged), scoring sequences hold the validation item only after condition_on and never the test item, it
learns a sequential world far better than MostPopular, and it is deterministic under the seed and survives
save/load."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recux import registry  # noqa: E402
from recux.errors import ConfigError  # noqa: E402
from recux.plugins.models.popularity import MostPopular  # noqa: E402
from recux.plugins.models.sasrec import SASRec  # noqa: E402
from recux.sequences import last_items  # noqa: E402
from tests._seq_world import loo_test_ndcg, seq_context, train_plus_valid, warm_up_validation

FAST = dict(max_len=12, hidden_size=32, inner_size=64, n_layers=2, n_heads=2, dropout=0.1, attn_dropout=0.1,
            lr=5e-3, batch_size=64, max_epochs=8, patience=8, num_threads=1)


@pytest.fixture(scope="module")
def world(seq_world):
    return seq_world


@pytest.fixture(scope="module")
def fitted(world):
    ds, split = world
    warm_up_validation(ds, split)
    model = SASRec(**FAST)
    model.fit(seq_context(ds, split, seed=0))
    return model


def _net(causal_model_kwargs=None, seed=0):
    from recux.plugins.models._seq_net import SASRecNet, SeqEncoder

    torch.manual_seed(seed)
    enc = SeqEncoder(n_tokens=41, max_len=16, hidden=32, n_layers=2, n_heads=2, dropout=0.0, attn_dropout=0.0,
                     causal=True, inner_size=64)
    return SASRecNet(40, enc, loss="ce", optimizer={"_target_": "torch.optim.AdamW", "lr": 1e-3}).eval()


def test_registered_as_a_sequential_lightning_model():
    meta = registry.get("model", "sasrec").meta
    assert meta["training"] == "lightning" and meta["protocol"] == "sequential"


@pytest.mark.parametrize("t", [3, 9, 14])
def test_outputs_before_t_ignore_items_from_t_on(t):
    """The leakage test: changing the items at positions >= t (the target of position t - 1 and the
    future) leaves every hidden state before t unchanged, and does change position t."""
    net = _net()
    gen = torch.Generator().manual_seed(t)
    seq = torch.randint(1, 41, (8, 16), generator=gen)
    seq[:2, :4] = 0  # some left padding
    other = seq.clone()
    other[:, t:] = torch.randint(1, 41, (8, 16 - t), generator=gen)
    with torch.no_grad():
        a, b = net.encoder(seq), net.encoder(other)
    torch.testing.assert_close(a[:, :t], b[:, :t], rtol=0, atol=1e-5)
    assert (a[:, t] - b[:, t]).abs().max() > 1e-3


def test_left_padding_does_not_change_the_output():
    net = _net()
    seq = torch.randint(1, 41, (4, 6))
    short = torch.cat([torch.zeros(4, 2, dtype=torch.long), seq], 1)
    long = torch.cat([torch.zeros(4, 10, dtype=torch.long), seq], 1)
    with torch.no_grad():
        torch.testing.assert_close(net.encoder(short)[:, -6:], net.encoder(long)[:, -6:], rtol=0, atol=1e-5)
        empty = net.score_sequences(torch.zeros(2, 16, dtype=torch.long))
    assert torch.isfinite(empty).all()  # a user with no history still gets finite scores


def test_training_loss_ignores_the_targets_inputs():
    """Gradient of the loss at position t w.r.t. the input embeddings at positions > t is zero."""
    net = _net().train()
    net.encoder.drop.p = 0.0
    seq = torch.randint(1, 41, (2, 17))
    emb = net.encoder.tok
    captured = {}

    def hook(module, inp, out):
        out.retain_grad()
        captured["x"] = out

    handle = emb.register_forward_hook(hook)
    h = net.encoder(seq[:, :-1])
    handle.remove()
    t = 7
    loss = torch.nn.functional.cross_entropy(net.logits(h[:, t]), seq[:, t + 1] - 1)
    loss.backward()
    g = captured["x"].grad.abs().sum(-1)  # (2, 16)
    assert (g[:, t + 1:] == 0).all() and (g[:, :t + 1] > 0).all()


def test_scoring_sequence_holds_train_then_valid_never_test(world, fitted):
    ds, split = world
    model = SASRec(**FAST)
    model.n_users, model.n_items = split.n_users, split.n_items
    max_len = FAST["max_len"]
    val_rows = model.scoring_rows(split.train)
    test_rows = model.scoring_rows(train_plus_valid(split))
    valid_item = dict(zip(split.valid.user.tolist(), split.valid.item.tolist(), strict=True))
    test_item = dict(zip(split.test.user.tolist(), split.test.item.tolist(), strict=True))
    order = np.lexsort((split.train.timestamp, split.train.user))
    last_train = {}
    for u, i in zip(split.train.user[order], split.train.item[order], strict=True):
        last_train[int(u)] = int(i)
    for u, v in valid_item.items():
        assert v + 1 not in val_rows[u] and test_item[u] + 1 not in val_rows[u]
        assert val_rows[u, -1] == last_train[u] + 1
        assert test_rows[u, -1] == v + 1 and test_item[u] + 1 not in test_rows[u]
        assert test_rows[u, :-1].tolist() == val_rows[u, 1:].tolist()  # shifted by one, window of max_len
    assert val_rows.shape == test_rows.shape == (split.n_users, max_len)

    # the fitted model scores from those rows: before condition_on the train rows, after it the new ones
    users = np.array(sorted(valid_item)[:20])
    scorer = fitted.net
    scorer.set_sequences(val_rows)
    before = fitted.score(users)
    np.testing.assert_allclose(before, scorer.score_sequences(torch.as_tensor(val_rows[users])).numpy())
    fitted.condition_on(train_plus_valid(split))
    after = fitted.score(users)
    np.testing.assert_allclose(after, scorer.score_sequences(torch.as_tensor(test_rows[users])).numpy())
    assert not np.allclose(before, after)
    assert np.array_equal(fitted.net.seqs.numpy(), last_items(train_plus_valid(split), max_len))


def test_learns_the_sequential_world_far_better_than_popularity(world, fitted):
    ds, split = world
    pop = MostPopular()
    pop.fit(seq_context(ds, split))
    pop_ndcg = loo_test_ndcg(pop, split)
    ndcg = loo_test_ndcg(fitted, split)
    assert fitted.summary.best_score > 0.3  # validation NDCG@10 on the train sequence
    assert ndcg > 0.4 and ndcg > 3 * pop_ndcg, (ndcg, pop_ndcg)


def test_bce_loss_also_learns(world):
    ds, split = world
    model = SASRec(**{**FAST, "loss": "bce", "lr": 1e-2})
    model.fit(seq_context(ds, split))
    pop = MostPopular()
    pop.fit(seq_context(ds, split))
    assert loo_test_ndcg(model, split) > 2 * loo_test_ndcg(pop, split)


def test_same_seed_same_model_and_save_load_round_trip(world, fitted, tmp_path):
    ds, split = world
    again = SASRec(**FAST)
    again.fit(seq_context(ds, split, seed=0))
    users = np.arange(split.n_users)
    fitted.condition_on(split.train)
    again.condition_on(split.train)
    np.testing.assert_array_equal(again.score(users), fitted.score(users))
    fitted.condition_on(train_plus_valid(split))
    path = tmp_path / "sasrec.pt"
    fitted.save(path)
    loaded = SASRec.load(path)
    np.testing.assert_array_equal(loaded.score(users), fitted.score(users))  # conditioned sequences saved too
    assert loaded.hparams == fitted.hparams
    other = SASRec(**{**FAST, "max_epochs": 3})
    other.fit(seq_context(ds, split, seed=1))
    other.condition_on(train_plus_valid(split))
    assert not np.allclose(other.score(users), fitted.score(users))


def test_bad_settings_fail_with_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="loss"):
        SASRec(loss="bpr")
    with pytest.raises(ConfigError, match="divisible"):
        SASRec(hidden_size=30, n_heads=4)
    with pytest.raises(ConfigError, match="max_len"):
        SASRec(max_len=1)
    bogus = tmp_path / "x.pt"
    torch.save({"format": "nope"}, bogus)
    with pytest.raises(ConfigError, match="not a saved SASRec"):
        SASRec.load(bogus)
