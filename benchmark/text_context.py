"""The text inputs of models that use a language model (registered with capability ``text_encoder``).

For such models only, the fit stage builds the encoder from the top-level ``encoder`` config group, renders the
item texts with ``item_text.template`` (recux.item_text) in item-code order, and gives a callable returning the
frozen embedding matrix from the on-disk cache (recux.embedding_cache); FitContext carries all three. Every other
model gets none of them, and nothing heavy (torch, transformers) is imported for it.

Metrics that need item embeddings (``metric_embeddings``) get the same cached frozen embeddings, for any model.
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


# Metrics that compare items by the embeddings of their texts (need "item_embeddings": semantic ILD,
# unexpectedness) get the same frozen embeddings for every model of a run, text model or not: the ``encoder``
# config group over the dataset's item texts, through the on-disk cache. Nothing is built until a metric asks.

EMBEDDING_NEED = "item_embeddings"


def embedding_metric_names(metrics: Any) -> list[str]:
    """Names of the metrics (specs or ``recux.evaluation.build_metrics`` output; None = the default set, which
    has none) that need item embeddings."""
    from recux.evaluation import build_metrics

    return [info.name for info, _ in build_metrics(metrics or ()) if EMBEDDING_NEED in info.meta.get("needs", ())]


def metric_item_texts(resolved: Mapping[str, Any], dataset: Dataset, names: list[str]) -> tuple[list[str], str]:
    """(item texts in item-code order, template) for the embedding metrics ``names``, or a ConfigError naming
    them and the fix when the dataset has no item text."""
    from recux.item_text import render_item_texts

    what = f"metric{'s' if len(names) > 1 else ''} {', '.join(names)}"
    if dataset.item_features is None:
        raise ConfigError(
            f"{what} compare items by language-model embeddings of their texts, but dataset '{dataset.name}' has "
            "no item features, so its items have no text. Use a dataset with item text (ml-100k, synthetic; the "
            "files dataset: dataset.item_text_path or dataset.item_features_path with dataset.item_text_col), or "
            f"drop {', '.join(names)} from metrics.plugins."
        )
    template = item_text_template(resolved)
    try:
        return render_item_texts(dataset.item_features, template, dataset.n_items, f"dataset '{dataset.name}'"), template
    except ConfigError as exc:
        raise ConfigError(f"{what} embed the item texts: {exc}") from None


class MetricEmbeddings:
    """A zero-argument callable returning the (n_items, dim) frozen embeddings of the item texts by the
    ``encoder`` config group, for the embedding metrics ``names``; computed (or read from the cache) on the first
    call, never when no metric asks. ``describe()`` is what results.json records about them."""

    def __init__(self, resolved: Mapping[str, Any], dataset: Dataset, names: list[str], cache_root: Any = None):
        self.resolved, self.dataset, self.names, self.cache_root = resolved, dataset, list(names), cache_root
        self._matrix: Any = None
        self._encoder: Any = None

    def __call__(self) -> Any:
        if self._matrix is None:
            from recux.embedding_cache import cached_embeddings

            texts, template = metric_item_texts(self.resolved, self.dataset, self.names)
            self._encoder = build_encoder(self.resolved)
            self._matrix = cached_embeddings(self._encoder, texts, template, self.cache_root)
        return self._matrix

    def describe(self) -> dict[str, Any]:
        """{} until the embeddings were used; then the metrics, the encoder identity and the template."""
        if self._matrix is None:
            return {}
        return {"metrics": self.names, "encoder": self._encoder.identity(),
                "template": item_text_template(self.resolved), "dim": int(self._matrix.shape[1])}
