"""Content-based recommender: a user profile built from the item vectors of the user's training history, and
cosine scores between that profile and every item (Lops, de Gemmis & Semeraro 2011, "Content-based
Recommender Systems: State of the Art and Trends", Recommender Systems Handbook, ch. 3; Pazzani & Billsus
2007, "Content-Based Recommendation Systems", The Adaptive Web, LNCS 4321).

Item vectors ``e_i`` are unit-normalised (``x_i / ||x_i||``; an all-zero vector stays zero). With ``H_u`` the
user's training items in time order and ``r(i)`` an item's position counted back from the user's most recent
training item (0 = most recent), the profile is the weighted centroid (Rocchio with positive feedback only)

    p_u = sum_{i in H_u} w_ui e_i / sum_{i in H_u} w_ui,   w_ui = 1 (``profile: mean``) or
                                                           w_ui = 0.5 ** (r(i) / half_life) (``recency``)

and ``score(u, j) = cos(p_u, e_j) = p_u . e_j / ||p_u||`` for every item j (0 for a user without training
items). Repeated interactions with an item count once per interaction.

Item vectors (``features``):
- ``text``: the frozen language-model embeddings ``ctx.item_embeddings()`` of the items' texts (the pipeline
  fills them for models registered with capability ``text_encoder``).
- ``genres``: multi-hot vectors of the dataset's categorical item-feature columns (``columns``; ML-100K:
  ``genres``), no language model: the metadata baseline. The model ``content_genres`` is this setting
  registered without ``text_encoder``, so no encoder is ever built for it.

Every item with a vector is scored, including items never seen in training: the models declare capability
``scores_unseen_items`` (the cold-start protocol may rank held-out items with them).
Scoring a batch is one dense (batch x dim) @ (dim x n_items) product.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl
import scipy.sparse as sp

from recux.data import Dataset, Interactions
from recux.errors import ConfigError, DataError
from recux.model import FitContext, Recommender
from recux.plugins.models._history import as_interactions, time_ordered
from recux.registry import register

FEATURES = ("text", "genres")
PROFILES = ("mean", "recency")


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows divided by their L2 norm (zero rows stay zero), float32."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)


def recency_ranks(train: Interactions) -> np.ndarray:
    """Per interaction, its position counted back from the user's most recent one (0 = most recent).

    Time order is ``train.timestamp`` (ties keep the log order, the later row counting as more recent)."""
    if train.timestamp is None:
        raise ConfigError("model.profile=recency needs interaction timestamps and this split's training data has "
                          "none; use model.profile=mean, or a dataset with a timestamp column")
    order = np.lexsort((np.arange(len(train)), train.timestamp, train.user))  # by user, then time, then row
    counts = np.bincount(train.user, minlength=train.n_users)
    ends = np.cumsum(counts)  # one past each user's last interaction in `order`
    ranks = np.empty(len(train), dtype=np.int64)
    ranks[order] = ends[train.user[order]] - 1 - np.arange(len(train))
    return ranks


def profile_weights(train: Interactions, profile: str, half_life: float) -> sp.csr_matrix:
    """(n_users x n_items) CSR of w_ui summed over each user's interactions (see the module formula)."""
    if profile == "mean":
        w = np.ones(len(train), dtype=np.float64)
    else:
        w = 0.5 ** (recency_ranks(train) / half_life)
    return sp.csr_matrix((w, (train.user, train.item)), shape=(train.n_users, train.n_items))


def user_profiles(weights: sp.csr_matrix, item_vectors: np.ndarray) -> np.ndarray:
    """(n_users x dim) float32 unit profiles: rows of ``weights @ unit_rows(item_vectors)``, unit-normalised.

    Dividing by sum w_ui is skipped: a positive scale does not change a cosine."""
    return unit_rows(np.asarray(weights @ unit_rows(item_vectors).astype(np.float64)))


def categorical_item_vectors(dataset: Dataset, columns: Sequence[str]) -> np.ndarray:
    """(n_items x n_values) multi-hot float32 matrix of the item-feature ``columns`` (list columns contribute
    one flag per value, scalar columns one flag for their value; nulls none)."""
    feats = dataset.item_features
    if feats is None:
        raise ConfigError(f"model.features=genres needs item features and dataset '{dataset.name}' has none; "
                          "use model.features=text or a dataset with item features")
    if feats.height != dataset.n_items:
        raise DataError(f"item_features has {feats.height} rows for {dataset.n_items} items (row i = item code i)")
    blocks = []
    for col in columns:
        if col not in feats.columns:
            raise ConfigError(f"model.columns names '{col}' but dataset '{dataset.name}' item features have "
                              f"{feats.columns}; pick categorical columns from these")
        blocks.append(_multi_hot(feats[col]))
    return np.hstack(blocks) if blocks else np.zeros((dataset.n_items, 0), np.float32)


def _multi_hot(series: pl.Series) -> np.ndarray:
    values = series.to_list()
    rows = [v if isinstance(v, list) else ([] if v is None else [v]) for v in values]
    vocab = sorted({str(x) for r in rows for x in r if x is not None})
    index = {v: j for j, v in enumerate(vocab)}
    out = np.zeros((len(rows), len(vocab)), dtype=np.float32)
    for i, r in enumerate(rows):
        out[i, [index[str(x)] for x in r if x is not None]] = 1.0
    return out


@register("model", "content", training="closed_form", capabilities={"text_encoder", "scores_unseen_items"})
class ContentRecommender(Recommender):
    """Content-based: cosine between a user's (mean or recency-weighted) history profile and every item."""

    def __init__(self, features: str = "text", profile: str = "mean", half_life: float = 10.0,
                 columns: Sequence[str] = ("genres",)) -> None:
        """features: text (frozen LM item embeddings) or genres (categorical item-feature columns);
        profile: mean or recency (exponential decay over the user's training items in time order);
        half_life: for recency, the number of more recent items after which an item's weight halves;
        columns: the categorical item-feature columns used by features=genres."""
        if features not in FEATURES:
            raise ConfigError(f"model.features={features!r}: use one of {list(FEATURES)}")
        if profile not in PROFILES:
            raise ConfigError(f"model.profile={profile!r}: use one of {list(PROFILES)}")
        if not (isinstance(half_life, int | float) and half_life > 0 and np.isfinite(half_life)):
            raise ConfigError(f"model.half_life={half_life!r}: it must be a number of items > 0, e.g. 10")
        if isinstance(columns, str) or not columns:
            raise ConfigError(f"model.columns={columns!r}: give a non-empty list of item-feature columns, "
                              "e.g. [genres]")
        self.features, self.profile, self.half_life = features, profile, float(half_life)
        self.columns = tuple(columns)
        self.item_vectors: np.ndarray | None = None  # (n_items, dim) unit rows
        self.profiles: np.ndarray | None = None  # (n_users, dim) unit rows
        self._train: Interactions | None = None  # the histories (history()); not saved with the model

    def __getstate__(self) -> dict:
        """The saved model holds item vectors and profiles only (as before history() existed)."""
        return {k: v for k, v in self.__dict__.items() if k != "_train"}

    def fit(self, ctx: FitContext) -> None:
        train = ctx.split.train
        self.n_users, self.n_items = train.n_users, train.n_items
        vectors = self._item_vectors(ctx)
        if vectors.shape[0] != self.n_items:
            raise DataError(f"content: {vectors.shape[0]} item vectors for {self.n_items} items (row i = item i)")
        self.item_vectors = unit_rows(vectors)
        self.profiles = user_profiles(profile_weights(train, self.profile, self.half_life), self.item_vectors)
        self._train = train

    def _item_vectors(self, ctx: FitContext) -> np.ndarray:
        if self.features == "genres":
            return categorical_item_vectors(ctx.dataset, self.columns)
        if ctx.item_embeddings is None:
            raise ConfigError("model.features=text needs item text embeddings (FitContext.item_embeddings), which "
                              "the pipeline fills for models with capability text_encoder from the dataset's item "
                              "texts; use a dataset with item text, or model.features=genres")
        return np.asarray(ctx.item_embeddings(), dtype=np.float32)

    def score(self, users: np.ndarray) -> np.ndarray:
        if self.profiles is None or self.item_vectors is None:
            raise RuntimeError("ContentRecommender.score called before fit")
        return self.profiles[np.asarray(users, dtype=np.int64)] @ self.item_vectors.T

    def history(self, users: np.ndarray) -> list[np.ndarray]:
        """Each user's training items in time order (repeats kept: each interaction counts)."""
        return time_ordered(getattr(self, "_train", None), users)  # None after load: refused

    def history_weights(self, histories: Sequence[np.ndarray]) -> sp.csr_matrix:
        """(len(histories) x n_items) w_ui of the module formula for time-ordered histories."""
        return profile_weights(as_interactions(histories, self.n_items), self.profile, self.half_life)

    def score_histories(self, histories: Sequence[np.ndarray]) -> np.ndarray:
        if self.item_vectors is None:
            raise RuntimeError("ContentRecommender.score_histories called before fit")
        return user_profiles(self.history_weights(histories), self.item_vectors) @ self.item_vectors.T


@register("model", "content_genres", training="closed_form", capabilities={"scores_unseen_items"})
class GenreContentRecommender(ContentRecommender):
    """Content-based on categorical item features only (genres): the metadata baseline, no language model."""

    def __init__(self, profile: str = "mean", half_life: float = 10.0, columns: Sequence[str] = ("genres",)) -> None:
        """profile, half_life, columns: as for ``content`` (features is fixed to genres)."""
        super().__init__(features="genres", profile=profile, half_life=half_life, columns=columns)
