"""Top-k accuracy metrics. All of them share one kernel pass per evaluation (memoised in ``ctx.extra``)."""

from __future__ import annotations

import numpy as np

from recux.errors import ConfigError
from recux.metric import EvalContext, Metric, MetricResult
from recux.registry import register

_CACHE_KEY = "accuracy_metrics"


def accuracy_values(ctx: EvalContext) -> dict[str, np.ndarray]:
    """Every accuracy value at ``ctx.ks`` for this context, computed once and reused by each plugin."""
    cached = ctx.extra.get(_CACHE_KEY)
    ks = tuple(int(k) for k in ctx.ks)
    if cached is None or cached[0] != ks:
        from recux.kernels.accuracy import accuracy_metrics

        cached = (ks, accuracy_metrics(ctx.topk, ctx.gt_indptr, ctx.gt_indices, ks))
        ctx.extra[_CACHE_KEY] = cached
    return cached[1]


class _Accuracy(Metric):
    key = ""

    def compute(self, ctx: EvalContext) -> MetricResult:
        values = accuracy_values(ctx)
        return MetricResult(per_user={f"{self.key}@{k}": values[f"{self.key}@{k}"] for k in ctx.ks})


@register("metric", "precision", higher_is_better=True, needs={"topk", "ground_truth"})
class Precision(_Accuracy):
    """Precision@k: relevant items among the first k, divided by k."""

    key = "precision"


@register("metric", "recall", higher_is_better=True, needs={"topk", "ground_truth"})
class Recall(_Accuracy):
    """Recall@k: relevant items among the first k, divided by the number of relevant items."""

    key = "recall"


@register("metric", "ndcg", higher_is_better=True, needs={"topk", "ground_truth"})
class NDCG(_Accuracy):
    """NDCG@k with binary gains and a log2(rank+1) discount; ideal list of min(|R|, k) hits."""

    key = "ndcg"


@register("metric", "mrr", higher_is_better=True, needs={"topk", "ground_truth"})
class MRR(_Accuracy):
    """MRR@k: reciprocal rank of the first relevant item within k (0 if none)."""

    key = "mrr"


@register("metric", "map", higher_is_better=True, needs={"topk", "ground_truth"})
class MAP(_Accuracy):
    """MAP@k (trec_eval/ranx): sum of precision at each relevant rank within k, divided by |R|."""

    key = "map"


@register("metric", "map_recbole", higher_is_better=True, needs={"topk", "ground_truth"})
class MAPRecBole(_Accuracy):
    """MAP@k as RecBole normalises it: the same sum divided by min(|R|, k)."""

    key = "map_recbole"


@register("metric", "hit", higher_is_better=True, needs={"topk", "ground_truth"})
class HitRate(_Accuracy):
    """HitRate@k: 1 if any relevant item is among the first k, else 0."""

    key = "hit"


class _GradedNDCG(Metric):
    key = ""
    gain = ""

    def compute(self, ctx: EvalContext) -> MetricResult:
        from recux.kernels.accuracy import graded_ndcg

        if ctx.gt_relevance is None:
            raise ConfigError(
                f"metric '{self.key}' needs graded ground truth: pass graded_truth=<CSR of grades, e.g. ratings> "
                "to evaluate_topk (recux-evaluate: --relevance-col COLUMN), or drop the metric."
            )
        vals = graded_ndcg(ctx.topk, ctx.gt_indptr, ctx.gt_indices, ctx.gt_relevance, ctx.ks, gain=self.gain)
        return MetricResult(per_user={f"{self.key}@{k}": vals[int(k)] for k in ctx.ks})


@register("metric", "ndcg_graded", higher_is_better=True, needs={"topk", "graded_truth"})
class GradedNDCG(_GradedNDCG):
    """NDCG@k with graded gains, gain = grade (Järvelin & Kekäläinen 2002; ranx ``ndcg``)."""

    key = "ndcg_graded"
    gain = "jarvelin"


@register("metric", "ndcg_burges", higher_is_better=True, needs={"topk", "graded_truth"})
class BurgesNDCG(_GradedNDCG):
    """NDCG@k with exponential gains, gain = 2^grade - 1 (Burges et al. 2005; ranx ``ndcg_burges``)."""

    key = "ndcg_burges"
    gain = "burges"
