"""End to end for models that use text (capability ``text_encoder``): the fit stage gives them the encoder from
the ``encoder`` group, the template-rendered item texts in item-code order and the cached frozen embeddings; the
variant hash and results.json name encoder and template; other models get none of it (no transformers import)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from recux import identity, registry
from recux.errors import ConfigError
from recux.model import FitContext, Recommender
from recux.pipeline import run_experiment
from recux.plugins.encoders.hf import HFEncoder
from tests._tiny_encoder import make_tiny_bert
from tests.test_pipeline import compose_cfg

pytest.importorskip("transformers")

TEXT_MODEL = ["model=pop", "model.name=text_profile"]  # no YAML: the pop node renamed
SMALL = ["dataset=synthetic", "dataset.n_users=60", "dataset.n_items=80", "logger=none", "split=random"]


class TextProfile(Recommender):
    """Test model: a user's score is the mean frozen embedding of their training items dotted with each item's."""

    seen: list[FitContext] = []

    def __init__(self) -> None:
        self.emb = self.profiles = None

    def fit(self, ctx: FitContext) -> None:
        type(self).seen.append(ctx)
        self.emb = ctx.item_embeddings()
        train = ctx.split.train.csr()
        self.n_users, self.n_items = train.shape
        counts = np.maximum(np.asarray(train.sum(1)), 1)
        self.profiles = np.asarray(train @ self.emb) / counts

    def score(self, users: np.ndarray) -> np.ndarray:
        return (self.profiles[users] @ self.emb.T).astype(np.float32)


@pytest.fixture
def text_model(monkeypatch):
    TextProfile.seen = []
    info = registry.PluginInfo("model", "text_profile", TextProfile, "test text model",
                               {"training": "closed_form", "capabilities": frozenset({"text_encoder"}),
                                "protocol": "general"})
    monkeypatch.setitem(registry._REGISTRY["model"], "text_profile", info)
    return TextProfile


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return str(make_tiny_bert(tmp_path_factory.mktemp("tiny-bert")))


def _run(tmp_path, name, overrides):
    return run_experiment(compose_cfg(overrides), tmp_path / name, overrides), tmp_path / name


def test_a_text_model_gets_encoder_texts_and_cached_embeddings(tmp_path, monkeypatch, text_model, tiny):
    monkeypatch.setenv("RECUX_DATA", str(tmp_path / "cache"))
    overrides = [*SMALL, *TEXT_MODEL, f"encoder.model={tiny}"]
    results, run_dir = _run(tmp_path, "a", overrides)
    (ctx,) = text_model.seen
    dataset = registry.build("dataset", "synthetic", {"n_users": 60, "n_items": 80}).load()
    assert ctx.item_texts == dataset.item_features["text"].to_list()  # template {text}, item-code order
    assert isinstance(ctx.encoder, HFEncoder) and ctx.encoder.identity()["model"] == str(tiny)
    np.testing.assert_array_equal(ctx.item_embeddings(), HFEncoder(model=tiny).embed(ctx.item_texts))
    on_disk = json.loads((run_dir / "results.json").read_text())
    assert on_disk["text"]["encoder"] == ctx.encoder.identity() and on_disk["text"]["template"] == "{text}"
    assert results["metrics"]["ndcg@10"] >= 0

    (npy,) = (tmp_path / "cache" / "embeddings").glob("*.npy")
    stamp = npy.stat().st_mtime_ns
    _run(tmp_path, "b", [*overrides, "seed=1"])  # another run of the sweep: the same file, not rewritten
    assert [p.stat().st_mtime_ns for p in (tmp_path / "cache" / "embeddings").glob("*.npy")] == [stamp]
    _run(tmp_path, "c", [*overrides, "item_text.template='{title}'"])
    assert len(list((tmp_path / "cache" / "embeddings").glob("*.npy"))) == 2
    assert text_model.seen[-1].item_texts == dataset.item_features["title"].to_list()


def test_a_template_naming_missing_fields_fails_before_fitting(tmp_path, text_model, tiny):
    with pytest.raises(ConfigError, match=r"'director'.*available fields: title, genres, text"):
        _run(tmp_path, "bad", [*SMALL, *TEXT_MODEL, f"encoder.model={tiny}",
                               "item_text.template='{director}'"])
    assert text_model.seen == []


def _variant(overrides):
    from omegaconf import OmegaConf

    return identity.variant_hash(OmegaConf.to_container(compose_cfg(overrides), resolve=True))


def test_variant_hash_covers_encoder_and_template_for_text_models_only(text_model):
    text = _variant([*TEXT_MODEL])
    assert _variant([*TEXT_MODEL, "encoder.pooling=cls"]) != text
    assert _variant([*TEXT_MODEL, "item_text.template='{title}'"]) != text
    for model in ("ease", "bpr"):
        base = _variant([f"model={model}"])
        assert _variant([f"model={model}", "encoder.pooling=cls", "item_text.template='{title}'"]) == base
        settings = identity.variant_settings({"model": {"name": model}, "encoder": {"name": "hf"}})
        assert "encoder" not in settings and "item_text" not in settings


def test_an_id_model_run_builds_no_encoder_and_imports_no_transformers(tmp_path):
    code = (
        "import sys, json\n"
        "from tests.test_pipeline import compose_cfg\n"
        "from recux.pipeline import run_experiment\n"
        f"ov = {[*SMALL, 'model=ease']!r}\n"
        f"r = run_experiment(compose_cfg(ov), {str(tmp_path / 'ease')!r}, ov)\n"
        "print(json.dumps({'transformers': 'transformers' in sys.modules, 'text': 'text' in r}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {"transformers": False, "text": False}
