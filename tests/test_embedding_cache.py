"""Frozen item embeddings cached on disk: reused when encoder, template and texts agree (no forward pass), never
reused after a change of template, encoder, max length or texts."""

from __future__ import annotations

import numpy as np
import pytest

from recux.embedding_cache import cache_root, cached_embeddings
from recux.plugins.encoders.hf import HFEncoder
from tests._tiny_encoder import make_tiny_bert

pytest.importorskip("transformers")

TEXTS = ["Toy Story (1995): Animation", "Heat (1995): Crime", "Casino (1995): Drama"]
TEMPLATE = "{title} ({release_year}): {genres}"


class CountingEncoder(HFEncoder):
    """The real hf encoder, counting its forward passes."""

    forwards = 0

    def forward(self, module, texts):
        type(self).forwards += 1
        return super().forward(module, texts)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return str(make_tiny_bert(tmp_path_factory.mktemp("tiny-bert")))


@pytest.fixture
def counting():
    CountingEncoder.forwards = 0
    return CountingEncoder


def test_second_call_reads_the_cache_without_encoding(tiny, tmp_path, counting):
    first = cached_embeddings(counting(model=tiny), TEXTS, TEMPLATE, tmp_path)
    assert counting.forwards == 1
    np.testing.assert_array_equal(first, HFEncoder(model=tiny).embed(TEXTS))
    again = cached_embeddings(counting(model=tiny), TEXTS, TEMPLATE, tmp_path)  # a new run, same settings
    assert counting.forwards == 1
    np.testing.assert_array_equal(again, first)
    assert again.dtype == np.float32 and again.shape == (3, 16)
    assert sorted(p.suffix for p in tmp_path.iterdir()) == [".json", ".npy"]  # no temporary files left


@pytest.mark.parametrize("change", ["template", "texts", "pooling", "max_length", "model"])
def test_a_changed_setting_never_reuses_the_cache(tiny, tmp_path, counting, change):
    cached_embeddings(counting(model=tiny), TEXTS, TEMPLATE, tmp_path)
    texts, template, params = list(TEXTS), TEMPLATE, {"model": tiny}
    if change == "template":
        template = "{title}: {genres} ({release_year})"  # same texts handed in, another template: not the same key
    elif change == "texts":
        texts[1] = "Heat (1995): Crime, Thriller"
    elif change == "pooling":
        params["pooling"] = "cls"
    elif change == "max_length":
        params["max_length"] = 4
    else:
        params["model"] = str(make_tiny_bert(tmp_path.parent / "other-bert", seed=1))
    out = cached_embeddings(counting(**params), texts, template, tmp_path)
    assert counting.forwards == 2
    np.testing.assert_array_equal(out, HFEncoder(**params).embed(texts))
    assert len(list(tmp_path.glob("*.npy"))) == 2


def test_an_unreadable_cache_file_is_encoded_again(tiny, tmp_path, counting):
    cached_embeddings(counting(model=tiny), TEXTS, TEMPLATE, tmp_path)
    (npy,) = tmp_path.glob("*.npy")
    npy.write_bytes(b"not an array")
    out = cached_embeddings(counting(model=tiny), TEXTS, TEMPLATE, tmp_path)
    assert counting.forwards == 2
    np.testing.assert_array_equal(out, np.load(npy))


def test_the_cache_lives_under_the_recux_data_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("RECUX_DATA", str(tmp_path))
    assert cache_root() == tmp_path / "embeddings"
