"""BERT4Rec: training inputs never show a masked item, a user is scored from their latest items plus an
appended [MASK] (validation item only after condition_on, test item never), attention reads both directions
but never padding, it learns a sequential world far better than MostPopular, and it is deterministic under
the seed and survives save/load."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recux import registry  # noqa: E402
from recux.errors import ConfigError  # noqa: E402
from recux.plugins.models.bert4rec import BERT4Rec  # noqa: E402
from recux.plugins.models.popularity import MostPopular  # noqa: E402
from recux.sequences import SequenceBatches, last_items  # noqa: E402
from tests._seq_world import loo_test_ndcg, seq_context, train_plus_valid, warm_up_validation

FAST = dict(max_len=12, hidden_size=32, inner_size=64, n_layers=2, n_heads=2, dropout=0.1, attn_dropout=0.1,
            mask_prob=0.3, lr=5e-3, batch_size=64, max_epochs=12, patience=12, num_threads=1)


@pytest.fixture(scope="module")
def world(seq_world):
    return seq_world


@pytest.fixture(scope="module")
def fitted(world):
    ds, split = world
    warm_up_validation(ds, split)
    model = BERT4Rec(**FAST)
    model.fit(seq_context(ds, split, seed=0))
    return model


def test_registered_as_a_sequential_lightning_model():
    meta = registry.get("model", "bert4rec").meta
    assert meta["training"] == "lightning" and meta["protocol"] == "sequential"


def test_training_batches_never_show_a_masked_item(world):
    """Every label is hidden behind [MASK] in its input row and appears nowhere else in that row."""
    _, split = world
    model = BERT4Rec(**FAST)
    model.n_users, model.n_items = split.n_users, split.n_items
    rows = model.training_rows(split.train)
    assert rows.shape[1] == FAST["max_len"]
    batches = SequenceBatches(rows, batch_size=50, seed=0, transform=model._transform())
    n_labels = 0
    for inputs, labels in batches:
        masked = labels != 0
        assert torch.equal(masked, inputs == model.mask_token)
        for r in range(len(inputs)):
            row = inputs[r].tolist()
            for lab in labels[r][masked[r]].tolist():
                assert lab not in row
                n_labels += 1
    assert n_labels >= 0.3 * (rows != 0).sum() * 0.8  # about mask_prob of the items are targets


def test_attention_reads_both_directions_but_never_padding():
    from recux.plugins.models._seq_net import SeqEncoder

    torch.manual_seed(0)
    enc = SeqEncoder(n_tokens=42, max_len=16, hidden=32, n_layers=2, n_heads=2, dropout=0.0, attn_dropout=0.0,
                     causal=False, inner_size=64).eval()
    seq = torch.randint(1, 41, (4, 16))
    seq[:, :5] = 0
    later = seq.clone()
    later[:, 12:] = torch.randint(1, 41, (4, 4))
    with torch.no_grad():
        a, b = enc(seq), enc(later)
        assert (a[:, 8] - b[:, 8]).abs().max() > 1e-3  # bidirectional: earlier positions see later items
        padded = torch.cat([torch.zeros(4, 0, dtype=torch.long), seq[:, 5:]], 1)
        torch.testing.assert_close(enc(padded), a[:, 5:], rtol=0, atol=1e-5)


def test_scoring_rows_end_with_mask_and_hold_valid_only_at_test_time(world, fitted):
    ds, split = world
    mask = fitted.mask_token
    val_rows = fitted.scoring_rows(split.train)
    test_rows = fitted.scoring_rows(train_plus_valid(split))
    assert (val_rows[:, -1] == mask).all() and (test_rows[:, -1] == mask).all()
    np.testing.assert_array_equal(val_rows[:, :-1], last_items(split.train, FAST["max_len"] - 1))
    np.testing.assert_array_equal(test_rows[:, :-1], last_items(train_plus_valid(split), FAST["max_len"] - 1))
    for u, v in zip(split.valid.user, split.valid.item, strict=True):
        assert v + 1 not in val_rows[u] and v + 1 == test_rows[u, -2]
    for u, t in zip(split.test.user, split.test.item, strict=True):
        assert t + 1 not in val_rows[u] and t + 1 not in test_rows[u]

    users = np.unique(split.valid.user)[:20]
    fitted.condition_on(split.train)
    before = fitted.score(users)
    np.testing.assert_allclose(before, fitted.net.score_sequences(torch.as_tensor(val_rows[users])).numpy())
    fitted.condition_on(train_plus_valid(split))
    after = fitted.score(users)
    np.testing.assert_allclose(after, fitted.net.score_sequences(torch.as_tensor(test_rows[users])).numpy())
    assert not np.allclose(before, after)


def test_learns_the_sequential_world_far_better_than_popularity(world, fitted):
    ds, split = world
    pop = MostPopular()
    pop.fit(seq_context(ds, split))
    pop_ndcg = loo_test_ndcg(pop, split)
    ndcg = loo_test_ndcg(fitted, split)
    assert ndcg > 0.25 and ndcg > 3 * pop_ndcg, (ndcg, pop_ndcg)


def test_same_seed_same_model_and_save_load_round_trip(world, fitted, tmp_path):
    ds, split = world
    again = BERT4Rec(**FAST)
    again.fit(seq_context(ds, split, seed=0))
    users = np.arange(split.n_users)
    fitted.condition_on(split.train)
    again.condition_on(split.train)
    np.testing.assert_array_equal(again.score(users), fitted.score(users))
    fitted.condition_on(train_plus_valid(split))
    path = tmp_path / "bert4rec.pt"
    fitted.save(path)
    loaded = BERT4Rec.load(path)
    np.testing.assert_array_equal(loaded.score(users), fitted.score(users))
    other = BERT4Rec(**{**FAST, "max_epochs": 3})
    other.fit(seq_context(ds, split, seed=1))
    other.condition_on(train_plus_valid(split))
    assert not np.allclose(other.score(users), fitted.score(users))


def test_bad_settings_fail_with_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="mask_prob"):
        BERT4Rec(mask_prob=0.0)
    with pytest.raises(ConfigError, match="dropout"):
        BERT4Rec(dropout=1.0)
    from recux.plugins.models.sasrec import SASRec

    sas = tmp_path / "sas.pt"
    torch.save({"format": SASRec.FORMAT, "model": "SASRec"}, sas)
    with pytest.raises(ConfigError, match="not a saved BERT4Rec"):
        BERT4Rec.load(sas)
