"""One text per item, rendered from the dataset's item features with a Python format template.

``item_text.template`` (conf/config.yaml) is a ``str.format`` template over the item-feature columns, e.g.
``"{title} ({release_year}): {genres}"``. Rendering rules: a list value (genres) is joined with ", ", a missing
value (null) renders as an empty string, and brackets left empty by a missing value (``" ()"``) are removed with
the space before them, so an item without a year reads "Title: Drama". ``template: null`` takes the dataset
plugin's declared default (registration metadata ``item_text_template``; ML-100K: "title (year): genres"), else
``"{text}"``: any dataset with a ``text`` column works (the files dataset: ``item_text_col`` or
``item_text_path``).
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping, Sequence
from typing import Any

import polars as pl

from recux.errors import ConfigError

FALLBACK_TEMPLATE = "{text}"
_EMPTY_BRACKETS = re.compile(r"\s*(\(\s*\)|\[\s*\])")
_SPACES = re.compile(r"\s{2,}")


def resolve_template(template: str | None, dataset_plugin: str | None) -> str:
    """The template to use: the configured one, else the dataset plugin's declared default, else ``{text}``."""
    if template is not None:
        if not isinstance(template, str) or not template.strip():
            raise ConfigError(f"item_text.template={template!r}: give a format template over the item features, "
                              "e.g. item_text.template='{title}: {genres}', or null for the dataset's default")
        return template
    from recux import registry
    from recux.errors import PluginError

    try:
        declared = registry.get("dataset", str(dataset_plugin)).meta.get("item_text_template")
    except PluginError:
        declared = None
    return str(declared) if declared else FALLBACK_TEMPLATE


def template_fields(template: str) -> list[str]:
    """The item-feature columns a template names (``{title}``, ``{genres!s}``, ``{year:>4}`` -> title, ...)."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ConfigError(f"item_text.template={template!r} is not a valid format template ({exc}); "
                          "write fields as {column}, literal braces as {{ and }}") from None
    fields = []
    for _, name, _, _ in parsed:
        if name is None:
            continue
        root = re.split(r"[.\[]", name, maxsplit=1)[0]
        if not root or root.isdigit():
            raise ConfigError(f"item_text.template={template!r}: every field needs a column name, e.g. {{title}}")
        if root not in fields:
            fields.append(root)
    return fields


def render_item_texts(item_features: pl.DataFrame | None, template: str, n_items: int,
                      dataset_name: str = "the dataset") -> list[str]:
    """One text per item code (row i of ``item_features`` is item code i), rendered with ``template``."""
    if item_features is None:
        raise ConfigError(
            f"{dataset_name} has no item features, so items have no text for a text model. Use a dataset with item "
            "text (ml-100k, synthetic), or for the files dataset set dataset.item_text_path (a table of item_id "
            "and text) or dataset.item_features_path with dataset.item_text_col."
        )
    fields = template_fields(template)
    available = [c for c in item_features.columns if c != "item_id"]
    missing = [f for f in fields if f not in available]
    if missing:
        raise ConfigError(
            f"item_text.template={template!r} names {', '.join(repr(m) for m in missing)}, which {dataset_name}'s "
            f"items do not have; available fields: {', '.join(available) or 'none'}. Set item_text.template to a "
            "template over those, e.g. item_text.template='{" + (available[0] if available else "text") + "}'."
        )
    if item_features.height != n_items:
        raise ConfigError(f"{dataset_name}: {item_features.height} item-feature rows for {n_items} items")
    columns = {f: item_features[f].to_list() for f in fields}
    return [_render(template, {f: _value(columns[f][i]) for f in fields}) for i in range(n_items)]


def _value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value if v is not None)
    return value


def _render(template: str, values: Mapping[str, Any]) -> str:
    text = template.format_map(values)
    return _SPACES.sub(" ", _EMPTY_BRACKETS.sub("", text)).strip()


def texts_sha256(texts: Sequence[str]) -> str:
    """sha256 over the texts in item-code order (each length-prefixed, so boundaries count)."""
    import hashlib

    h = hashlib.sha256()
    for t in texts:
        b = t.encode("utf-8")
        h.update(len(b).to_bytes(8, "little"))
        h.update(b)
    return h.hexdigest()
