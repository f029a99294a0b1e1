"""Text-encoder fine-tuning strategies on LM-SASRec with a tiny random BERT: LoRA leaves every base encoder
weight bit-identical while its adapters train; frozen changes no encoder weight; full changes them, at its own
rate with a warm-up; AdaLoRA re-allocates its rank budget inside the Lightning loop; save/load restores the
adapters; strategies needing a text encoder are refused for ID-only models."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")

from recux import registry  # noqa: E402
from recux.errors import ConfigError  # noqa: E402
from recux.finetune import check_finetune  # noqa: E402
from recux.optim import group_warmup, restore_lr  # noqa: E402
from recux.plugins.finetune.frozen import Frozen  # noqa: E402
from recux.plugins.models.lm_sasrec import LMSASRec  # noqa: E402
from tests._lm_world import FAST, lm_context  # noqa: E402
from tests._seq_world import CPU_TRAINER  # noqa: E402


def pretrained_state(encoder):
    return {k: v.clone() for k, v in encoder.module().state_dict().items()}


def fit(world, encoder, finetune, **kw):
    ds, split = world
    model = LMSASRec(**{**FAST, **kw})
    model.fit(lm_context(ds, split, encoder, finetune))
    return model


@pytest.fixture(scope="module")
def lora_model(small_world, encoder):
    return fit(small_world, encoder, registry.build("finetune", "lora", {"r": 4}))


def test_lora_keeps_base_weights_bit_identical_and_trains_adapters(lora_model, encoder):
    base = pretrained_state(encoder)
    state = lora_model.net.encoder.state_dict()
    adapters = {k: v for k, v in state.items() if "lora_" in k}
    assert adapters, "no LoRA weights were injected into the encoder"
    for k, v in state.items():
        if "lora_" not in k:
            key = k.replace(".base_layer", "")  # peft moves a wrapped layer's weight under base_layer
            assert torch.equal(v, base[key]), f"base weight {k} changed under LoRA"
    # peft starts B at zero (the adapted layer equals the base one); training must move it
    lora_b = [v for k, v in adapters.items() if "lora_B" in k]
    assert lora_b and all(v.abs().sum() > 0 for v in lora_b)
    trainable = {n for n, p in lora_model.net.encoder.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)


def test_lora_test_scores_use_the_adapted_encoder(lora_model):
    """After the fit the catalogue was re-encoded with the adapted encoder (what test scoring reads)."""
    net = lora_model.net
    expected = net.text.embed(net.texts, module=net.encoder)
    np.testing.assert_allclose(net.feats.numpy(), expected, rtol=0, atol=1e-6)


def test_save_load_restores_adapters(lora_model, tmp_path):
    lora_model.save(tmp_path / "m.pt")
    loaded = LMSASRec.load(tmp_path / "m.pt")
    a, b = lora_model.net.encoder.state_dict(), loaded.net.encoder.state_dict()
    assert a.keys() == b.keys() and any("lora_" in k for k in b)
    for k in a:
        assert torch.equal(a[k], b[k]), k
    loaded.net.bank_stale = True  # re-encode the catalogue with the loaded (adapted) encoder
    loaded.net.refresh_bank()
    users = np.arange(20)
    np.testing.assert_allclose(loaded.score(users), lora_model.score(users), rtol=0, atol=1e-5)


def test_frozen_uses_cached_embeddings_and_no_encoder_in_net(small_world, encoder):
    ds, split = small_world
    model = fit(small_world, encoder, Frozen())
    assert model.net.encoder is None
    cached = encoder.embed(lm_context(ds, split, encoder, Frozen()).item_texts)
    assert torch.equal(model.net.feats, torch.as_tensor(cached))
    assert model.describe()["params"]["encoder_trainable"] == 0


class FrozenInNet(Frozen):
    """Frozen with the encoder placed in the network, so that prepare's freezing is what keeps it fixed."""

    encoder_in_net = True


def test_frozen_changes_no_encoder_weight_even_in_the_network(small_world, encoder):
    model = fit(small_world, encoder, FrozenInNet())
    base = pretrained_state(encoder)
    for k, v in model.net.encoder.state_dict().items():
        assert torch.equal(v, base[k]), k
    params = model.describe()["params"]
    assert params["encoder_trainable"] == 0 < params["encoder_total"] and params["rest_trainable"] > 0


def test_full_changes_encoder_weights_at_its_own_rate(small_world, encoder):
    full = registry.build("finetune", "full", {"lr": 1e-3, "warmup_steps": 2})
    model = fit(small_world, encoder, full)
    base = pretrained_state(encoder)
    changed = [k for k, v in model.net.encoder.state_dict().items() if not torch.equal(v, base[k])]
    assert any("attention" in k for k in changed) and any("intermediate" in k for k in changed)
    groups = full.trainable_parameters(model.net)
    enc_ids = {id(p) for p in model.net.encoder.parameters()}
    assert {id(p) for p in groups[-1]["params"]} == enc_ids and groups[-1]["lr"] == 1e-3
    assert not enc_ids & {id(p) for p in groups[0]["params"]}


def test_group_warmup_scales_only_warming_groups_and_restores():
    a, b = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.5, "warmup_steps": 4}], lr=0.1)
    for step in range(6):
        saved = group_warmup(opt, step)
        assert opt.param_groups[0]["lr"] == 0.1
        assert opt.param_groups[1]["lr"] == pytest.approx(0.5 * min(1.0, (step + 1) / 4))
        restore_lr(saved)
        assert opt.param_groups[1]["lr"] == 0.5


def test_adalora_reallocates_rank_budget_in_the_loop(small_world, encoder):
    ada = registry.build("finetune", "adalora", {"init_r": 6, "target_r": 2})
    model = fit(small_world, encoder, ada)
    ranks = ada.ranks(model.net)
    assert len(ranks) == 4  # query and value in each of the 2 layers
    # started at init_r everywhere; the schedule ends at a total budget of target_r per layer
    assert sum(ranks.values()) <= 2 * len(ranks) < 6 * len(ranks)
    cfg = model.net._adalora.peft_config["default"]
    assert cfg.total_step == model.net.timing["steps"]  # the fit's optimiser steps, set when training started


def test_text_strategies_are_refused_for_id_models():
    for name in ("lora", "adalora", "full", "frozen"):
        with pytest.raises(ConfigError, match=f"finetune={name} does not apply to model=ease"):
            check_finetune(registry.get("model", "ease"), registry.get("finetune", name))
        check_finetune(registry.get("model", "lm_sasrec"), registry.get("finetune", name))
    check_finetune(registry.get("model", "lm_sasrec"), registry.get("finetune", "scratch"))


def test_bad_strategy_settings_are_refused():
    with pytest.raises(ConfigError, match="target_r"):
        registry.build("finetune", "adalora", {"init_r": 4, "target_r": 8})
    with pytest.raises(ConfigError, match="target_modules"):
        registry.build("finetune", "lora", {"target_modules": []})
    with pytest.raises(ConfigError, match="lr must be > 0"):
        registry.build("finetune", "full", {"lr": 0})


@pytest.mark.parametrize("strategy", ["frozen", "lora", "adalora", "full"])
@pytest.mark.parametrize("model", ["content", "hybrid"])
def test_text_strategies_are_refused_for_text_models_without_a_network(model, strategy):
    """content and hybrid read text (capability text_encoder) but train no torch network: an encoder strategy
    has nothing to act on, so the pair is refused before any work."""
    from recux import registry
    from recux.errors import ConfigError
    from recux.finetune import check_finetune

    with pytest.raises(ConfigError, match=strategy):
        check_finetune(registry.get("model", model), registry.get("finetune", strategy))


def test_lora_starts_from_a_frozen_run_weights_with_fresh_adapters(small_world, encoder, tmp_path):
    """Two-stage fine-tuning: a frozen-encoder model's weights (no encoder in them) load into a LoRA network
    around fresh adapters (B = 0, so the encoder still computes the pretrained function); with no training
    epoch the LoRA model scores as the frozen model does, and without init_from it does not."""
    ds, split = small_world
    frozen = fit(small_world, encoder, Frozen())
    frozen.save(tmp_path / "frozen.pt")
    users = np.arange(split.n_users)
    zero = dict(CPU_TRAINER, max_epochs=0)
    for init in (tmp_path / "frozen.pt", None):
        model = LMSASRec(**FAST)
        ctx = lm_context(ds, split, encoder, registry.build("finetune", "lora", {"r": 2}), trainer=zero)
        ctx.init_from = init
        model.fit(ctx)
        assert any("lora_B" in k for k in model.net.state_dict())
        close = np.allclose(model.score(users), frozen.score(users), atol=1e-4)
        assert close == (init is not None)


def test_init_from_with_a_foreign_weight_is_refused_naming_it(small_world, encoder, tmp_path):
    ds, split = small_world
    frozen = fit(small_world, encoder, Frozen())
    state = {**frozen.net.state_dict(), "stray.weight": torch.zeros(2)}
    ctx = lm_context(ds, split, encoder, Frozen(), trainer=dict(CPU_TRAINER, max_epochs=0))
    ctx.init_from = state
    with pytest.raises(ConfigError, match="unexpected stray.weight"):
        LMSASRec(**FAST).fit(ctx)
