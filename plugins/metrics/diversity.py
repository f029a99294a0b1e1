"""List-content metrics: intra-list diversity on item categories and on language-model item embeddings,
unexpectedness (from the user's history in embedding space, and from a popularity list), serendipity and
Steck's miscalibration. Formulas and citations beside the kernels in recux.kernels.diversity.

Categories come from a categorical item-feature column (``column``, default ``genres``): a list column gives each
item its set of categories (multi-hot), a scalar column one category; null is no category. Item embeddings come
from ``EvalContext.item_embeddings`` (unit rows; recux.evaluation fills it, only when one of these metrics asks).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from recux.errors import ConfigError, DataError
from recux.metric import EvalContext, Metric, MetricResult
from recux.registry import register

DISTANCES = ("cosine", "jaccard")


def item_categories(item_features: Any, column: str, n_items: int, metric: str
                    ) -> tuple[np.ndarray, np.ndarray, int]:
    """(indptr (n_items+1,) int64, indices int32, n_categories): item i's distinct categories, sorted, are
    ``indices[indptr[i]:indptr[i+1]]``; category codes number the distinct values in sorted order."""
    if not isinstance(item_features, pl.DataFrame):
        raise ConfigError(f"metric '{metric}' needs item features (a polars DataFrame, row i = item code i) with "
                          f"a category column '{column}'; use a dataset with item features (ml-100k, synthetic).")
    if column not in item_features.columns:
        raise ConfigError(
            f"metric '{metric}': the item features have no column '{column}' (columns: "
            f"{', '.join(item_features.columns)}); set the metric's column, e.g. {{name: {metric}, column: genres}}."
        )
    if item_features.height != n_items:
        raise DataError(f"metric '{metric}': {item_features.height} item-feature rows for {n_items} items")
    frame = pl.DataFrame({"row": np.arange(n_items, dtype=np.int64), "cat": item_features[column]})
    if isinstance(frame.schema["cat"], pl.List):
        frame = frame.explode("cat")
    frame = frame.drop_nulls("cat")
    values = frame["cat"].cast(pl.String)
    names = values.unique().sort()  # category code = position of its value in sorted order
    n_cats = len(names)
    codes = values.cast(pl.Enum(names)).to_physical().to_numpy().astype(np.int64) if n_cats \
        else np.zeros(0, dtype=np.int64)
    keys = np.sort(frame["row"].to_numpy() * max(n_cats, 1) + codes, kind="stable")  # rows come in order:
    keys = keys[np.concatenate([[True], keys[1:] != keys[:-1]])] if len(keys) else keys  # a cheap sort; no repeats
    rows, codes = keys // max(n_cats, 1), keys % max(n_cats, 1)
    indptr = np.zeros(n_items + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n_items), out=indptr[1:])
    return indptr, codes.astype(np.int32), n_cats


def _categories(ctx: EvalContext, column: str, metric: str) -> tuple[np.ndarray, np.ndarray, int]:
    key = ("item_categories", column)
    if key not in ctx.extra:
        ctx.extra[key] = item_categories(ctx.item_features, column, ctx.n_items, metric)
    return ctx.extra[key]


def _history(ctx: EvalContext, metric: str) -> tuple[np.ndarray, np.ndarray]:
    if ctx.history_indptr is None or ctx.history_indices is None:
        raise ConfigError(f"metric '{metric}' needs the users' training history: pass history=<CSR whose row r "
                          "holds the training items of topk row r's user> to evaluate_topk, or drop the metric.")
    return ctx.history_indptr, ctx.history_indices


def _embeddings(ctx: EvalContext, metric: str) -> np.ndarray:
    if ctx.item_embeddings is None:
        raise ConfigError(f"metric '{metric}' needs item embeddings: pass item_embeddings=<(n_items, d) array> "
                          "to evaluate_topk, or drop the metric.")
    return ctx.item_embeddings


def _named(name: str, values: dict[int, np.ndarray]) -> dict[str, np.ndarray]:
    return {f"{name}@{k}": v for k, v in values.items()}


@register("metric", "ild", higher_is_better=True, needs={"topk", "item_features"})
class IntraListDiversity(Metric):
    """ILD@k on item categories: mean pairwise distance (cosine on multi-hot category vectors by default, or
    Jaccard) over the pairs of categorised items in the top k (Ziegler et al. 2005; Smyth & McClave 2001)."""

    def __init__(self, column: str = "genres", distance: str = "cosine") -> None:
        if distance not in DISTANCES:
            raise ConfigError(f"metric 'ild': distance={distance!r}; use one of {', '.join(DISTANCES)}, e.g. "
                              "{name: ild, distance: jaccard}")
        self.column, self.distance = str(column), distance

    def compute(self, ctx: EvalContext) -> MetricResult:
        from recux.kernels.diversity import ild

        indptr, indices, n_cats = _categories(ctx, self.column, "ild")
        return MetricResult(per_user=_named("ild", ild(ctx.topk, ctx.ks, indptr, indices, n_cats, self.distance)))


@register("metric", "semantic_ild", higher_is_better=True, needs={"topk", "item_embeddings"})
class SemanticILD(Metric):
    """Semantic ILD@k: mean pairwise cosine distance of the language-model embeddings of the top-k items,
    O(k d) per user through ||sum e||^2 - k = sum_{i != j} cos(e_i, e_j) (unit vectors)."""

    def compute(self, ctx: EvalContext) -> MetricResult:
        from recux.kernels.diversity import semantic_ild

        emb = _embeddings(ctx, "semantic_ild")
        return MetricResult(per_user=_named("semantic_ild", semantic_ild(ctx.topk, ctx.ks, emb)))


@register("metric", "unexpectedness", higher_is_better=True, needs={"topk", "item_embeddings", "history"})
class Unexpectedness(Metric):
    """Unexpectedness@k: mean over the top-k items of their mean cosine distance to the user's training items,
    (1/m) sum_i (1 - e_i . c_u), c_u the mean unit embedding of the history (Kaminskas & Bridge 2016)."""

    def compute(self, ctx: EvalContext) -> MetricResult:
        from recux.kernels.diversity import unexpectedness

        emb = _embeddings(ctx, "unexpectedness")
        h_indptr, h_indices = _history(ctx, "unexpectedness")
        return MetricResult(per_user=_named("unexpectedness",
                                            unexpectedness(ctx.topk, ctx.ks, emb, h_indptr, h_indices)))


def _popularity_surprise(ctx: EvalContext, metric: str) -> tuple[dict[int, np.ndarray], dict[int, np.ndarray]]:
    """(unexpectedness_pop, serendipity) values, computed once for both metrics."""
    ks = tuple(int(k) for k in ctx.ks)
    cached = ctx.extra.get("popularity_surprise")
    if cached is None or cached[0] != ks:
        from recux.kernels.diversity import popularity_surprise

        if ctx.train_item_counts is None:
            raise ConfigError(f"metric '{metric}' needs training popularity: pass train=<users x items CSR of "
                              "training interactions> to evaluate_topk, or drop the metric.")
        h_indptr, h_indices = _history(ctx, metric)
        cached = (ks, popularity_surprise(ctx.topk, ks, ctx.train_item_counts, h_indptr, h_indices,
                                          ctx.gt_indptr, ctx.gt_indices))
        ctx.extra["popularity_surprise"] = cached
    return cached[1]


@register("metric", "unexpectedness_pop", higher_is_better=True, needs={"topk", "train_popularity", "history"})
class PopularityUnexpectedness(Metric):
    """unexpectedness_pop@k: share of the top-k items not in the popularity list PM_k(u) (the k most popular
    training items outside the user's history; Ge et al. 2010 after Murakami et al. 2008)."""

    def compute(self, ctx: EvalContext) -> MetricResult:
        return MetricResult(per_user=_named("unexpectedness_pop", _popularity_surprise(ctx, "unexpectedness_pop")[0]))


@register("metric", "serendipity", higher_is_better=True, needs={"topk", "train_popularity", "history"})
class Serendipity(Metric):
    """Serendipity@k: share of the k slots holding an item that is relevant (in the user's test items) and
    unexpected (not in PM_k(u)); Ge et al. 2010, see Kotkov et al. 2016 for other definitions."""

    def compute(self, ctx: EvalContext) -> MetricResult:
        return MetricResult(per_user=_named("serendipity", _popularity_surprise(ctx, "serendipity")[1]))


@register("metric", "miscalibration", higher_is_better=False, needs={"topk", "item_features", "history"})
class Miscalibration(Metric):
    """Miscalibration@k (Steck 2018): KL(p(g|u) || q~(g|u)) between the category distribution of the user's
    training history and of the top-k list, q~ = (1 - alpha) q + alpha p, alpha = 0.01 by default; NaN (left out
    of the mean) for users without a categorised training item."""

    def __init__(self, column: str = "genres", alpha: float = 0.01) -> None:
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0.0 < float(alpha) < 1.0:
            raise ConfigError(f"metric 'miscalibration': alpha={alpha!r} must lie in (0, 1); Steck uses 0.01")
        self.column, self.alpha = str(column), float(alpha)

    def compute(self, ctx: EvalContext) -> MetricResult:
        from recux.kernels.diversity import miscalibration

        indptr, indices, n_cats = _categories(ctx, self.column, "miscalibration")
        h_indptr, h_indices = _history(ctx, "miscalibration")
        values = miscalibration(ctx.topk, ctx.ks, indptr, indices, n_cats, h_indptr, h_indices, self.alpha)
        return MetricResult(per_user=_named("miscalibration", values))
