"""Content recommender: scores equal a plain-Python reference of the documented formula (mean and recency
profiles, text and genre vectors), recency weighting orders a history as its half-life says, unseen items are
scored, and the genre model never asks for language-model embeddings."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from recux import registry
from recux.data import Dataset, Interactions, Split
from recux.errors import ConfigError
from recux.model import FitContext
from recux.plugins.finetune.scratch import Scratch
from recux.plugins.models.content import ContentRecommender, GenreContentRecommender

GENRES = ["Action", "Comedy", "Drama", "Horror"]


def small_world(n_users=7, n_items=12, seed=0, timestamps=True):
    """Random histories with random (tied) timestamps; item 11 is never in training; genre lists + a scalar
    'decade' column as categorical features, one item without genres."""
    rng = np.random.default_rng(seed)
    users, items = [], []
    for u in range(n_users - 1):  # the last user has no training interactions
        k = int(rng.integers(1, 8))
        users += [u] * k
        items += list(rng.integers(0, n_items - 1, size=k))  # repeats allowed
    ts = rng.integers(0, 5, size=len(users)) if timestamps else None
    train = Interactions(user=np.array(users), item=np.array(items), n_users=n_users, n_items=n_items, timestamp=ts)
    empty = train.subset(np.zeros(len(train), bool))
    genres = [[g for g in GENRES if rng.random() < 0.4] for _ in range(n_items)]
    genres[3] = []
    feats = pl.DataFrame({"item_id": np.arange(n_items), "genres": genres,
                          "decade": [f"{1950 + 10 * int(rng.integers(0, 4))}s" for _ in range(n_items)]},
                         schema_overrides={"genres": pl.List(pl.String)})
    ds = Dataset("small", train, user_ids=np.arange(n_users), item_ids=np.arange(n_items), item_features=feats)
    return ds, Split(train, empty, empty, protocol="test")


def ctx_for(ds, split, embeddings=None):
    return FitContext(dataset=ds, split=split, finetune=Scratch(),
                      item_embeddings=None if embeddings is None else (lambda: embeddings))


def reference_scores(train, vectors, profile, half_life):
    """The module formula, one user and one item at a time in plain Python."""
    def unit(v):
        n = math.sqrt(sum(x * x for x in v))
        return [x / n for x in v] if n > 0 else [0.0] * len(v)

    items = [unit(list(map(float, v))) for v in vectors]
    out = np.zeros((train.n_users, len(items)))
    for u in range(train.n_users):
        rows = [r for r in range(len(train)) if train.user[r] == u]
        rows.sort(key=lambda r: (int(train.timestamp[r]) if train.timestamp is not None else 0, r))
        prof = [0.0] * len(items[0])
        for pos, r in enumerate(rows):
            back = len(rows) - 1 - pos
            w = 1.0 if profile == "mean" else 0.5 ** (back / half_life)
            prof = [p + w * x for p, x in zip(prof, items[train.item[r]], strict=True)]
        prof = unit(prof)
        for j, e in enumerate(items):
            out[u, j] = sum(p * x for p, x in zip(prof, e, strict=True))
    return out


def multi_hot_reference(feats, columns):
    cols = []
    for c in columns:
        values = [v if isinstance(v, list) else [v] for v in feats[c].to_list()]
        for val in sorted({x for v in values for x in v}):
            cols.append([1.0 if val in v else 0.0 for v in values])
    return np.array(cols).T


@pytest.mark.parametrize("profile", ["mean", "recency"])
@pytest.mark.parametrize("seed", [0, 1])
def test_text_scores_match_plain_python_reference(profile, seed):
    ds, split = small_world(seed=seed)
    emb = np.random.default_rng(seed + 10).normal(size=(ds.n_items, 5)).astype(np.float32)
    emb[4] = 0.0  # an item without a usable vector scores 0 and adds nothing to a profile
    model = ContentRecommender(features="text", profile=profile, half_life=1.5)
    model.fit(ctx_for(ds, split, emb))
    users = np.arange(ds.n_users)
    np.testing.assert_allclose(model.score(users), reference_scores(split.train, emb, profile, 1.5), atol=1e-5)


@pytest.mark.parametrize("columns", [("genres",), ("genres", "decade")])
def test_genre_scores_match_plain_python_reference(columns):
    ds, split = small_world(seed=3)
    model = GenreContentRecommender(profile="recency", half_life=2.0, columns=list(columns))
    model.fit(ctx_for(ds, split))  # no item_embeddings given: the genre model must not need them
    vectors = multi_hot_reference(ds.item_features, columns)
    np.testing.assert_allclose(model.score(np.arange(ds.n_users)),
                               reference_scores(split.train, vectors, "recency", 2.0), atol=1e-5)


def test_recency_weighting_orders_history_by_time_and_half_life():
    """One user saw items 0, 1, 2 at times 30, 10, 20 (most recent: 0, then 2, then 1); one-hot item vectors make
    score(j) proportional to the item's weight: ratios 0.5 ** (1 / half_life) per step back, mean: all equal."""
    train = Interactions(user=np.zeros(3, int), item=np.array([0, 1, 2]), n_users=1, n_items=4,
                         timestamp=np.array([30, 10, 20]))
    ds = Dataset("one", train, user_ids=np.arange(1), item_ids=np.arange(4))
    split = Split(train, train.subset(np.zeros(3, bool)), train.subset(np.zeros(3, bool)), protocol="test")
    emb = np.eye(4, dtype=np.float32)
    for half_life in (1.0, 3.0):
        rec = ContentRecommender(profile="recency", half_life=half_life)
        rec.fit(ctx_for(ds, split, emb))
        s = rec.score(np.array([0]))[0]
        assert s[0] > s[2] > s[1] > s[3] == 0.0
        np.testing.assert_allclose([s[2] / s[0], s[1] / s[2]], [0.5 ** (1 / half_life)] * 2, rtol=1e-6)
    mean = ContentRecommender(profile="mean")
    mean.fit(ctx_for(ds, split, emb))
    s = mean.score(np.array([0]))[0]
    np.testing.assert_allclose(s[:3], s[0])


def test_items_never_in_training_are_scored():
    ds, split = small_world(seed=0)
    assert 11 not in set(split.train.item)
    emb = np.random.default_rng(5).normal(size=(ds.n_items, 4)).astype(np.float32)
    model = ContentRecommender()
    model.fit(ctx_for(ds, split, emb))
    s = model.score(np.arange(ds.n_users - 1))
    assert np.all(s[:, 11] != 0.0)
    assert "scores_unseen_items" in registry.get("model", "content").meta["capabilities"]
    assert "scores_unseen_items" in registry.get("model", "content_genres").meta["capabilities"]


def test_genre_model_declares_no_text_encoder_and_never_calls_embeddings():
    assert "text_encoder" not in registry.get("model", "content_genres").meta["capabilities"]
    assert "text_encoder" in registry.get("model", "content").meta["capabilities"]
    ds, split = small_world()

    def boom():
        raise AssertionError("the genre model asked for language-model embeddings")

    ctx = FitContext(dataset=ds, split=split, finetune=Scratch(), item_embeddings=boom)
    registry.build("model", "content", {"features": "genres"}).fit(ctx)
    registry.build("model", "content_genres", {}).fit(ctx)


@pytest.mark.parametrize("params, match", [
    ({"features": "image"}, "model.features"), ({"profile": "last"}, "model.profile"),
    ({"half_life": 0}, "model.half_life"), ({"columns": "genres"}, "model.columns"),
])
def test_bad_settings_are_refused_with_the_setting_named(params, match):
    with pytest.raises(ConfigError, match=match):
        ContentRecommender(**params)


def test_missing_inputs_are_refused_clearly():
    ds, split = small_world(timestamps=False)
    with pytest.raises(ConfigError, match="item_embeddings"):
        ContentRecommender(features="text").fit(ctx_for(ds, split))
    with pytest.raises(ConfigError, match="profile=mean"):
        ContentRecommender(features="genres", profile="recency").fit(ctx_for(ds, split))
    with pytest.raises(ConfigError, match="'year'"):
        ContentRecommender(features="genres", columns=["year"]).fit(ctx_for(ds, split))


def test_real_minilm_embeddings_of_ml100k_titles():
    """The packaged MiniLM over ML-100K titles (the first 200 items, a synthetic two-film history): scores equal the reference,
    and a user who watched only Star Wars films ranks another Star Wars film above the catalogue's median."""
    pytest.importorskip("transformers")
    from recux.errors import DataUnavailableError

    try:
        ml = registry.build("dataset", "ml-100k", {"download": False}).load()
    except DataUnavailableError:
        pytest.skip("ML-100K is not in the local cache")
    titles = ml.item_features["title"].to_list()[:200]
    star = [i for i, t in enumerate(titles) if t.startswith("Star Wars") or t.startswith("Empire Strikes Back")
            or t.startswith("Return of the Jedi")]
    assert len(star) >= 3
    emb = registry.build("encoder", "hf", {}).embed(titles)
    train = Interactions(user=np.zeros(2, int), item=np.array(star[:2]), n_users=1, n_items=len(titles),
                         timestamp=np.array([1, 2]))
    ds = Dataset("ml", train, user_ids=np.arange(1), item_ids=np.arange(len(titles)))
    split = Split(train, train.subset(np.zeros(2, bool)), train.subset(np.zeros(2, bool)), protocol="test")
    model = ContentRecommender(profile="recency", half_life=1.0)
    model.fit(ctx_for(ds, split, emb))
    s = model.score(np.array([0]))[0]
    np.testing.assert_allclose(s, reference_scores(train, emb, "recency", 1.0)[0], atol=1e-5)
    assert s[star[2]] > np.median(s)


def test_configs_match_constructor_defaults():
    import inspect

    from omegaconf import OmegaConf

    for name in ("content", "content_genres"):
        cfg = OmegaConf.to_container(OmegaConf.load(Path(__file__).parents[1] / "conf" / "model" / f"{name}.yaml"))
        assert cfg.pop("name") == name
        info = registry.get("model", name)
        info.build(cfg)
        defaults = {k: list(p.default) if isinstance(p.default, tuple) else p.default
                    for k, p in inspect.signature(info.obj).parameters.items()}
        assert cfg == {k: defaults[k] for k in cfg}
