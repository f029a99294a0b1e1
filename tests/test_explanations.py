"""Explanations (issue 13 §3): explainers against plain recomputations of the models' own formulas, re-scoring an
edited history against scoring a model actually conditioned on it, gradient x input against finite differences,
the deletion test against an independent recomputation (EASE: exact by construction), the pairing refusal, and
the run's explanations.parquet / results against the saved model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from recux.data import Interactions, Split
from recux.errors import ConfigError
from recux.explain import Attribution, ExplainSettings, ExplainSetup
from recux.faithfulness import deletion_test, summarize
from recux.model import FitContext
from recux.plugins.explainers.gradient import GradientXInput
from recux.plugins.explainers.neighbourhood import Neighbourhood
from recux.plugins.explainers.text_similarity import TextSimilarity
from recux.plugins.finetune.scratch import Scratch
from recux.plugins.models.content import ContentRecommender
from recux.plugins.models.ease import EASE
from recux.plugins.models.itemknn import ItemKNN
from recux.ranking import rank_topk
from tests._model_world import fit_context
from tests._seq_world import seq_context, train_plus_valid


@pytest.fixture(scope="module")
def linear(model_world):
    ds, split = model_world
    ease, knn = EASE(l2=50.0), ItemKNN(k=40)
    for m in (ease, knn):
        m.fit(fit_context(ds, split))
    return ease, knn


@pytest.fixture(scope="module")
def content(model_world):
    ds, split = model_world
    train = split.train
    rng = np.random.default_rng(3)
    ts = rng.integers(0, 4, size=len(train))  # ties in time: the log order breaks them
    timed = Interactions(user=train.user, item=train.item, n_users=train.n_users, n_items=train.n_items,
                         timestamp=ts)
    vectors = rng.normal(size=(train.n_items, 8)).astype(np.float32)
    model = ContentRecommender(features="text", profile="recency", half_life=3.0)
    model.fit(FitContext(dataset=ds, split=Split(timed, split.valid, split.test, protocol="t"),
                         finetune=Scratch(), item_embeddings=lambda: vectors))
    return model, timed, vectors


@pytest.fixture(scope="module")
def sasrec(seq_world):
    from recux.plugins.models.sasrec import SASRec

    ds, split = seq_world
    model = SASRec(max_len=8, hidden_size=16, inner_size=32, n_layers=2, n_heads=2, dropout=0.0, attn_dropout=0.0,
                   batch_size=64, max_epochs=2, patience=2, num_threads=1, init_std=0.3)
    model.fit(seq_context(ds, split))
    model.condition_on(train_plus_valid(split))
    return model, split


@pytest.fixture(scope="module")
def bert4rec(seq_world):
    from recux.plugins.models.bert4rec import BERT4Rec

    ds, split = seq_world
    model = BERT4Rec(max_len=8, hidden_size=16, inner_size=32, n_layers=1, n_heads=2, batch_size=64, max_epochs=1,
                     patience=1, num_threads=1)
    model.fit(seq_context(ds, split))
    model.condition_on(train_plus_valid(split))
    return model


def top_items(model, users, n, known=None):
    items, _ = rank_topk(model.score, users, n, exclude=known, batch_size=64)
    return items.astype(np.int64)


# ------------------------------------------------------------------ explainers against the models' formulas


def test_neighbourhood_contributions_sum_to_the_score_over_the_training_items(linear, model_world):
    _, split = model_world
    users = np.arange(25)
    for model in linear:
        items = top_items(model, users, 6)
        atts = Neighbourhood().explain(model, users, model.history(users), items)
        scores = model.score(users)
        for k, u in enumerate(users):
            np.testing.assert_array_equal(atts[k].candidates, np.unique(split.train.item[split.train.user == u]))
            np.testing.assert_allclose(atts[k].weights.sum(axis=1), scores[k, items[k]], rtol=1e-5, atol=1e-6)


def test_text_similarity_is_the_profile_weighted_cosine_and_sums_to_the_score(content):
    model, timed, vectors = content
    users = np.arange(20)
    items = top_items(model, users, 4)
    atts = TextSimilarity().explain(model, users, model.history(users), items)
    e = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    scores = model.score(users)
    for k, u in enumerate(users):
        rows = np.flatnonzero(timed.user == u)
        order = sorted(rows, key=lambda r: (timed.timestamp[r], r))  # time, then log order
        w = {}
        for back, r in enumerate(reversed(order)):  # 0 = most recent
            w[int(timed.item[r])] = w.get(int(timed.item[r]), 0.0) + 0.5 ** (back / 3.0)
        cand = np.array(sorted(w))
        wj = np.array([w[j] for j in cand])
        norm = np.linalg.norm(wj @ e[cand])
        expected = (e[items[k]] @ e[cand].T) * wj / norm
        np.testing.assert_array_equal(atts[k].candidates, cand)
        np.testing.assert_allclose(atts[k].weights, expected, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(atts[k].weights.sum(axis=1), scores[k, items[k]], rtol=1e-4, atol=1e-6)


def test_gradient_explains_bert4rec_over_its_history_items_not_the_mask_token(bert4rec):
    users = np.arange(5)
    hist = bert4rec.history(users)
    atts = GradientXInput().explain(bert4rec, users, hist, top_items(bert4rec, users, 2))
    for h, att in zip(hist, atts, strict=True):
        np.testing.assert_array_equal(att.candidates, np.unique(h[-(bert4rec.hparams["max_len"] - 1):]))
        assert np.isfinite(att.weights).all() and np.abs(att.weights).sum() > 0


def _central_difference(net, rows, x, r: int, t: int, item: int, eps: float) -> float:
    """d score(item) / d scale of input t of row r, times that input's scale: (f(x_t (1 + eps)) - f(x_t (1 - eps)))
    / (2 eps), the gradient-x-input attribution by central differences."""
    hi, lo = x[r:r + 1].clone(), x[r:r + 1].clone()
    hi[0, t] *= 1 + eps
    lo[0, t] *= 1 - eps
    return (net.score_from_inputs(rows[r:r + 1], hi)[0, item]
            - net.score_from_inputs(rows[r:r + 1], lo)[0, item]).item() / (2 * eps)


def test_gradient_x_input_matches_central_finite_differences(sasrec):
    import torch

    model, _ = sasrec
    net = model.net.double()
    try:
        users = np.arange(6)
        hist = model.history(users)
        items = top_items(model, users, 3)
        atts = GradientXInput().explain(model, users, hist, items)
        rows = torch.as_tensor(model.sequence_rows(hist))
        eps = 1e-6
        with torch.no_grad():
            x = net.item_inputs(rows)
            for r in range(len(users)):
                for k, item in enumerate(items[r]):
                    for t in np.flatnonzero(rows[r].numpy() > 0):
                        fd = _central_difference(net, rows, x, r, t, item, eps)
                        j = np.searchsorted(atts[r].candidates, int(rows[r, t]) - 1)
                        assert atts[r].weights[k, j] == pytest.approx(fd, rel=1e-5, abs=1e-8)
    finally:
        net.float()


# ------------------------------------------------------------------ re-scoring an edited history


def test_rescoring_the_unedited_history_reproduces_score(linear, content, sasrec, bert4rec):
    users = np.arange(30)
    for model in (*linear, content[0], sasrec[0], bert4rec):
        np.testing.assert_allclose(model.score_histories(model.history(users)), model.score(users),
                                   rtol=1e-5, atol=1e-6)


def test_rescoring_equals_a_model_conditioned_on_the_edited_history(linear, content, sasrec, model_world):
    rng = np.random.default_rng(0)
    users = np.arange(12)
    # EASE / ItemKNN: the edited binary row times the item-item matrix, in plain NumPy
    for model in linear:
        edited = [h[rng.random(len(h)) < 0.6] for h in model.history(users)]
        x = np.zeros((len(users), model.n_items))
        for r, h in enumerate(edited):
            x[r, h] = 1.0
        b = model.item_item()
        b = b.toarray() if hasattr(b, "toarray") else b
        np.testing.assert_allclose(model.score_histories(edited), x @ b.astype(np.float64), rtol=1e-5, atol=1e-6)
    # content: refitted on the edited training log
    model, timed, vectors = content
    drop = np.isin(timed.user, users) & (rng.random(len(timed)) < 0.4)
    kept = timed.subset(~drop)
    refit = ContentRecommender(features="text", profile="recency", half_life=3.0)
    ds, split = model_world
    refit.fit(FitContext(dataset=ds, split=Split(kept, split.valid, split.test, protocol="t"), finetune=Scratch(),
                         item_embeddings=lambda: vectors))
    np.testing.assert_allclose(model.score_histories(refit.history(users)), refit.score(users), rtol=1e-5,
                               atol=1e-6)
    # SASRec: condition_on the edited interactions (what the runner does), then score
    seq, split = sasrec
    full = train_plus_valid(split)
    edited_hist = [h[rng.random(len(h)) < 0.7] for h in seq.history(users)]
    expected_scores = seq.score_histories(edited_hist)
    keep = ~np.isin(full.user, users)
    parts = [full.subset(keep)]
    for u, h in zip(users, edited_hist, strict=True):
        parts.append(Interactions(user=np.full(len(h), u), item=h, n_users=full.n_users, n_items=full.n_items,
                                  timestamp=np.arange(len(h), dtype=np.int64)))
    edited = Interactions(user=np.concatenate([p.user for p in parts]), item=np.concatenate([p.item for p in parts]),
                          n_users=full.n_users, n_items=full.n_items,
                          timestamp=np.concatenate([p.timestamp for p in parts]))
    try:
        seq.condition_on(edited)
        np.testing.assert_allclose(seq.score(users), expected_scores, rtol=1e-5, atol=1e-6)
    finally:
        seq.condition_on(full)


# ------------------------------------------------------------------ the deletion test


def _plain_rank(scores, item, allowed):
    above = (scores > scores[item]) | ((scores == scores[item]) & (np.arange(len(scores)) < item))
    return 1 + int(np.sum(above & allowed))


def test_deletion_test_on_ease_beats_random_and_matches_a_plain_recomputation(linear, model_world):
    ease = linear[0]
    _, split = model_world
    known = (split.train.csr() + split.valid.csr()).tocsr()
    users = np.arange(60)
    items = top_items(ease, users, 5, known)
    hist = ease.history(users)
    m, draws = 3, 200
    atts = Neighbourhood().explain(ease, users, hist, items)
    d = deletion_test(ease, users, hist, items, atts, known, m=m, draws=draws, seed=0)
    b = ease.weights
    for k, u in enumerate(users):
        h = np.unique(split.train.item[split.train.user == u])
        allowed = np.ones(ease.n_items, bool)
        allowed[known[u].indices] = False
        x = np.zeros(ease.n_items, np.float32)
        x[h] = 1
        before = x @ b
        s_drop, r_drop, expect_random, var_random = [], [], [], []
        for i in items[k]:
            contrib = b[h, i].astype(np.float64)
            top = h[np.lexsort((h, -contrib))[:m]]
            x2 = x.copy()
            x2[top] = 0
            after = x2 @ b
            s_drop.append(before[i] - after[i])
            r_drop.append(_plain_rank(after, i, allowed) - _plain_rank(before, i, allowed))
            n = len(h)  # a random m-subset's sum: mean m * mean(c), variance m (n - m) / (n - 1) * var(c)
            expect_random.append(m * contrib.mean())
            var_random.append(m * (n - m) / (n - 1) * contrib.var())
        assert d.score_drop[k] == pytest.approx(np.mean(s_drop), rel=1e-4, abs=1e-6)
        assert d.rank_drop[k] == pytest.approx(np.mean(r_drop))
        sd = np.sqrt(np.sum(var_random) / draws) / len(items[k])
        assert abs(d.score_drop_random[k] - np.mean(expect_random)) < 5 * sd + 1e-6
        assert d.score_drop[k] >= d.score_drop_random[k]  # the top-m sum is the largest m-subset sum
    summary = summarize(d)
    assert summary["score_drop"]["difference"] > 0 and summary["score_drop"]["ci_low"] > 0
    assert summary["rank_drop"]["difference"] > 0 and summary["rank_drop"]["p_wilcoxon"] < 0.01


def test_users_with_no_more_history_items_than_m_are_excluded_and_counted(linear):
    ease = linear[0]
    users = np.array([0, 1])
    hist = [np.array([3, 4]), ease.history(users[1:])[0]]
    items = np.array([[10, 11], [10, 11]])
    atts = Neighbourhood().explain(ease, users, hist, items)
    from scipy import sparse

    d = deletion_test(ease, users, hist, items, atts, sparse.csr_matrix((2, ease.n_items)), m=2, draws=2, seed=0)
    assert np.isnan(d.score_drop[0]) and not np.isnan(d.score_drop[1])
    assert summarize(d)["users_excluded"] == 1


def test_attribution_top_breaks_ties_by_the_lower_item_code():
    att = Attribution(np.array([2, 5, 7, 9]), np.array([[0.1, 0.3, 0.3, -1.0]]))
    np.testing.assert_array_equal(att.top(0, 3), [5, 7, 2])


# ------------------------------------------------------------------ settings and pairing


def test_a_wrong_pairing_is_refused_naming_the_setting_and_the_fix():
    with pytest.raises(ConfigError, match=r"explainer=neighbourhood .*model=sasrec: use explainer=gradient"):
        ExplainSetup.of({"explainer": {"name": "neighbourhood"}}, "sasrec", (10,))
    with pytest.raises(ConfigError, match="no installed explainer explains this model"):
        ExplainSetup.of({"explainer": {"name": "gradient"}}, "pop", (10,))
    with pytest.raises(ConfigError, match="explainer.settings.items=30"):
        ExplainSetup.of({"explainer": {"name": "gradient", "settings": {"items": 30}}}, "sasrec", (10, 20))
    with pytest.raises(ConfigError, match="explainer.settings.m=0"):
        ExplainSettings.of({"m": 0})
    assert ExplainSetup.of({}, "sasrec", (10,)) is None


def test_every_explainer_yaml_composes_and_builds_with_the_default_settings():
    from omegaconf import OmegaConf

    from recux import registry
    from recux.cli.run import CONF_DIR
    from recux.explain import Explainer
    from tests._compose import compose_cfg

    options = sorted(p.stem for p in (Path(CONF_DIR) / "explainer").glob("*.yaml"))
    assert options == registry.names("explainer")
    assert "explainer" not in compose_cfg([])  # off by default: the config (and its hashes) unchanged
    for option in options:
        resolved = OmegaConf.to_container(compose_cfg([f"explainer={option}"]), resolve=True)
        model = registry.get("explainer", option).meta["models"][0]
        setup = ExplainSetup.of(resolved, model, (10,))
        assert isinstance(setup.build(), Explainer) and setup.settings == ExplainSettings()


# ------------------------------------------------------------------ the run's files and results


def test_run_writes_explanations_that_match_the_saved_model(tmp_path):
    from recux import registry
    from recux.pipeline import run_experiment
    from tests._compose import compose_cfg

    base = ["dataset=synthetic", "logger=none", "model=ease", "eval.efficiency=false"]
    plain = run_experiment(compose_cfg(base), tmp_path / "plain", base)
    over = [*base, "explainer=neighbourhood", "run.save_model=true", "explainer.settings.users=40",
            "explainer.settings.keep=4"]
    res = run_experiment(compose_cfg(over), tmp_path / "run", over)
    run = tmp_path / "run"
    # explanations change nothing else: same metrics, variant and data
    assert {k: v for k, v in res["metrics"].items() if not k.startswith("explain/")} == plain["metrics"]
    assert (res["variant_hash"], res["data_hash"], res["label"]) == (plain["variant_hash"], plain["data_hash"],
                                                                     plain["label"])
    assert not (tmp_path / "plain" / "explanations.parquet").exists()

    ds = registry.build("dataset", "synthetic", {}).load()
    code = {v: i for i, v in enumerate(ds.item_ids.tolist())}
    b = EASE.load(run / "model.pkl").weights
    train = pl.read_parquet(run / "split/train.parquet")
    recs = pl.read_parquet(run / "recommendations.parquet").filter(pl.col("rank") <= 10)
    expl = pl.read_parquet(run / "explanations.parquet")
    users = expl["user_id"].unique()
    assert len(users) == 40
    for (user, rank, item), rows in expl.group_by(["user_id", "rank", "item_id"]):
        assert recs.filter((pl.col("user_id") == user) & (pl.col("rank") == rank))["item_id"].item() == item
        h = np.array(sorted(code[i] for i in train.filter(pl.col("user_id") == user)["item_id"].unique()))
        c = b[h, code[item]]
        order = np.lexsort((h, -c))[:4]
        rows = rows.sort("explaining_rank")
        assert [code[i] for i in rows["explaining_item_id"]] == h[order].tolist()
        np.testing.assert_allclose(rows["weight"].to_numpy(), c[order], rtol=1e-6)
    assert expl.group_by(["user_id"]).agg(pl.col("rank").n_unique())["rank"].to_list() == [10] * 40

    faith = pl.read_parquet(run / "explanation_faithfulness.parquet").drop_nans()
    saved = json.loads((run / "results.json").read_text())
    for measure in ("score_drop", "rank_drop"):
        for suffix in ("", "_random"):
            assert saved["metrics"][f"explain/neighbourhood/{measure}{suffix}@m3"] == pytest.approx(
                faith[f"{measure}{suffix}"].mean())
    assert saved["explanations"]["deletion_test"]["users_tested"] == faith.height
    assert "Faithfulness" in (run / "explanations.md").read_text()


def test_a_wrong_pairing_fails_the_run_before_fitting(tmp_path, monkeypatch):
    from recux.pipeline import run_experiment
    from recux.plugins.models.popularity import MostPopular
    from tests._compose import compose_cfg

    def never(self, ctx):
        raise AssertionError("fitted")

    monkeypatch.setattr(MostPopular, "fit", never)
    over = ["dataset=synthetic", "logger=none", "model=pop", "explainer=gradient"]
    with pytest.raises(ConfigError, match="explainer=gradient"):
        run_experiment(compose_cfg(over), tmp_path / "run", over)
    assert not (tmp_path / "run" / "results.json").exists()


def test_leaderboard_faithfulness_pairs_per_user_means_over_seeds(tmp_path):
    from scipy import stats

    from recux.leaderboard import build_leaderboards, find_results, load_runs
    from recux.leaderboard.faithfulness import explanation_groups, faithfulness_row, render_faithfulness
    from recux.pipeline import run_experiment
    from tests._compose import compose_cfg

    base = ["dataset=synthetic", "logger=none", "model=ease", "eval.efficiency=false"]
    for seed in (0, 1):
        over = [*base, f"seed={seed}", "explainer=neighbourhood", "explainer.settings.items=3",
                "explainer.settings.users=200"]
        run_experiment(compose_cfg(over), tmp_path / f"ex{seed}", over)
    plain = [*base, "model=itemknn"]
    run_experiment(compose_cfg(plain), tmp_path / "plain", plain)
    runs, _ = load_runs(find_results([tmp_path]))
    (board,) = build_leaderboards(runs, significance=False)
    ease_row = next(r for r in board.rows if r.label == "ease")
    knn_row = next(r for r in board.rows if r.label == "itemknn")
    assert explanation_groups(knn_row) == {}
    got = faithfulness_row(explanation_groups(ease_row)[("neighbourhood", 3)])
    # plain: per-user means over the seeds where the user was tested, then a paired t-test
    values: dict = {}
    for seed in (0, 1):
        for rec in pl.read_parquet(tmp_path / f"ex{seed}" / "explanation_faithfulness.parquet").iter_rows(named=True):
            if not np.isnan(rec["rank_drop"]):
                values.setdefault(rec["user_id"], []).append((rec["rank_drop"], rec["rank_drop_random"]))
    a = np.array([np.mean([v[0] for v in values[u]]) for u in sorted(values)])
    b = np.array([np.mean([v[1] for v in values[u]]) for u in sorted(values)])
    assert got["users"] == len(values) > 200  # the seeds' samples of 200 users overlap only partly
    assert got["rank_drop"]["explainer"] == pytest.approx(a.mean())
    assert got["rank_drop"]["random"] == pytest.approx(b.mean())
    assert got["rank_drop"]["test"].p_ttest == pytest.approx(stats.ttest_rel(a, b).pvalue)
    text = "\n".join(render_faithfulness(board))
    assert "### Explanation faithfulness" in text and "`neighbourhood`" in text and text.count("| ease |") == 1


def test_lm_sasrec_rescoring_and_gradient_x_input(small_world, encoder):
    """LM-SASRec: re-scoring the unedited history reproduces score; gradient x input on the text-derived input
    vectors matches central finite differences (float64)."""
    import torch

    from recux.plugins.finetune.frozen import Frozen
    from recux.plugins.models.lm_sasrec import LMSASRec
    from tests._lm_world import FAST, lm_context

    ds, split = small_world
    model = LMSASRec(**{**FAST, "max_epochs": 1})
    model.fit(lm_context(ds, split, encoder, Frozen()))
    model.condition_on(train_plus_valid(split))
    users = np.arange(4)
    hist = model.history(users)
    np.testing.assert_allclose(model.score_histories(hist), model.score(users), rtol=1e-5, atol=1e-6)
    net = model.net.double()
    items = top_items(model, users, 2)
    atts = GradientXInput().explain(model, users, hist, items)
    rows = torch.as_tensor(model.sequence_rows(hist))
    eps = 1e-6
    with torch.no_grad():
        x = net.item_inputs(rows)
        for r in range(len(users)):
            t = int(np.flatnonzero(rows[r].numpy() > 0)[-1])  # the most recent item
            for k, item in enumerate(items[r]):
                fd = _central_difference(net, rows, x, r, t, item, eps)
                j = np.searchsorted(atts[r].candidates, int(rows[r, t]) - 1)
                assert atts[r].weights[k, j] == pytest.approx(fd, rel=1e-5, abs=1e-8)
