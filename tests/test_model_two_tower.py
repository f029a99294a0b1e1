"""Two-tower text model: untrained it is exactly the frozen content model; items without training interactions
are never softmax candidates but are scored from their text; frozen trains only W; LoRA keeps the encoder's
base weights bit-identical and scores with the adapted encoder; save/load restores the scores; the cold-start
task scores its cold items."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")

from recux import registry  # noqa: E402
from recux.pipeline import run_experiment  # noqa: E402
from recux.plugins.finetune.frozen import Frozen  # noqa: E402
from recux.plugins.models.content import ContentRecommender  # noqa: E402
from recux.plugins.models.two_tower import TwoTower  # noqa: E402
from tests._compose import compose_cfg  # noqa: E402
from tests._lm_world import lm_context  # noqa: E402
from tests._seq_world import CPU_TRAINER  # noqa: E402

FAST = dict(batch_size=32, max_epochs=2, patience=2, encode_per_step=16, lr=1e-2, num_threads=1)


def fit(world, encoder, finetune, trainer=None, **kw):
    ds, split = world
    model = TwoTower(**{**FAST, **kw})
    ctx = lm_context(ds, split, encoder, finetune, **({} if trainer is None else {"trainer": trainer}))
    model.fit(ctx)
    return model, ctx


def test_untrained_it_scores_exactly_as_the_frozen_content_model(small_world, encoder):
    model, ctx = fit(small_world, encoder, Frozen(), trainer=dict(CPU_TRAINER, max_epochs=0))
    content = ContentRecommender(features="text", profile="mean")
    content.fit(ctx)
    users = np.arange(small_world[1].n_users)
    np.testing.assert_allclose(model.score(users), content.score(users), atol=1e-5)


def test_untrained_items_are_not_candidates_but_are_scored_from_text(small_world, encoder):
    model, ctx = fit(small_world, encoder, Frozen())
    trained = np.unique(small_world[1].train.item)
    assert model.net.trained.tolist() == trained.tolist()
    unseen = np.setdiff1d(np.arange(small_world[1].n_items), trained)
    scores = model.score(np.arange(small_world[1].n_users))
    if len(unseen):
        assert np.abs(scores[:, unseen]).sum() > 0


def test_frozen_trains_w_only_and_keeps_the_cached_embeddings(small_world, encoder):
    model, ctx = fit(small_world, encoder, Frozen())
    assert model.net.encoder is None
    np.testing.assert_array_equal(model.net.feats.numpy(), np.asarray(ctx.item_embeddings(), np.float32))
    w = model.net.proj.weight.detach()
    assert not torch.equal(w, torch.eye(w.shape[0]))
    assert model.describe()["params"]["trainable"] == w.numel()


def test_lora_keeps_base_weights_and_scores_with_the_adapted_encoder(small_world, encoder, tmp_path):
    base = {k: v.clone() for k, v in encoder.module().state_dict().items()}
    model, ctx = fit(small_world, encoder, registry.build("finetune", "lora", {"r": 2}))
    after = model.net.encoder.state_dict()
    for name, value in base.items():  # peft wraps the targeted layers: base_layer.<name>
        key = name if name in after else name.replace(".weight", ".base_layer.weight").replace(
            ".bias", ".base_layer.bias")
        assert torch.equal(after[key], value), name
    assert any(v.abs().sum() > 0 for k, v in after.items() if "lora_B" in k)
    fresh = encoder.embed(ctx.item_texts, module=model.net.encoder)
    np.testing.assert_allclose(model.net.feats.numpy(), fresh, atol=1e-5)  # the bank is the adapted encoder's
    assert not np.allclose(fresh, np.asarray(ctx.item_embeddings()), atol=1e-4)
    model.save(tmp_path / "tt.pt")
    users = np.arange(small_world[1].n_users)
    np.testing.assert_allclose(TwoTower.load(tmp_path / "tt.pt").score(users), model.score(users), atol=1e-5)


def test_the_cold_start_task_scores_its_cold_items(tmp_path):
    from tests._lm_world import tiny_bert_folder

    tiny = tiny_bert_folder(tmp_path / "bert")
    overrides = ["dataset=synthetic", "dataset.n_users=80", "dataset.n_items=60", "logger=none",
                 "trainer.enable_progress_bar=false", "experiment=cold_start", "model=two_tower",
                 "model.max_epochs=1", f"encoder.model={tiny}", "encoder.max_length=16"]
    run_experiment(compose_cfg(overrides), tmp_path / "run", overrides)
    rec = json.loads((tmp_path / "run" / "results.json").read_text())
    assert rec["metrics"]["cold/ndcg@10"] is not None and rec["users"]["evaluated_cold"] > 0
