"""Lightning glue: tensor batches (coverage, negatives, determinism), the per-epoch validation/early
stopping/checkpoint loop, the trainer budget, logging to a Lightning logger, and fine-tuning hooks."""

from __future__ import annotations

import csv

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from recux.finetune import FineTuneStrategy  # noqa: E402
from recux.plugins.finetune.scratch import Scratch  # noqa: E402
from recux.plugins.models._bpr_net import BPRNet  # noqa: E402
from recux.plugins.models.bpr import BPR  # noqa: E402
from recux.seeding import seed_everything  # noqa: E402
from recux.training import PairBatches, _member_kernel, fit_lightning  # noqa: E402
from tests._model_world import fit_context, make_world  # noqa: E402

FAST = dict(batch_size=256, lr=0.01, init_std=0.01, num_threads=1)


@pytest.fixture(scope="module")
def world():
    return make_world(n_users=150, n_items=120, seed=3)


def _pairs(seed=0, n_users=40, n_items=30, density=0.3):
    rng = np.random.default_rng(seed)
    dense = rng.random((n_users, n_items)) < density
    u, i = np.nonzero(dense)
    return u, i, dense


# ---------------------------------------------------------------- batches


def test_member_kernel_matches_python_sets():
    u, i, dense = _pairs()
    from scipy import sparse as sp

    m = sp.csr_matrix(dense.astype(np.int8))
    rng = np.random.default_rng(1)
    qu = rng.integers(0, dense.shape[0], 5000)
    qi = rng.integers(0, dense.shape[1], 5000)
    out = np.empty(5000, dtype=np.bool_)
    _member_kernel(m.indptr.astype(np.int64), m.indices.astype(np.int32), qu, qi, out)
    np.testing.assert_array_equal(out, dense[qu, qi])


def test_each_epoch_covers_every_pair_once_in_a_new_order():
    u, i, _ = _pairs()
    batches = PairBatches(u, i, n_items=30, batch_size=64, seed=5)
    epochs = [list(batches) for _ in range(2)]
    assert len(epochs[0]) == len(batches) == int(np.ceil(len(u) / 64))
    got = []
    for epoch in epochs:
        users = torch.cat([b[0] for b in epoch]).numpy()
        items = torch.cat([b[1] for b in epoch]).numpy()
        assert sorted(zip(users, items, strict=True)) == sorted(zip(u, i, strict=True))
        assert all(len(b[0]) <= 64 and b[2].shape == (len(b[0]), 1) for b in epoch)
        got.append(users)
    assert not np.array_equal(got[0], got[1])  # reshuffled


def test_negatives_avoid_training_positives_only_when_asked():
    u, i, dense = _pairs(density=0.4)
    for exclude in (True, False):
        batches = PairBatches(u, i, n_items=30, batch_size=128, num_negatives=3, seed=1,
                              exclude_positives=exclude)
        hits = total = 0
        for _ in range(5):
            for users, _pos, neg in batches:
                assert neg.shape == (len(users), 3)
                assert int(neg.min()) >= 0 and int(neg.max()) < 30
                hits += int(dense[users.numpy()[:, None], neg.numpy()].sum())
                total += neg.numel()
        if exclude:
            assert hits == 0
        else:  # uniform draws hit a positive at about the density (0.4)
            assert 0.3 < hits / total < 0.5


def test_batches_repeat_exactly_under_the_same_seed():
    u, i, _ = _pairs()

    def flat(seed):
        batches = PairBatches(u, i, 30, batch_size=50, seed=seed)
        return [torch.cat([b[0], b[1], b[2].ravel()]) for b in batches]

    a, b, c = flat(9), flat(9), flat(10)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(torch.equal(x, y) for x, y in zip(a, c, strict=True))


def test_probing_iterability_consumes_no_epoch():
    u, i, _ = _pairs()
    a = PairBatches(u, i, 30, batch_size=50, seed=2)
    b = PairBatches(u, i, 30, batch_size=50, seed=2)
    iter(a)  # Lightning does this to check the loader
    first_a, first_b = next(iter(a)), next(iter(b))
    assert all(torch.equal(x, y) for x, y in zip(first_a, first_b, strict=True))


# ---------------------------------------------------------------- the fit loop


ADAM = {"_target_": "torch.optim.Adam", "lr": 0.01}


def _net(split, seed=0, finetune=None):
    seed_everything(seed)
    return BPRNet(split.n_users, split.n_items, 16, reg=0.0, init_std=0.01, sparse=False, optimizer=ADAM,
                  finetune=finetune)


def _batches(split, seed=0):
    return PairBatches(split.train.user, split.train.item, split.n_items, batch_size=256, seed=seed)


def test_without_validation_it_trains_the_full_budget(world):
    ds, split = world
    ctx = fit_context(ds, split)
    ctx.validate = None
    summary = fit_lightning(_net(split), ctx, _batches(split), max_epochs=3, patience=1)
    assert summary.epochs_run == 3 and summary.best_epoch is None and not summary.stopped_early
    assert [r["epoch"] for r in ctx.history] == [0, 1, 2]
    assert all(not any(k.startswith("val/") for k in r) for r in ctx.history)
    assert all(r["epoch_seconds"] > 0 and np.isfinite(r["train_loss"]) for r in ctx.history)


def test_eval_every_validates_on_schedule_and_at_the_last_epoch(world):
    ds, split = world
    ctx = fit_context(ds, split)
    fit_lightning(_net(split), ctx, _batches(split), max_epochs=5, patience=10, eval_every=2)
    validated = [r["epoch"] for r in ctx.history if "val/ndcg@10" in r]
    assert validated == [1, 3, 4]


def test_each_validation_writes_one_progress_line_with_the_running_best(world, caplog):
    """Batch jobs run without a progress bar: run.log must still show each validation and the best so far."""
    import logging
    import re

    ds, split = world
    ctx = fit_context(ds, split)
    scores = iter([0.2, 0.5, 0.3, 0.4])
    ctx.validate = lambda score_fn: {"ndcg@10": next(scores)}
    with caplog.at_level(logging.INFO, logger="recux.training"):
        fit_lightning(_net(split), ctx, _batches(split), max_epochs=4, patience=10)
    lines = [r.getMessage() for r in caplog.records if r.name == "recux.training"]
    parsed = [re.search(r"epoch (\d+): .*val/ndcg@10 ([\d.]+) \(best ([\d.]+)\)", m) for m in lines]
    assert all(parsed) and len(parsed) == 4, lines
    assert [(int(m[1]), float(m[2]), float(m[3])) for m in parsed] == [
        (0, 0.2, 0.2), (1, 0.5, 0.5), (2, 0.3, 0.5), (3, 0.4, 0.5)]


def test_threads_sets_and_restores_counts_even_on_error():
    import numba

    from recux.training import threads

    t0, n0 = torch.get_num_threads(), numba.get_num_threads()
    with threads(1):
        assert torch.get_num_threads() == 1 and numba.get_num_threads() == 1
    assert (torch.get_num_threads(), numba.get_num_threads()) == (t0, n0)
    with pytest.raises(RuntimeError), threads(1):
        raise RuntimeError("boom")
    assert (torch.get_num_threads(), numba.get_num_threads()) == (t0, n0)
    with threads(None):
        assert torch.get_num_threads() == t0


def test_patience_counts_evaluations_not_epochs(world):
    """With a validator that never improves, training stops after 1 + patience evaluations."""
    ds, split = world
    ctx = fit_context(ds, split)
    ctx.validate = lambda score_fn: {"ndcg@10": 0.5}
    summary = fit_lightning(_net(split), ctx, _batches(split), max_epochs=30, patience=2, eval_every=3)
    validated = [r["epoch"] for r in ctx.history if "val/ndcg@10" in r]
    assert validated == [2, 5, 8]
    assert summary.stopped_early and summary.epochs_run == 9 and summary.best_epoch == 2


def test_best_checkpoint_is_restored(world, tmp_path):
    """A validator that rewards epoch 1's weights (by their distance to a reference) forces an early best;
    the returned module must carry exactly those weights."""
    ds, split = world
    ctx = fit_context(ds, split, run_dir=tmp_path)
    net = _net(split)
    snapshots = []

    def validate(score_fn):
        w = net.user_emb.weight.detach().clone()
        snapshots.append(w)
        return {"ndcg@10": 1.0 if len(snapshots) == 2 else 0.1 / len(snapshots)}

    ctx.validate = validate
    summary = fit_lightning(net, ctx, _batches(split), max_epochs=6, patience=3)
    assert summary.best_epoch == 1 and summary.best_score == 1.0
    assert len(snapshots) == 5  # epochs 0-4: stopped 3 evaluations after the best
    assert torch.equal(net.user_emb.weight, snapshots[1])
    assert not torch.equal(net.user_emb.weight, snapshots[-1])
    assert (tmp_path / "checkpoints" / "best.ckpt").exists()


def test_trainer_max_epochs_only_lowers_the_model_budget(world):
    ds, split = world
    ctx = fit_context(ds, split, trainer={"accelerator": "cpu", "devices": 1, "enable_progress_bar": False,
                                          "max_epochs": 2})
    model = BPR(max_epochs=10, **FAST)
    model.fit(ctx)
    assert model.summary.epochs_run == 2
    trainer = {"accelerator": "cpu", "enable_progress_bar": False, "max_epochs": 50}
    ctx = fit_context(ds, split, trainer=trainer)
    model = BPR(max_epochs=1, **FAST)
    model.fit(ctx)
    assert model.summary.epochs_run == 1


def test_metrics_reach_the_lightning_logger(world, tmp_path):
    from pytorch_lightning.loggers import CSVLogger

    ds, split = world
    ctx = fit_context(ds, split, logger=CSVLogger(tmp_path, name="run", version=0))
    BPR(max_epochs=3, **FAST).fit(ctx)
    rows = list(csv.DictReader(open(tmp_path / "run" / "version_0" / "metrics.csv")))
    by_epoch = {}
    for row in rows:
        for key, value in row.items():
            if value != "":
                by_epoch.setdefault(int(row["epoch"]), {})[key] = float(value)
    assert sorted(by_epoch) == [0, 1, 2]
    for rec in ctx.history:
        logged = by_epoch[rec["epoch"]]
        assert logged["val/ndcg@10"] == pytest.approx(rec["val/ndcg@10"], rel=1e-6)
        assert logged["train/loss"] == pytest.approx(rec["train_loss"], rel=1e-6)
        assert "val/recall@10" in logged and "time/epoch_seconds" in logged


def test_progress_bar_setting_is_honoured(world, capsys):
    ds, split = world
    for enabled in (True, False):
        trainer = {"accelerator": "cpu", "devices": 1, "enable_progress_bar": enabled,
                   "progress_refresh_rate": 1}
        ctx = fit_context(ds, split, trainer=trainer)
        BPR(max_epochs=1, **FAST).fit(ctx)
        captured = capsys.readouterr()
        assert ("Epoch 0" in captured.out + captured.err) == enabled


# ---------------------------------------------------------------- fine-tuning hooks


class _FreezeItems(FineTuneStrategy):
    """A test strategy: item embeddings stay at their initial values."""

    name = "freeze_items"

    def prepare(self, module, ctx=None):
        module.item_emb.weight.requires_grad_(False)
        self.items0 = module.item_emb.weight.detach().clone()
        self.users0 = module.user_emb.weight.detach().clone()


def test_models_train_only_what_the_strategy_allows(world):
    ds, split = world
    ctx = fit_context(ds, split)
    strategy = _FreezeItems()
    ctx.finetune = strategy
    model = BPR(max_epochs=2, **FAST)
    model.fit(ctx)
    assert torch.equal(model.net.item_emb.weight, strategy.items0)
    assert not torch.equal(model.net.user_emb.weight, strategy.users0)


def test_scratch_unfreezes_everything_and_registers():
    from recux import registry

    net = BPRNet(5, 7, 4, reg=0.0, init_std=0.1, sparse=False, optimizer=ADAM)
    net.item_emb.weight.requires_grad_(False)
    strategy = registry.build("finetune", "scratch")
    assert isinstance(strategy, Scratch) and strategy.describe() == {"name": "scratch"}
    assert strategy.prepare(net) is None  # in place
    assert {id(p) for p in strategy.trainable_parameters(net)} == {id(p) for p in net.parameters()}


@pytest.mark.parametrize("n_neg,reg", [(1, 0.0), (3, 0.05)])
def test_bpr_loss_gradients_match_autograd_reference(n_neg, reg):
    """The hand-written backward equals autograd on the plain formula (and torch's gradcheck)."""
    from recux.plugins.models._bpr_net import BPRLoss

    gen = torch.Generator().manual_seed(0)
    u = torch.randn(7, 5, generator=gen, dtype=torch.float64, requires_grad=True)
    items = torch.randn(7, 1 + n_neg, 5, generator=gen, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: BPRLoss.apply(a, b, reg), (u, items))

    def reference(a, b):
        pos = (a * b[:, 0]).sum(-1, keepdim=True)
        neg = torch.einsum("bd,bkd->bk", a, b[:, 1:])
        return -torch.log(torch.sigmoid(pos - neg)).mean() + reg * ((a ** 2).sum() + (b ** 2).sum()) / len(a)

    got = torch.autograd.grad(BPRLoss.apply(u, items, reg), (u, items))
    want = torch.autograd.grad(reference(u, items), (u, items))
    assert torch.allclose(BPRLoss.apply(u, items, reg), reference(u, items))
    for g, w in zip(got, want, strict=True):
        assert torch.allclose(g, w)
