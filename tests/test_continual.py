"""The continual task: periods are disjoint and in time order, test rows are never trained on, a continual
update starts from the previous stage's final weights (a retrain does not), forgetting and backward transfer are
what their definitions give on the recorded accuracies, and models without weights are refused clearly."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
import torch

from recux import registry
from recux.data import Interactions
from recux.errors import ConfigError
from recux.pipeline import run_experiment
from recux.plugins.tasks._periods import build_stages, label_periods
from recux.splitting import time_periods
from tests._compose import compose_cfg

WORLD = ["dataset=synthetic", "dataset.n_users=150", "dataset.n_items=60", "logger=none",
         "trainer.enable_progress_bar=false", "task=continual", "task.n_periods=3"]
BPR = ["model=bpr", "model.max_epochs=3", "model.num_threads=1", "model.embedding_dim=8"]


def _log(n=4000, n_users=80, n_items=120, seed=0, span=10**5) -> Interactions:
    """A log with unique (user, item) pairs (so a row is identified by its pair) and many timestamp ties."""
    rng = np.random.default_rng(seed)
    pairs = rng.choice(n_users * n_items, size=n, replace=False)
    return Interactions(user=pairs // n_items, item=pairs % n_items, n_users=n_users, n_items=n_items,
                        timestamp=rng.integers(0, span, n))


def _pairs(inter: Interactions) -> set[tuple[int, int]]:
    return set(zip(inter.user.tolist(), inter.item.tolist(), strict=True))


@pytest.mark.parametrize("n_periods", [2, 3, 5])
def test_periods_are_disjoint_contiguous_in_time_and_cover_the_log(n_periods):
    inter = _log(span=500)  # 4000 rows over 500 seconds: ties at every cut
    period, cuts = time_periods(inter.timestamp, n_periods)
    ts = inter.timestamp
    assert sorted(set(period.tolist())) == list(range(n_periods))  # every row in exactly one period
    for p in range(n_periods - 1):  # every row of period p is earlier than every row of p+1; ties go later
        assert ts[period == p].max() < ts[period == p + 1].min()
        assert ts[period == p + 1].min() == cuts[p]
    # sizes: an independent count of rows before each quantile timestamp
    ordered = np.sort(ts)
    for p, cut in enumerate(cuts, start=1):
        assert cut == ordered[int(len(ts) * p / n_periods)]
        assert (period < p).sum() == (ts < cut).sum()


@pytest.mark.parametrize("update_data", ["all", "new"])
def test_stages_never_train_on_test_rows_and_test_after_training(update_data):
    inter = _log()
    labels = label_periods(inter, 4, test_share=0.5, valid_share=0.1, seed=0)
    plan = build_stages(inter, labels, update_data, seed=0)
    assert len(plan) == 3
    all_test = set().union(*(_pairs(st.test) for st in plan))
    trained_so_far: set = set()
    for st in plan:
        train, valid, test = _pairs(st.train), _pairs(st.valid), _pairs(st.test)
        assert test and train and not (train & all_test) and not (valid & all_test) and not (train & valid)
        assert st.train.timestamp.max() < st.train_cut <= st.valid.timestamp.min()
        assert st.valid.timestamp.max() < st.test.timestamp.min()  # the test period comes after the stage
        trained_so_far |= train
        # test users and items were trained on by this stage (in this update or an earlier one)
        assert {u for u, _ in test} <= {u for u, _ in trained_so_far}
        assert {i for _, i in test} <= {i for _, i in trained_so_far}
        # the history a sequential model reads ends before the test period; the mask covers it
        assert st.history.timestamp.max() < st.test.timestamp.min() and _pairs(st.history) <= _pairs(st.mask)
        assert not (_pairs(st.mask) & test)
    if update_data == "new":  # consecutive updates' rows are disjoint, and together they are every trained row
        every = [_pairs(st.train) for st in plan]
        assert sum(len(s) for s in every) == len(set().union(*every))
        assert set().union(*every) == _pairs(build_stages(inter, labels, "all", seed=0)[-1].train)


def _run(tmp_path, name, overrides):
    return run_experiment(compose_cfg(WORLD + overrides), tmp_path / name)


class _WeightSpy:
    """Records the network's weights when training starts (after the strategy prepared it and init_from
    loaded) and after each fit ends."""

    def __init__(self, monkeypatch, model_name):
        from recux import training

        self.before, self.after = [], []
        fit_lightning = training.fit_lightning

        def spy_fit_lightning(net, *args, **kwargs):
            self.before.append({k: v.detach().clone() for k, v in net.state_dict().items()})
            return fit_lightning(net, *args, **kwargs)

        model_cls = registry.get("model", model_name).obj
        fit = model_cls.fit

        def spy_fit(model, ctx):
            fit(model, ctx)
            self.after.append({k: v.detach().clone() for k, v in model.net.state_dict().items()})

        monkeypatch.setattr(training, "fit_lightning", spy_fit_lightning)
        monkeypatch.setattr(model_cls, "fit", spy_fit)


def _same(a, b) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


SMALL_MODELS = [
    BPR,
    ["model=sasrec", "model.max_epochs=2", "model.hidden_size=16", "model.inner_size=16", "model.max_len=10"],
    ["model=lightgcn", "model.max_epochs=2", "model.embedding_dim=8", "model.n_layers=1", "model.num_threads=1"],
    ["model=multvae", "model.max_epochs=2", "model.hidden_dims=[16]", "model.latent_dim=8", "model.num_threads=1"],
    ["model=bert4rec", "model.max_epochs=2", "model.hidden_size=16", "model.inner_size=16", "model.max_len=10"],
]


@pytest.mark.parametrize("model", SMALL_MODELS, ids=lambda m: m[0].split("=")[1])
def test_a_continual_stage_starts_from_the_previous_stage_final_weights_and_a_retrain_does_not(
        tmp_path, monkeypatch, model):
    name = model[0].split("=")[1]
    spy = _WeightSpy(monkeypatch, name)
    _run(tmp_path, "continual", model)
    assert len(spy.before) == len(spy.after) == 2
    assert _same(spy.before[1], spy.after[0])  # stage 1 starts exactly where stage 0 ended
    assert not _same(spy.before[1], spy.before[0])  # ... which is not a fresh initialisation
    spy.before.clear()
    spy.after.clear()
    _run(tmp_path, "retrain", model + ["task.mode=retrain"])
    assert not _same(spy.before[1], spy.after[0])  # a retrain starts afresh: the same seeded init as stage 0
    assert _same(spy.before[1], spy.before[0])


def test_a_lora_continual_stage_starts_from_the_previous_stage_adapters(tmp_path, monkeypatch):
    """LM-SASRec under LoRA: stage 1 starts from stage 0's final weights, adapters included (they are added
    before the weights load), and those adapters had trained away from their zero start."""
    from tests._lm_world import tiny_bert_folder

    tiny = tiny_bert_folder(tmp_path / "bert")
    spy = _WeightSpy(monkeypatch, "lm_sasrec")
    _run(tmp_path, "lora", ["model=lm_sasrec", "split=loo", "finetune=lora", "finetune.r=2", f"encoder.model={tiny}",
                            "encoder.max_length=16", "model.max_epochs=1", "model.hidden_size=16",
                            "model.inner_size=16", "model.max_len=8", "model.encode_per_step=8"])
    assert len(spy.before) == len(spy.after) == 2
    adapters = [k for k in spy.after[0] if "lora_B" in k]
    assert adapters and _same(spy.before[1], spy.after[0])
    assert any(spy.after[0][k].abs().sum() > 0 for k in adapters)  # B starts at zero: these trained


def test_forgetting_and_backward_transfer_follow_their_definitions_on_the_recorded_numbers(tmp_path):
    result = _run(tmp_path, "run", BPR + ["task.n_periods=4"])
    block = result["continual"]
    key = block["metric"]
    acc = [[None if cell is None else cell[key] for cell in row] for row in block["accuracy"]]
    table = pl.read_parquet(tmp_path / "run" / "continual.parquet")
    assert table["stage"].to_list() == [0, 1, 2] and table["test_period"].to_list() == [1, 2, 3]
    for s in range(3):
        row = table.row(s, named=True)
        assert row[key] == pytest.approx(acc[s][s])  # per-period accuracy is the first test of that period
        if s == 0:
            assert row[f"bwt_{key}"] is None and row[f"forgetting_{key}"] is None
            continue
        bwt = sum(acc[s][j] - acc[j][j] for j in range(s)) / s  # Lopez-Paz & Ranzato 2017
        forget = sum(max(acc[m][j] for m in range(j, s)) - acc[s][j] for j in range(s)) / s  # Chaudhry 2018
        assert row[f"bwt_{key}"] == pytest.approx(bwt) and row[f"forgetting_{key}"] == pytest.approx(forget)
    matrix = pl.read_parquet(tmp_path / "run" / "continual_matrix.parquet").filter(pl.col("metric") == key)
    assert {(r["stage"], r["task"]): r["value"] for r in matrix.iter_rows(named=True)} == pytest.approx(
        {(s, j): acc[s][j] for s in range(3) for j in range(s + 1)})
    assert result["metrics"][key] == pytest.approx(sum(acc[t][t] for t in range(3)) / 3)
    on_disk = json.loads((tmp_path / "run" / "results.json").read_text())
    assert on_disk["continual"]["periods"][2][f"forgetting_{key}"] == pytest.approx(
        table.row(2, named=True)[f"forgetting_{key}"])


def test_models_without_weights_run_as_retrain_only(tmp_path):
    with pytest.raises(ConfigError, match="task.mode=retrain"):
        _run(tmp_path, "ease", ["model=ease"])
    result = _run(tmp_path, "pop", ["model=pop", "task.mode=retrain"])
    assert [r["init"] for r in result["continual"]["periods"]] == ["fresh", "fresh"]


@pytest.mark.parametrize("bad, setting", [("task.mode=warm", "task.mode"), ("task.update_data=some", "update_data"),
                                          ("task.n_periods=1", "n_periods"), ("task.test_share=0", "test_share")])
def test_bad_settings_are_refused_naming_the_setting(tmp_path, bad, setting):
    with pytest.raises(ConfigError, match=setting):
        _run(tmp_path, "bad", BPR + [bad])


def test_update_max_epochs_caps_only_the_continual_updates(tmp_path):
    result = _run(tmp_path, "capped", BPR + ["task.update_max_epochs=1"])
    assert [r["epochs"] for r in result["continual"]["periods"]] == [3, 1]  # stage 0 keeps the model's budget
    result = _run(tmp_path, "retrain", BPR + ["task.update_max_epochs=1", "task.mode=retrain"])
    assert [r["epochs"] for r in result["continual"]["periods"]] == [3, 3]  # the baseline retrains in full


def test_mode_and_update_data_are_variant_settings_and_the_periods_are_data():
    from recux import identity

    def hashes(extra):
        cfg = stages_config(WORLD + BPR + extra)
        return identity.data_hash(cfg), identity.variant_hash(cfg)

    base = hashes([])
    for variant in (["task.mode=retrain"], ["task.update_data=new"], ["task.update_max_epochs=5"]):
        data, var = hashes(variant)
        assert data == base[0] and var != base[1]  # same section of the leaderboard, another row
    for data_change in (["task.n_periods=4"], ["task.test_share=0.3"], ["task.valid_share=0.2"]):
        assert hashes(data_change)[0] != base[0]


def stages_config(overrides):
    from omegaconf import OmegaConf

    return OmegaConf.to_container(compose_cfg(overrides), resolve=True)
