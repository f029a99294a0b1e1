"""Beyond-accuracy metrics: catalogue coverage, exposure Gini, popularity bias (ARP) and novelty."""

from __future__ import annotations

import numpy as np

from recux.errors import ConfigError
from recux.metric import EvalContext, Metric, MetricResult
from recux.registry import register


def _exposure(ctx: EvalContext) -> dict[str, float]:
    ks = tuple(int(k) for k in ctx.ks)
    cached = ctx.extra.get("exposure_metrics")
    if cached is None or cached[0] != ks:
        from recux.kernels.beyond import coverage_and_gini

        cached = (ks, coverage_and_gini(ctx.topk, ks, ctx.n_items))
        ctx.extra["exposure_metrics"] = cached
    return cached[1]


def _popularity(ctx: EvalContext, metric: str) -> dict[str, np.ndarray]:
    if ctx.train_item_counts is None or not ctx.n_train_users:
        raise ConfigError(
            f"metric '{metric}' needs training popularity: pass train=<users x items CSR of training "
            "interactions> to evaluate_topk (recux-evaluate: --train FILE), or drop the metric."
        )
    ks = tuple(int(k) for k in ctx.ks)
    cached = ctx.extra.get("popularity_metrics")
    if cached is None or cached[0] != ks:
        from recux.kernels.beyond import popularity_metrics

        cached = (ks, popularity_metrics(ctx.topk, ks, ctx.train_item_counts, int(ctx.n_train_users)))
        ctx.extra["popularity_metrics"] = cached
    return cached[1]


@register("metric", "coverage", higher_is_better=True, needs={"topk"})
class Coverage(Metric):
    """ItemCoverage@k: fraction of the catalogue that appears in at least one user's top-k."""

    def compute(self, ctx: EvalContext) -> MetricResult:
        values = _exposure(ctx)
        return MetricResult(aggregate={f"coverage@{k}": values[f"coverage@{k}"] for k in ctx.ks})


@register("metric", "gini", higher_is_better=False, needs={"topk"})
class Gini(Metric):
    """Gini index of item exposure in the top-k lists over the whole catalogue (0 = equal exposure)."""

    def compute(self, ctx: EvalContext) -> MetricResult:
        values = _exposure(ctx)
        return MetricResult(aggregate={f"gini@{k}": values[f"gini@{k}"] for k in ctx.ks})


@register("metric", "arp", higher_is_better=False, needs={"topk", "train_popularity"})
class AveragePopularity(Metric):
    """ARP@k: mean training popularity (number of training users per item) of a user's top-k items."""

    def compute(self, ctx: EvalContext) -> MetricResult:
        values = _popularity(ctx, "arp")
        return MetricResult(per_user={f"arp@{k}": values[f"arp@{k}"] for k in ctx.ks})


@register("metric", "novelty", higher_is_better=True, needs={"topk", "train_popularity"})
class Novelty(Metric):
    """Novelty@k: mean self-information -log2(pop_i / n_train_users) of a user's top-k items."""

    def compute(self, ctx: EvalContext) -> MetricResult:
        values = _popularity(ctx, "novelty")
        return MetricResult(per_user={f"novelty@{k}": values[f"novelty@{k}"] for k in ctx.ks})
