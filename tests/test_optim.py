"""Optimisers and schedules from config specs, built by RecuxModule over the strategy's trainable parameters."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from recux.errors import ConfigError  # noqa: E402
from recux.finetune import FineTuneStrategy  # noqa: E402
from recux.module import RecuxModule  # noqa: E402
from recux.optim import build_optimizer, build_scheduler, linear_decay  # noqa: E402
from recux.plugins.models.bpr import BPR  # noqa: E402
from recux.plugins.models.sasrec import SASRec  # noqa: E402


class _Two(RecuxModule):
    def __init__(self, optimizer, scheduler=None, finetune=None):
        super().__init__(optimizer, scheduler, finetune)
        self.a = nn.Linear(3, 3)
        self.b = nn.Linear(3, 3)


class _OnlyB(FineTuneStrategy):
    def trainable_parameters(self, module):
        return list(module.b.parameters())


def _ids(params):
    return {id(p) for p in params}


def test_the_optimiser_gets_exactly_the_strategys_parameters_from_a_partial_spec():
    spec = {"_target_": "torch.optim.SGD", "_partial_": True, "lr": 0.1, "momentum": 0.9}
    net = _Two(spec, finetune=_OnlyB())
    opt = net.configure_optimizers()
    assert isinstance(opt, torch.optim.SGD)
    assert _ids(p for g in opt.param_groups for p in g["params"]) == _ids(net.b.parameters())
    assert opt.param_groups[0]["lr"] == 0.1 and opt.param_groups[0]["momentum"] == 0.9
    everything = _Two(spec).configure_optimizers()  # no strategy: every parameter that requires grad
    assert len([p for g in everything.param_groups for p in g["params"]]) == 4


def test_a_network_cannot_override_configure_optimizers():
    with pytest.raises(TypeError, match="configure_optimizers"):
        class _Own(RecuxModule):  # noqa: F841
            def configure_optimizers(self):
                return None


def test_fused_is_tried_when_the_class_takes_it_and_bad_specs_name_the_setting():
    p = [nn.Parameter(torch.zeros(3))]
    adam = build_optimizer({"_target_": "torch.optim.Adam", "lr": 0.01}, p)
    if tuple(int(x) for x in torch.__version__.split(".")[:2]) >= (2, 4):  # CPU fused kernels exist
        assert adam.defaults["fused"] is True
    assert build_optimizer({"_target_": "torch.optim.Adam", "lr": 0.01, "fused": False}, p).defaults["fused"] is False
    with pytest.raises(ConfigError, match="_target_"):
        build_optimizer({"lr": 0.01}, p)
    with pytest.raises(ConfigError, match="cannot be imported"):
        build_optimizer({"_target_": "torch.optim.NoSuch", "lr": 0.01}, p)
    with pytest.raises(ConfigError, match="no trainable parameters"):
        build_optimizer({"_target_": "torch.optim.Adam"}, [])


def test_linear_decay_follows_its_formula_and_gets_the_total_steps():
    p = [nn.Parameter(torch.zeros(1))]
    opt = torch.optim.SGD(p, lr=0.5)
    sched = build_scheduler({"_target_": "recux.optim.linear_decay", "interval": "step"}, opt, lambda: 8)
    assert sched["interval"] == "step" and sched["scheduler"].lr_lambdas[0](0) == 1.0
    for step in range(1, 11):
        opt.step()
        sched["scheduler"].step()
        assert opt.param_groups[0]["lr"] == pytest.approx(0.5 * max(0.0, 1.0 - step / 8))
    assert linear_decay(torch.optim.SGD(p, lr=1.0), 0).lr_lambdas[0](1) == 0.0  # total clipped to 1
    with pytest.raises(ConfigError, match="interval"):
        build_scheduler({"_target_": "recux.optim.linear_decay", "interval": "batch"}, opt, lambda: 8)


def test_models_fill_lr_and_weight_decay_into_a_given_spec_and_keep_their_defaults():
    assert BPR(lr=0.02).optimizer_spec() == {"_target_": "torch.optim.Adam", "lr": 0.02, "weight_decay": 0.0}
    assert BPR(lr=0.02, sparse=True).optimizer_spec() == {"_target_": "torch.optim.SparseAdam", "lr": 0.02}
    sgd = BPR(lr=0.02, weight_decay=0.1, optimizer={"_target_": "torch.optim.SGD", "momentum": 0.9})
    assert sgd.optimizer_spec() == {"_target_": "torch.optim.SGD", "momentum": 0.9, "lr": 0.02, "weight_decay": 0.1}
    assert SASRec(lr_schedule="linear").scheduler_spec() == {"_target_": "recux.optim.linear_decay",
                                                               "interval": "step"}
    assert SASRec().scheduler_spec() is None
    with pytest.raises(ConfigError, match="lr_schedule"):
        SASRec(lr_schedule="linear", scheduler={"_target_": "torch.optim.lr_scheduler.StepLR", "step_size": 1})
