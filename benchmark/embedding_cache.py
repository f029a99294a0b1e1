"""Frozen item embeddings cached on disk, reused across the runs of a sweep.

The key is the sha256 of (the encoder's ``identity()`` — model, revision or resolved folder, pooling, max length,
dtype, normalisation —, the item-text template, and the sha256 of the rendered item texts in item-code order).
Keying on the texts themselves rather than on the dataset config is stronger: a changed data file, another
preprocessing or a re-coded catalogue changes the texts or their order, so a stale matrix is never reused, while
runs that differ only in seed, model or split share one. Files live in ``<cache>/embeddings/<key>.npy`` with a
``<key>.json`` beside it naming what was encoded (``<cache>``: ``$RECUX_DATA`` or the user cache dir, see
``recux.download.data_home``), written atomically so parallel sweep jobs never read a part-written file.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from recux.item_text import texts_sha256

log = logging.getLogger("recux")


def cache_root() -> Path:
    from recux.download import data_home

    return data_home() / "embeddings"


def cache_key(encoder_identity: Mapping[str, Any], template: str, texts: Sequence[str]) -> str:
    import hashlib

    payload = {"encoder": dict(encoder_identity), "template": template, "max_length":
               encoder_identity.get("max_length"), "texts_sha256": texts_sha256(texts), "n_items": len(texts)}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode("utf-8")).hexdigest()


def cached_embeddings(encoder: Any, texts: Sequence[str], template: str, root: str | Path | None = None) -> np.ndarray:
    """(len(texts), dim) float32 frozen embeddings of ``texts``: read from the cache, or encoded and stored."""
    from recux.results import atomic_write

    identity = encoder.identity()
    key = cache_key(identity, template, texts)
    folder = Path(root) if root is not None else cache_root()
    path = folder / f"{key}.npy"
    cached = _read(path, len(texts))
    if cached is not None:
        log.info("item embeddings from the cache %s", path)
        return cached
    matrix = np.ascontiguousarray(encoder.embed(list(texts)), dtype=np.float32)
    atomic_write(path, lambda tmp: _save(tmp, matrix))
    atomic_write(folder / f"{key}.json", json.dumps(
        {"encoder": identity, "template": template, "n_items": len(texts), "dim": int(matrix.shape[1]),
         "texts_sha256": texts_sha256(texts), "examples": list(texts[:3])}, indent=2, default=str))
    log.info("item embeddings encoded (%d x %d) and cached at %s", *matrix.shape, path)
    return matrix


def _save(tmp: Path, matrix: np.ndarray) -> None:
    with open(tmp, "wb") as fh:  # a handle: np.save(path) would append ".npy" to the temporary name
        np.save(fh, matrix, allow_pickle=False)


def _read(path: Path, n: int) -> np.ndarray | None:
    """The cached matrix, or None when absent or unreadable (then it is encoded again and replaced)."""
    if not path.exists():
        return None
    try:
        matrix = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        log.warning("ignoring unreadable embedding cache %s (%s)", path, exc)
        return None
    return matrix if matrix.ndim == 2 and matrix.shape[0] == n and matrix.dtype == np.float32 else None
