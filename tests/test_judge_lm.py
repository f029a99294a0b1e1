"""The language-model judge: training on a synthetic world where item text carries the rating signal lowers
held-out error below its biased-MF base; the numpy inference equals the torch network; save/load; LoRA trains
the encoder's adapters."""

from __future__ import annotations

import numpy as np
import pytest

from recux import registry
from recux.data import Interactions
from recux.errors import ConfigError
from recux.lm_judge import Judge, JudgeConfig, errors_csr, fit_judge, oof_base, ratings_csr
from recux.rating_eval import random_rating_split, rmse
from recux.rating_models import BiasedMF

MF = {"factors": 4, "reg": 0.1, "iters": 10}


def _world(seed=0, n_users=150, n_items=80, d=16, per_user=25, text_signal=True):
    """Ratings 3 + 2 t_u . f_i + noise, f_i the items' (unit) text embeddings, t_u a hidden taste."""
    rng = np.random.default_rng(seed)
    feats = rng.normal(size=(n_items, d)).astype(np.float32)
    feats /= np.linalg.norm(feats, axis=1, keepdims=True)
    taste = rng.normal(size=(n_users, d))
    hidden = feats if text_signal else rng.normal(size=(n_items, d)) / np.sqrt(d)
    users = np.repeat(np.arange(n_users), per_user)
    items = np.concatenate([rng.choice(n_items, per_user, replace=False) for _ in range(n_users)])
    ratings = 3 + 2 * np.einsum("nd,nd->n", taste[users], hidden[items]) + rng.normal(0, 0.3, len(users))
    return Interactions(users, items, n_users, n_items, rating=ratings), feats


@pytest.fixture(scope="module")
def fitted():
    inter, feats = _world()
    train, test = random_rating_split(inter, 0.2, seed=1)
    cfg = JudgeConfig(rank=16, heads=2, lr=1e-2, batch_size=256, max_epochs=40, patience=5, mf=MF, base="biased_mf")
    judge, record = fit_judge(train, feats, cfg, strategy=registry.build("finetune", "frozen", {}))
    return train, test, feats, judge, record


def test_training_beats_the_ratings_only_base_where_text_carries_the_signal(fitted):
    train, test, _, judge, record = fitted
    mf = BiasedMF(**MF).fit(train.user, train.item, train.rating, train.n_users, train.n_items)
    base_err = rmse(mf.predict(test.user, test.item), test.rating)
    judge_err = rmse(judge.predict(test.user, test.item), test.rating)
    assert judge_err < 0.8 * base_err
    assert record["best_valid_rmse"] < 0.8 * record["valid_rmse_of_base"]


def test_numpy_inference_equals_the_torch_network(fitted):
    import torch

    from recux._judge_net import JudgeNet

    train, test, feats, judge, _ = fitted
    net = JudgeNet(feats, ratings_csr(train), judge.errors, rank=judge.head["A"].shape[0], heads=2)
    with torch.no_grad():
        for k, v in judge.head.items():
            getattr(net, k).copy_(torch.as_tensor(v))
        base = torch.as_tensor(judge.mf.predict(test.user, test.item), dtype=torch.float32)
        torch_pred = net(torch.as_tensor(test.user.astype(np.int64)), torch.as_tensor(test.item.astype(np.int64)),
                         base, None).numpy()
    np.testing.assert_allclose(judge.predict(test.user, test.item), torch_pred, atol=1e-4)


def test_save_and_load_keep_the_predictions(fitted, tmp_path):
    _, test, _, judge, _ = fitted
    loaded = Judge.load(judge.save(tmp_path / "judge"))
    np.testing.assert_allclose(loaded.predict(test.user, test.item), judge.predict(test.user, test.item))
    with pytest.raises(ConfigError, match="no fitted judge"):
        Judge.load(tmp_path / "nowhere")


def test_out_of_fold_base_never_sees_its_own_rating():
    inter, _ = _world(seed=3, n_users=40, n_items=30, per_user=10)
    base = oof_base(inter, folds=4, seed=0, mf=MF, base="biased_mf")
    fold = np.random.default_rng(0).integers(0, 4, len(inter))
    rows = fold == 2
    mf = BiasedMF(**MF).fit(inter.user[~rows], inter.item[~rows], inter.rating[~rows], 40, 30)
    np.testing.assert_allclose(base[rows], mf.predict(inter.user[rows], inter.item[rows]))
    err = errors_csr(inter, base)
    assert err[inter.user[0], inter.item[0]] == pytest.approx(inter.rating[0] - base[0], abs=1e-5)


def test_bad_settings_are_refused():
    inter, feats = _world(seed=2, n_users=20, n_items=10, per_user=5)
    with pytest.raises(ConfigError, match="folds >= 2"):
        fit_judge(inter, feats, JudgeConfig(folds=1))
    with pytest.raises(ConfigError, match="item embeddings"):
        fit_judge(inter, feats[:5], JudgeConfig())
    with pytest.raises(ConfigError, match="trains the encoder"):
        fit_judge(inter, feats, JudgeConfig(mf=MF, base="biased_mf"), strategy=registry.build("finetune", "lora", {}))


@pytest.mark.parametrize("strategy", ["lora", "full"])
def test_encoder_strategies_train_the_encoder_and_move_the_item_features(tmp_path, strategy):
    from tests._tiny_encoder import make_tiny_bert

    folder = make_tiny_bert(tmp_path / "bert")
    text = registry.build("encoder", "hf", {"model": str(folder), "max_length": 16})
    inter, _ = _world(seed=4, n_users=30, n_items=12, per_user=6)
    texts = [f"movie number {i} about topic {i % 3}" for i in range(12)]
    feats = text.embed(texts)
    cfg = JudgeConfig(rank=4, lr=1e-2, batch_size=32, max_epochs=2, max_steps=4, encode_per_step=4, mf=MF, base="biased_mf")
    judge, record = fit_judge(inter, feats, cfg, strategy=registry.build("finetune", strategy, {}), text=text,
                              texts=texts)
    assert record["finetune"]["name"] == strategy and record["steps"] == 4
    assert not np.allclose(judge.head["feats"], feats, atol=1e-6)  # the bank holds the adapted encoder's outputs


def test_a_fit_started_from_a_judge_starts_at_its_predictions(fitted):
    train, test, feats, judge, _ = fitted
    cfg = JudgeConfig(rank=16, heads=2, lr=1e-9, batch_size=256, max_epochs=1, mf=MF, base="biased_mf")
    again, _ = fit_judge(train, feats, cfg, strategy=registry.build("finetune", "frozen", {}), init=judge)
    np.testing.assert_allclose(again.predict(test.user, test.item), judge.predict(test.user, test.item), atol=1e-3)
    with pytest.raises(ConfigError, match="rank and heads"):
        fit_judge(train, feats, JudgeConfig(rank=8, heads=2, mf=MF, base="biased_mf"), init=judge)


def test_a_judge_on_the_bayesian_mf_base_starts_from_it_and_survives_save_and_load(tmp_path):
    from recux.rating_models import BayesianMF

    inter, feats = _world(seed=5, n_users=40, n_items=30, per_user=10)
    bpmf = {"factors": 3, "samples": 8, "burn": 3}
    base = oof_base(inter, folds=3, seed=0, mf=bpmf, base="bayesian_mf")
    fold = np.random.default_rng(0).integers(0, 3, len(inter))
    rows = fold == 1
    ref = BayesianMF(**bpmf).fit(inter.user[~rows], inter.item[~rows], inter.rating[~rows], 40, 30)
    np.testing.assert_allclose(base[rows], ref.predict(inter.user[rows], inter.item[rows]))
    cfg = JudgeConfig(rank=4, lr=1e-9, batch_size=64, max_epochs=1, folds=3, base="bayesian_mf", mf=bpmf)
    judge, _ = fit_judge(inter, feats, cfg, strategy=registry.build("finetune", "frozen", {}))
    full = BayesianMF(**bpmf).fit(inter.user, inter.item, inter.rating, 40, 30)
    # an untrained head (a = 1, c = w = beta = 0, A/B/D ~ 0.01) predicts the base
    np.testing.assert_allclose(judge.predict(inter.user, inter.item), full.predict(inter.user, inter.item), atol=0.02)
    loaded = Judge.load(judge.save(tmp_path / "judge"))
    assert isinstance(loaded.mf, BayesianMF)
    np.testing.assert_allclose(loaded.predict(inter.user, inter.item), judge.predict(inter.user, inter.item))
    with pytest.raises(ConfigError, match="choose bayesian_fm, bayesian_mf or biased_mf"):
        JudgeConfig(base="svd").check()


def test_a_judge_on_the_bayesian_fm_base_with_side_features_survives_save_and_load(tmp_path):
    from recux.rating_models import BayesianFM

    inter, feats = _world(seed=6, n_users=40, n_items=30, per_user=10)
    side = np.random.default_rng(0).integers(0, 2, (40, 3)).astype(float)
    bfm = {"factors": 3, "samples": 8, "burn": 3, "user_side": side}
    cfg = JudgeConfig(rank=4, lr=1e-9, batch_size=64, max_epochs=1, folds=3, base="bayesian_fm", mf=bfm)
    judge, record = fit_judge(inter, feats, cfg, strategy=registry.build("finetune", "frozen", {}))
    full = BayesianFM(**bfm).fit(inter.user, inter.item, inter.rating, 40, 30)
    np.testing.assert_allclose(judge.predict(inter.user, inter.item), full.predict(inter.user, inter.item), atol=0.02)
    assert "user_side" not in record["config"]["mf"]  # the recorded settings stay JSON
    loaded = Judge.load(judge.save(tmp_path / "judge"))
    assert isinstance(loaded.mf, BayesianFM)
    np.testing.assert_allclose(loaded.predict(inter.user, inter.item), judge.predict(inter.user, inter.item))
