"""Registry: decorator registration, metadata checks, duplicate and unknown-name errors, parameter checks."""

from __future__ import annotations

import pytest

from recux import registry
from recux.errors import ConfigError, PluginError


@pytest.fixture
def scratch_registry(monkeypatch):
    """An empty registry for the duration of a test (built-ins untouched outside it)."""
    monkeypatch.setattr(registry, "_REGISTRY", {k: {} for k in registry.KINDS})
    monkeypatch.setattr(registry, "_LOADED", True)
    return registry


def test_register_and_build_with_params(scratch_registry):
    @scratch_registry.register("model", "constant", training="closed_form")
    class Constant:
        """Scores every item the same."""

        def __init__(self, value: float = 1.0, scale: int = 2):
            self.value, self.scale = value, scale

    info = scratch_registry.get("model", "constant")
    assert info.description == "Scores every item the same."
    assert info.meta["training"] == "closed_form"
    obj = scratch_registry.build("model", "constant", {"value": 3.0})
    assert (obj.value, obj.scale) == (3.0, 2)


def test_unknown_parameter_names_the_accepted_ones(scratch_registry):
    @scratch_registry.register("model", "constant")
    class Constant:
        def __init__(self, embedding_dim: int = 8):
            self.embedding_dim = embedding_dim

    with pytest.raises(ConfigError) as err:
        scratch_registry.build("model", "constant", {"embeding_dim": 4})
    msg = str(err.value)
    assert "embeding_dim" in msg and "did you mean 'embedding_dim'" in msg and "accepts: embedding_dim" in msg


def test_missing_required_parameter(scratch_registry):
    @scratch_registry.register("dataset", "needs-path")
    class NeedsPath:
        def __init__(self, path: str):
            self.path = path

    with pytest.raises(ConfigError, match="needs parameter\\(s\\) path"):
        scratch_registry.build("dataset", "needs-path", {})


def test_unknown_name_lists_known_and_suggests_closest(scratch_registry):
    for name in ("itemknn", "bpr", "pop"):
        scratch_registry.register("model", name)(type(name, (), {}))
    with pytest.raises(PluginError) as err:
        scratch_registry.get("model", "itemkn")
    msg = str(err.value)
    assert "Did you mean 'itemknn'?" in msg
    assert "bpr, itemknn, pop" in msg


def test_registering_a_name_twice_from_different_objects_fails(scratch_registry):
    scratch_registry.register("metric", "ndcg")(type("A", (), {"__module__": "one"}))
    with pytest.raises(PluginError, match="registered twice"):
        scratch_registry.register("metric", "ndcg")(type("B", (), {"__module__": "two"}))


def test_reimport_of_the_same_class_is_idempotent(scratch_registry):
    cls = type("Same", (), {"__module__": "mod"})
    scratch_registry.register("metric", "same")(cls)
    scratch_registry.register("metric", "same")(cls)
    assert scratch_registry.names("metric") == ["same"]


def test_metric_metadata_is_validated(scratch_registry):
    with pytest.raises(PluginError, match="unknown needs"):
        scratch_registry.register("metric", "bad", needs={"topk", "telepathy"})(type("M", (), {}))
    scratch_registry.register("metric", "ok", higher_is_better=False, needs={"topk", "train_popularity"})(
        type("M2", (), {}))
    meta = scratch_registry.get("metric", "ok").meta
    assert meta["higher_is_better"] is False and meta["needs"] == {"topk", "train_popularity"}


def test_unknown_kind_is_rejected(scratch_registry):
    with pytest.raises(PluginError, match="kinds are"):
        scratch_registry.register("sampler", "x")


def test_builtins_cover_every_kind():
    names = {k: registry.names(k) for k in registry.KINDS}
    assert {"ml-100k", "files", "synthetic"} <= set(names["dataset"])
    assert {"random", "pop", "itemknn", "bpr"} <= set(names["model"])
    assert "scratch" in names["finetune"] and registry.get("finetune", "scratch").meta["baseline"] is True
    assert "offline_ranking" in names["task"]
    assert {"precision", "recall", "ndcg", "mrr", "map", "hit", "coverage", "arp", "gini", "novelty"} <= set(
        names["metric"])
    for kind, plugin_names in names.items():
        for name in plugin_names:
            assert registry.get(kind, name).description, f"{kind} {name} has no one-line description"
