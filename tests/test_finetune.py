"""The fine-tuning contract: strategies act in place, are saved with a model and re-applied on load, apply only
to models with the capabilities they require, and a fit can start from saved weights."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from _model_world import fit_context, make_world  # noqa: E402

from recux import registry  # noqa: E402
from recux.errors import ConfigError  # noqa: E402
from recux.finetune import FineTuneStrategy, check_finetune  # noqa: E402
from recux.plugins.models.bpr import BPR  # noqa: E402

FAST = dict(batch_size=256, lr=0.01, init_std=0.01, num_threads=1, max_epochs=2, patience=2)


@pytest.fixture(scope="module")
def world():
    return make_world(n_users=120, n_items=80)


class _NeedsTorch(FineTuneStrategy):
    """A toy strategy that only makes sense for a torch network."""

    name = "toy-torch"
    requires = frozenset({"torch_module"})


def _info(obj, name, kind="finetune"):
    return registry.PluginInfo(kind, name, obj, "", {})


# ---------------------------------------------------------------- applicability


def test_a_torch_strategy_on_ease_is_refused_with_the_fix():
    with pytest.raises(ConfigError) as err:
        check_finetune(registry.get("model", "ease"), _info(_NeedsTorch, "toy-torch"))
    msg = str(err.value)
    assert "finetune=toy-torch" in msg and "model=ease" in msg and "torch_module" in msg
    assert "finetune=scratch" in msg and "bpr" in msg  # the fix: scratch, or a model that supports it


def test_applicability_is_requires_subset_of_capabilities():
    models = registry.all_plugins()["model"]
    for m in models:  # scratch requires nothing: every model accepts it, without a special case
        check_finetune(m, registry.get("finetune", "scratch"))
    torch_models = {m.name for m in models if "torch_module" in m.meta["capabilities"]}
    assert {"bpr", "lightgcn", "multvae", "sasrec", "bert4rec"} <= torch_models
    assert not {"ease", "ials", "itemknn", "pop", "random"} & torch_models
    for m in models:
        if m.name in torch_models:
            check_finetune(m, _info(_NeedsTorch, "toy-torch"))
        else:
            with pytest.raises(ConfigError):
                check_finetune(m, _info(_NeedsTorch, "toy-torch"))


# ---------------------------------------------------------------- in place


class _WrapsTheNet(FineTuneStrategy):
    name = "wraps"

    def prepare(self, module, ctx=None):
        return nn.Sequential(module)  # a new top-level module: not allowed


def test_a_strategy_that_replaces_the_module_is_refused(world):
    ds, split = world
    ctx = fit_context(ds, split)
    ctx.finetune = _WrapsTheNet()
    with pytest.raises(TypeError, match="in place"):
        BPR(**FAST).fit(ctx)


# ---------------------------------------------------------------- saved with the model


class LowRankItems(nn.Module):
    """item_emb.weight + a @ b (a LoRA-style delta) over a frozen base table; exposes ``weight``."""

    def __init__(self, base: nn.Embedding, rank: int) -> None:
        super().__init__()
        self.base = base
        self.a = nn.Parameter(torch.zeros(base.num_embeddings, rank))
        self.b = nn.Parameter(torch.randn(rank, base.embedding_dim) * 0.01)

    @property
    def weight(self):
        return self.base.weight + self.a @ self.b


class _LowRank(FineTuneStrategy):
    """Freezes the network, then swaps item_emb for a low-rank-adapted one in place."""

    name = "toy-lowrank"
    requires = frozenset({"torch_module"})

    def __init__(self, rank: int = 2) -> None:
        self.rank = rank

    def prepare(self, module, ctx=None):
        for p in module.parameters():
            p.requires_grad_(False)
        module.item_emb = LowRankItems(module.item_emb, self.rank)

    def params(self):
        return {"rank": self.rank}


@pytest.fixture
def lowrank_registered():
    registry.register("finetune", "toy-lowrank")(_LowRank)
    yield
    registry._REGISTRY["finetune"].pop("toy-lowrank", None)


def test_strategy_state_survives_save_and_load(world, tmp_path, lowrank_registered):
    ds, split = world
    ctx = fit_context(ds, split)
    ctx.finetune = _LowRank(rank=3)
    model = BPR(**FAST)
    model.fit(ctx)
    net = model.net
    assert {n for n, p in net.named_parameters() if p.requires_grad} == {"item_emb.a", "item_emb.b"}
    assert net.item_emb.a.abs().sum() > 0  # the adapter trained
    path = tmp_path / "bpr.pt"
    model.save(path)
    loaded = BPR.load(path)
    assert isinstance(loaded.net.item_emb, LowRankItems) and loaded.net.item_emb.a.shape[1] == 3
    assert isinstance(loaded.finetune, _LowRank) and loaded.finetune.rank == 3
    users = np.arange(split.n_users)
    np.testing.assert_array_equal(loaded.score(users), model.score(users))


# ---------------------------------------------------------------- starting weights


def test_a_fit_from_saved_weights_without_training_reproduces_the_saved_model(world, tmp_path):
    ds, split = world
    model = BPR(**FAST)
    model.fit(fit_context(ds, split))
    path = tmp_path / "bpr.pt"
    model.save(path)
    users = np.arange(split.n_users)
    for source in (path, {k: v.clone() for k, v in model.net.state_dict().items()}):
        ctx = fit_context(ds, split, seed=7, trainer={"accelerator": "cpu", "devices": 1,
                                                      "enable_progress_bar": False, "max_epochs": 0})
        ctx.init_from = source
        again = BPR(**FAST)
        again.fit(ctx)
        np.testing.assert_array_equal(again.score(users), model.score(users))
    fresh = BPR(**FAST)  # the check has teeth: the same zero-epoch fit without init_from differs
    fresh.fit(fit_context(ds, split, seed=7, trainer={"accelerator": "cpu", "devices": 1,
                                                      "enable_progress_bar": False, "max_epochs": 0}))
    assert not np.array_equal(fresh.score(users), model.score(users))


def test_init_from_weights_of_another_shape_is_a_config_error(world, tmp_path):
    ds, split = world
    model = BPR(**FAST, embedding_dim=8)
    model.fit(fit_context(ds, split))
    model.save(tmp_path / "bpr.pt")
    ctx = fit_context(ds, split)
    ctx.init_from = tmp_path / "bpr.pt"
    with pytest.raises(ConfigError, match="init_from"):
        BPR(**FAST, embedding_dim=16).fit(ctx)


def test_starting_weights_are_kept_when_training_never_beats_them_on_validation(world, tmp_path):
    """init_from weights are validated first (epoch -1 in the history): a fit that only worsens validation (a
    learning rate that wrecks the embeddings) keeps them exactly; one that improves on a weak start does not."""
    ds, split = world
    model = BPR(**FAST)
    model.fit(fit_context(ds, split))
    model.save(tmp_path / "bpr.pt")
    users = np.arange(split.n_users)
    ctx = fit_context(ds, split)
    ctx.init_from = tmp_path / "bpr.pt"
    wrecked = BPR(**{**FAST, "lr": 50.0, "max_epochs": 2, "patience": 2})
    wrecked.fit(ctx)
    start = [h for h in ctx.history if h["epoch"] == -1]
    trained = [h["val/ndcg@10"] for h in ctx.history if h["epoch"] >= 0 and "val/ndcg@10" in h]
    assert len(start) == 1 and max(trained) < start[0]["val/ndcg@10"]
    assert wrecked.summary.best_epoch == -1
    np.testing.assert_array_equal(wrecked.score(users), model.score(users))
    weak = BPR(**{**FAST, "max_epochs": 1})  # one epoch from a fresh init: a start that training beats
    weak.fit(fit_context(ds, split))
    weak.save(tmp_path / "weak.pt")
    ctx = fit_context(ds, split)
    ctx.init_from = tmp_path / "weak.pt"
    better = BPR(**FAST)
    better.fit(ctx)
    assert better.summary.best_epoch >= 0
