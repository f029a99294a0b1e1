"""List-content metrics (ILD, semantic ILD, unexpectedness, popularity unexpectedness, serendipity,
miscalibration): each kernel against a plain-Python reference on random inputs, ILD and calibration against
hand-computed cases, and the metric plugins through evaluate_topk."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from recux.errors import ConfigError, DataError
from recux.evaluation import evaluate_topk
from recux.kernels import diversity as dv
from recux.plugins.metrics.diversity import item_categories

# ---------------------------------------------------------------- random inputs


@st.composite
def world(draw):
    """Top-k rows (distinct items, -1 padding anywhere), cut-offs, item categories (some items without any),
    unit embeddings, and per-user history and ground truth."""
    n_items = draw(st.integers(1, 20))
    n_users = draw(st.integers(1, 8))
    width = draw(st.integers(1, 8))
    n_cats = draw(st.integers(1, 5))
    rows = []
    for _ in range(n_users):
        n_real = draw(st.integers(0, min(width, n_items)))
        row = list(draw(st.permutations(range(n_items)))[:n_real]) + [-1] * (width - n_real)
        rows.append(draw(st.permutations(row)))
    ks = draw(st.lists(st.integers(1, width), min_size=1, max_size=4))
    cats = [sorted(draw(st.sets(st.integers(0, n_cats - 1), max_size=n_cats))) for _ in range(n_items)]
    items = st.sets(st.integers(0, n_items - 1), max_size=n_items)
    history = [sorted(draw(items)) for _ in range(n_users)]
    truth = [sorted(draw(items)) for _ in range(n_users)]
    counts = draw(st.lists(st.integers(0, 6), min_size=n_items, max_size=n_items))
    dim = draw(st.integers(1, 5))
    seed = draw(st.integers(0, 2**16))
    emb = np.random.default_rng(seed).standard_normal((n_items, dim))
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    return dict(topk=np.array(rows, dtype=np.int32).reshape(n_users, width), ks=ks, cats=cats, n_cats=n_cats,
                history=history, truth=truth, counts=np.array(counts), emb=emb.astype(np.float32))


def csr(rows: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    indptr = np.cumsum([0] + [len(r) for r in rows]).astype(np.int64)
    return indptr, np.array([i for r in rows for i in r], dtype=np.int32)


def close(got: float, want: float) -> bool:
    return (math.isnan(got) and math.isnan(want)) or got == pytest.approx(want, abs=1e-9)


def pair_mean(items, dist) -> float:
    pairs = list(itertools.combinations(items, 2))
    return sum(dist(a, b) for a, b in pairs) / len(pairs) if pairs else math.nan


# ---------------------------------------------------------------- plain-Python references


def ild_ref(row, k, cats, distance):
    items = [set(cats[i]) for i in row[:k] if i >= 0 and cats[i]]
    if distance == "cosine":
        return pair_mean(items, lambda a, b: 1 - len(a & b) / math.sqrt(len(a) * len(b)))
    return pair_mean(items, lambda a, b: 1 - len(a & b) / len(a | b))


def semantic_ild_ref(row, k, emb):
    items = [emb[i].astype(np.float64) for i in row[:k] if i >= 0]
    return pair_mean(items, lambda a, b: 1 - float(a @ b))


def unexpectedness_ref(row, k, emb, history):
    items = [i for i in row[:k] if i >= 0]
    if not items or not history:
        return math.nan
    e = emb.astype(np.float64)
    return sum(sum(1 - float(e[i] @ e[h]) for h in history) / len(history) for i in items) / len(items)


def primitive_list(counts, history, k):
    """Ge et al.'s PM: the k most popular items (ties: lower code) the user has not interacted with."""
    ranked = sorted(range(len(counts)), key=lambda i: (-counts[i], i))
    return [i for i in ranked if i not in history][:k]


def pop_surprise_ref(row, k, counts, history, truth):
    pm = set(primitive_list(counts, set(history), k))
    items = [i for i in row[:k] if i >= 0]
    unexp = [i for i in items if i not in pm]
    return (len(unexp) / len(items) if items else math.nan), sum(i in truth for i in unexp) / k


def miscalibration_ref(row, k, cats, history, alpha):
    def dist(items):
        items = [i for i in items if cats[i]]
        out: dict[int, float] = {}
        for i in items:
            for g in cats[i]:
                out[g] = out.get(g, 0.0) + 1 / len(cats[i]) / len(items)
        return out, len(items)

    p, n_hist = dist(history)
    if not n_hist:
        return math.nan
    q, _ = dist([i for i in row[:k] if i >= 0])
    return sum(pg * math.log(pg / ((1 - alpha) * q.get(g, 0.0) + alpha * pg)) for g, pg in p.items())


# ---------------------------------------------------------------- kernels against the references


@settings(max_examples=150, deadline=None)
@given(world(), st.sampled_from(["cosine", "jaccard"]), st.sampled_from([None, True, False]))
def test_ild_matches_reference(w, distance, dense):
    """dense: the kernel over dense category rows (True), over CSR rows (False), or the automatic choice."""
    indptr, indices = csr(w["cats"])
    got = dv.ild(w["topk"], w["ks"], indptr, indices, w["n_cats"], distance, dense=dense)
    for k in set(w["ks"]):
        for u, row in enumerate(w["topk"].tolist()):
            assert close(got[k][u], ild_ref(row, k, w["cats"], distance))


@settings(max_examples=150, deadline=None)
@given(world())
def test_semantic_ild_and_unexpectedness_match_reference(w):
    h_indptr, h_indices = csr(w["history"])
    sem = dv.semantic_ild(w["topk"], w["ks"], w["emb"])
    unexp = dv.unexpectedness(w["topk"], w["ks"], w["emb"], h_indptr, h_indices)
    for k in set(w["ks"]):
        for u, row in enumerate(w["topk"].tolist()):
            assert close(sem[k][u], semantic_ild_ref(row, k, w["emb"]))
            assert close(unexp[k][u], unexpectedness_ref(row, k, w["emb"], w["history"][u]))


@settings(max_examples=150, deadline=None)
@given(world())
def test_popularity_unexpectedness_and_serendipity_match_reference(w):
    h_indptr, h_indices = csr(w["history"])
    gt_indptr, gt_indices = csr(w["truth"])
    unexp, seren = dv.popularity_surprise(w["topk"], w["ks"], w["counts"], h_indptr, h_indices, gt_indptr,
                                          gt_indices)
    for k in set(w["ks"]):
        for u, row in enumerate(w["topk"].tolist()):
            want_u, want_s = pop_surprise_ref(row, k, w["counts"].tolist(), w["history"][u], set(w["truth"][u]))
            assert close(unexp[k][u], want_u) and close(seren[k][u], want_s)


@settings(max_examples=150, deadline=None)
@given(world(), st.sampled_from([0.01, 0.3]), st.sampled_from([None, True, False]))
def test_miscalibration_matches_reference(w, alpha, dense):
    indptr, indices = csr(w["cats"])
    h_indptr, h_indices = csr(w["history"])
    got = dv.miscalibration(w["topk"], w["ks"], indptr, indices, w["n_cats"], h_indptr, h_indices, alpha,
                            dense=dense)
    for k in set(w["ks"]):
        for u, row in enumerate(w["topk"].tolist()):
            assert close(got[k][u], miscalibration_ref(row, k, w["cats"], w["history"][u], alpha))


def test_semantic_ild_of_many_users_equals_the_all_pairs_mean():
    """Larger than the hypothesis cases: 500 users x top-20 over 64-d vectors, every user in its own block."""
    rng = np.random.default_rng(3)
    emb = rng.standard_normal((300, 64))
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    topk = np.array([rng.choice(300, 20, replace=False) for _ in range(500)], dtype=np.int32)
    got = dv.semantic_ild(topk, [20], emb.astype(np.float32))[20]
    e = emb.astype(np.float32).astype(np.float64)
    for u in range(0, 500, 37):
        sims = e[topk[u]] @ e[topk[u]].T
        want = 1 - sims[np.triu_indices(20, 1)].mean()
        assert got[u] == pytest.approx(want, abs=1e-9)


# ---------------------------------------------------------------- hand-computed cases through the plugins

# Items: 0 = {Action, Comedy}, 1 = {Comedy}, 2 = {Drama}, 3 = no genre.
FEATURES = pl.DataFrame({"genres": [["Action", "Comedy"], ["Comedy"], ["Drama"], []]},
                        schema={"genres": pl.List(pl.String)})


def _evaluate(topk, metrics, history=None, truth=None, **kw):
    topk = np.array(topk, dtype=np.int32)
    truth = sp.csr_matrix(np.ones((len(topk), 4))) if truth is None else truth
    return evaluate_topk(topk, truth, metrics=metrics, ks=kw.pop("ks", [2, 3]), n_items=4, history=history,
                         item_features=FEATURES, **kw)


def test_ild_hand_computed():
    # cosine: cos(0,1) = |{Comedy}| / sqrt(2 * 1) = 1/sqrt(2); cos(0,2) = cos(1,2) = 0.
    #   ILD@2 (items 0, 1) = 1 - 1/sqrt(2) = 0.29289; ILD@3 = 1 - (1/sqrt(2) + 0 + 0) / 3 = 0.76430.
    # jaccard: d(0,1) = 1 - 1/2 = 0.5; d(0,2) = d(1,2) = 1.  ILD@2 = 0.5; ILD@3 = (0.5 + 1 + 1) / 3 = 0.83333.
    # The genre-less item 3 is left out of the pairs: [0, 3, 1] has the pairs of [0, 1] at k = 3.
    rows = [[0, 1, 2], [0, 3, 1]]
    cos = _evaluate(rows, ["ild"]).per_user
    jac = _evaluate(rows, [{"name": "ild", "distance": "jaccard"}]).per_user
    assert cos["ild@2"].to_list() == pytest.approx([1 - 1 / math.sqrt(2), math.nan], nan_ok=True)
    assert cos["ild@3"].to_list() == pytest.approx([1 - 1 / math.sqrt(2) / 3, 1 - 1 / math.sqrt(2)])
    assert jac["ild@2"].to_list() == pytest.approx([0.5, math.nan], nan_ok=True)
    assert jac["ild@3"].to_list() == pytest.approx([2.5 / 3, 0.5])


def test_miscalibration_hand_computed():
    # History {0, 2}: p(g|0) = 1/2 for Action and Comedy, p(g|2) = 1 for Drama, so p(.|u) = (Action .25,
    # Comedy .25, Drama .5). List [1, 2, ...] at k = 1: q = (Comedy 1); q~ = 0.99 q + 0.01 p = (Action .0025,
    # Comedy .9925, Drama .005); C_KL = .25 ln(.25/.0025) + .25 ln(.25/.9925) + .5 ln(.5/.005)
    #      = .75 ln 100 + .25 ln(.25/.9925) = 3.10918.
    # At k = 2: q = (Comedy .5, Drama .5); q~ = (Action .0025, Comedy .4975, Drama .5);
    #      C_KL = .25 ln 100 + .25 ln(.25/.4975) + .5 ln 1 = 0.97926.
    # A user whose history has no genre (item 3 only) has no p: NaN, left out of the mean.
    history = sp.csr_matrix(np.array([[1, 0, 1, 0], [0, 0, 0, 1]]))
    rep = _evaluate([[1, 2, 0], [1, 2, 0]], ["miscalibration"], history=history, ks=[1, 2])
    got = rep.per_user
    assert got["miscalibration@1"][0] == pytest.approx(0.75 * math.log(100) + 0.25 * math.log(0.25 / 0.9925))
    assert got["miscalibration@2"][0] == pytest.approx(0.25 * math.log(100) + 0.25 * math.log(0.25 / 0.4975))
    assert math.isnan(got["miscalibration@1"][1]) and rep.means["miscalibration@1"] == got["miscalibration@1"][0]
    assert rep.directions["miscalibration@1"] is False


def test_a_perfectly_calibrated_list_scores_zero_and_an_off_genre_list_scores_minus_log_alpha():
    history = sp.csr_matrix(np.array([[0, 1, 0, 0]]))  # all Comedy
    got = _evaluate([[1, 2, 3]], [{"name": "miscalibration", "alpha": 0.05}], history=history, ks=[1, 3]).per_user
    assert got["miscalibration@1"][0] == pytest.approx(0.0)  # list = {Comedy}
    # k = 3: q = (Comedy .5, Drama .5) over the two genred items; C_KL = ln(1 / (0.95 * .5 + 0.05)).
    assert got["miscalibration@3"][0] == pytest.approx(math.log(1 / (0.95 * 0.5 + 0.05)))
    history = sp.csr_matrix(np.array([[0, 0, 1, 0]]))  # all Drama; the list [1] shows none: C_KL = -ln alpha
    got = _evaluate([[1, 0, 3]], ["miscalibration"], history=history, ks=[1]).per_user
    assert got["miscalibration@1"][0] == pytest.approx(-math.log(0.01))


def test_serendipity_hand_computed():
    # Popularity 3 > 2 > 1 > 0 (items 0..3 counts 1, 2, 3, 4 → order 3, 2, 1, 0). The user has seen item 3, so
    # PM_2 = [2, 1]. List [0, 2]: 0 is unexpected, 2 is not -> unexpectedness_pop@2 = 1/2; relevant = {0, 2}:
    # serendipity@2 = |{0}| / 2 = 0.5. With relevant = {2} only: 0.
    train = sp.csr_matrix(np.array([[0, 0, 0, 1], [0, 0, 1, 1], [0, 1, 1, 1], [1, 1, 1, 1]]))
    history = sp.csr_matrix(np.array([[0, 0, 0, 1], [0, 0, 0, 1]]))
    truth = sp.csr_matrix(np.array([[1, 0, 1, 0], [0, 0, 1, 0]]))
    rep = _evaluate([[0, 2], [0, 2]], ["unexpectedness_pop", "serendipity"], history=history, truth=truth,
                    train=train, ks=[2])
    assert rep.per_user["unexpectedness_pop@2"].to_list() == [0.5, 0.5]
    assert rep.per_user["serendipity@2"].to_list() == [0.5, 0.0]


def test_item_categories_from_list_and_scalar_columns():
    indptr, indices, n = item_categories(pl.DataFrame({"g": [["b", "a", "b"], None, [], ["c"]]}), "g", 4, "ild")
    assert n == 3 and indptr.tolist() == [0, 2, 2, 2, 3] and indices.tolist() == [0, 1, 2]  # a, b | - | - | c
    indptr, indices, n = item_categories(pl.DataFrame({"g": ["x", None, "y", "x"]}), "g", 4, "ild")
    assert n == 2 and indptr.tolist() == [0, 1, 1, 2, 3] and indices.tolist() == [0, 1, 0]


def test_bad_settings_name_the_fix():
    with pytest.raises(ConfigError, match="column.*genre"):
        _evaluate([[0, 1]], [{"name": "ild", "column": "genre"}], ks=[2])
    with pytest.raises(ConfigError, match="distance='euclid'"):
        _evaluate([[0, 1]], [{"name": "ild", "distance": "euclid"}], ks=[2])
    with pytest.raises(ConfigError, match="alpha=0"):
        _evaluate([[0, 1]], [{"name": "miscalibration", "alpha": 0}], ks=[2])
    with pytest.raises(ConfigError, match="needs history"):
        _evaluate([[0, 1]], ["miscalibration"], ks=[2])
    with pytest.raises(ConfigError, match="needs item_embeddings: pass item_embeddings="):
        _evaluate([[0, 1]], ["semantic_ild"], ks=[2])


# ---------------------------------------------------------------- embeddings through evaluate_topk


def test_embeddings_are_normalised_and_resolved_only_when_a_metric_needs_them():
    rng = np.random.default_rng(0)
    raw = rng.standard_normal((4, 6)) * rng.uniform(0.5, 3, (4, 1))  # rows of unequal length
    calls = []

    def source():
        calls.append(1)
        return raw

    _evaluate([[0, 1, 2]], ["ild"], item_embeddings=source)
    assert calls == []  # no metric needed them
    rep = _evaluate([[0, 1, 2]], ["semantic_ild"], item_embeddings=source, ks=[3])
    unit = raw / np.linalg.norm(raw, axis=1, keepdims=True)
    want = np.mean([1 - unit[a] @ unit[b] for a, b in itertools.combinations([0, 1, 2], 2)])
    assert calls == [1] and rep.per_user["semantic_ild@3"][0] == pytest.approx(want, abs=1e-6)
    with pytest.raises(DataError, match=r"semantic_ild has shape \(3, 6\); expected \(4, d\)"):
        _evaluate([[0, 1, 2]], ["semantic_ild"], item_embeddings=raw[:3], ks=[3])


# ---------------------------------------------------------------- a run: embeddings from the encoder group

SMALL = ["dataset=synthetic", "dataset.n_users=60", "dataset.n_items=80", "logger=none", "split=random",
         "model=pop", "metrics.ks=[5,10]"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    pytest.importorskip("transformers")
    from tests._tiny_encoder import make_tiny_bert

    return str(make_tiny_bert(tmp_path_factory.mktemp("tiny-bert")))


@pytest.fixture
def encoder_builds(monkeypatch):
    """Counts the encoders the run builds (recux.text_context.build_encoder, wrapped, not replaced)."""
    import recux.text_context as tc

    calls = []
    real = tc.build_encoder
    monkeypatch.setattr(tc, "build_encoder", lambda resolved: calls.append(1) or real(resolved))
    return calls


def _run(tmp_path, name, overrides):
    from recux.pipeline import run_experiment
    from tests._compose import compose_cfg

    return run_experiment(compose_cfg(overrides), tmp_path / name, overrides), tmp_path / name


def _codes(ids: np.ndarray, of: np.ndarray) -> np.ndarray:
    return np.array([{v: c for c, v in enumerate(ids.tolist())}[x] for x in of.tolist()])


def test_a_run_scores_embedding_metrics_with_the_encoder_group(tmp_path, monkeypatch, tiny, encoder_builds):
    from recux import registry
    from recux.plugins.encoders.hf import HFEncoder

    monkeypatch.setenv("RECUX_DATA", str(tmp_path / "cache"))
    metrics = "metrics.plugins=[{name:ndcg},{name:semantic_ild},{name:unexpectedness}]"
    results, run_dir = _run(tmp_path, "emb", [*SMALL, metrics, f"encoder.model={tiny}"])
    assert len(encoder_builds) == 1  # one encoder for both metrics
    dataset = registry.build("dataset", "synthetic", {"n_users": 60, "n_items": 80}).load()
    emb = HFEncoder(model=tiny).embed(dataset.item_features["text"].to_list()).astype(np.float64)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    recs = pl.read_parquet(run_dir / "recommendations.parquet").sort("user_id", "rank")
    train = pl.read_parquet(run_dir / "split" / "train.parquet")
    sem, unexp = [], []
    for (user,), rows in recs.group_by("user_id", maintain_order=True):
        items = _codes(dataset.item_ids, rows["item_id"].to_numpy())[:10]
        seen = _codes(dataset.item_ids, train.filter(pl.col("user_id") == user)["item_id"].to_numpy())
        sem.append(np.mean([1 - emb[a] @ emb[b] for a, b in itertools.combinations(items, 2)]))
        unexp.append(np.mean([1 - emb[i] @ emb[h] for i in items for h in seen]))
    assert results["metrics"]["semantic_ild@10"] == pytest.approx(np.mean(sem), abs=1e-5)
    assert results["metrics"]["unexpectedness@10"] == pytest.approx(np.mean(unexp), abs=1e-5)
    assert results["directions"]["semantic_ild@10"] is True
    recorded = json.loads((run_dir / "results.json").read_text())["metric_embeddings"]
    assert recorded == {"metrics": ["semantic_ild", "unexpectedness"], "encoder": HFEncoder(model=tiny).identity(),
                        "template": "{text}", "dim": emb.shape[1]}


def test_a_run_without_embedding_metrics_builds_no_encoder(tmp_path, encoder_builds):
    metrics = "metrics.plugins=[{name:ndcg},{name:ild},{name:miscalibration},{name:serendipity}]"
    results, _ = _run(tmp_path, "plain", [*SMALL, metrics])
    assert encoder_builds == [] and {"ild@10", "miscalibration@10", "serendipity@10"} <= set(results["metrics"])
    assert "metric_embeddings" not in results


def test_an_embedding_metric_on_a_dataset_without_item_text_fails_before_fitting(tmp_path, monkeypatch,
                                                                                 encoder_builds):
    from recux import stages

    fits = []
    real_fit = stages.fit
    monkeypatch.setattr(stages, "fit", lambda *a, **kw: fits.append(1) or real_fit(*a, **kw))
    rng = np.random.default_rng(0)
    rows = [f"{u},{i}" for u in range(1, 41) for i in rng.choice(np.arange(1, 31), 10, replace=False)]
    (tmp_path / "log.csv").write_text("user_id,item_id\n" + "\n".join(rows) + "\n")
    overrides = ["dataset=files", f"dataset.path={tmp_path / 'log.csv'}", "logger=none", "model=pop",
                 "metrics.ks=[5]", "optimized_metric=ndcg@5", "metrics.plugins=[{name:ndcg},{name:semantic_ild}]"]
    with pytest.raises(ConfigError, match=r"metric semantic_ild .*has no item features.*drop semantic_ild"):
        _run(tmp_path, "files", overrides)
    assert fits == [] and encoder_builds == [] and not (tmp_path / "files" / "results.json").exists()


def test_the_popularity_model_is_never_unexpected_because_history_is_what_the_ranking_masks(tmp_path):
    """The popularity list PM excludes the user's history, and the history metrics see is what the test ranking
    masks (training and, with eval.exclude_valid, validation items), so `pop`'s own lists are PM exactly:
    unexpectedness_pop@k and serendipity@k are 0 for every user. With the training history alone they were not
    (validation items were in PM, never in pop's lists)."""
    import json

    from recux.pipeline import run_experiment
    from tests._compose import compose_cfg

    overrides = ["dataset=synthetic", "dataset.n_users=150", "dataset.n_items=80", "logger=none", "model=pop",
                 "metrics.ks=[5,10]", "metrics.plugins=[{name: ndcg}, {name: unexpectedness_pop}, "
                 "{name: serendipity}]"]
    run_experiment(compose_cfg(overrides), tmp_path / "pop", overrides)
    metrics = json.loads((tmp_path / "pop" / "results.json").read_text())["metrics"]
    assert metrics["unexpectedness_pop@10"] == 0.0 and metrics["serendipity@10"] == 0.0
    assert metrics["ndcg@10"] > 0  # the lists do hit test items: serendipity is 0 because none is unexpected
