"""The text inputs of models that use a language model (registered with capability ``text_encoder``).

For such models only, the fit stage builds the encoder from the top-level ``encoder`` config group, renders the
item texts with ``item_text.template`` (recux.item_text) in item-code order, and gives a callable returning the
frozen embedding matrix from the on-disk cache (recux.embedding_cache); FitContext carries all three. Every other
model gets none of them, and nothing heavy (torch, transformers) is imported for it.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from recux import registry
from recux.data import Dataset
from recux.errors import ConfigError

CAPABILITY = "text_encoder"


def uses_text(model_info: registry.PluginInfo) -> bool:
    return CAPABILITY in model_info.meta.get("capabilities", ())


def build_encoder(resolved: Mapping[str, Any]) -> Any:
    """The encoder plugin named by the ``encoder`` config group."""
    node = dict(resolved.get("encoder") or {})
    name = node.pop("name", None)
    if name is None:
        raise ConfigError("this model uses a text encoder but the config has no `encoder` group with a name; "
                          "add encoder=minilm (conf/encoder) or `encoder: {name: hf, model: <name or folder>}`")
    return registry.build("encoder", str(name), node)


def item_text_template(resolved: Mapping[str, Any]) -> str:
    from recux.item_text import resolve_template

    node = resolved.get("item_text") or {}
    return resolve_template(node.get("template"), (resolved.get("dataset") or {}).get("name"))


def text_inputs(resolved: Mapping[str, Any], model_info: registry.PluginInfo, dataset: Dataset,
                cache_root: Any = None) -> dict[str, Any]:
    """FitContext fields ``encoder``, ``item_texts`` and ``item_embeddings`` for a text model; {} otherwise."""
    if not uses_text(model_info):
        return {}
    from recux.embedding_cache import cached_embeddings
    from recux.item_text import render_item_texts

    encoder = build_encoder(resolved)
    template = item_text_template(resolved)
    texts = render_item_texts(dataset.item_features, template, dataset.n_items, f"dataset '{dataset.name}'")

    @functools.cache
    def item_embeddings() -> Any:
        return cached_embeddings(encoder, texts, template, cache_root)

    return {"encoder": encoder, "item_texts": texts, "item_embeddings": item_embeddings}


def text_record(resolved: Mapping[str, Any], ctx: Any) -> dict[str, Any]:
    """What results.json records for a text model (``text``: encoder identity, template, examples); {} else."""
    if getattr(ctx, "encoder", None) is None:
        return {}
    texts = ctx.item_texts or []
    return {"text": {"encoder": ctx.encoder.identity(), "template": item_text_template(resolved),
                     "n_items": len(texts), "examples": texts[:3]}}
