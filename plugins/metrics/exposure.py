"""Popularity bias against the user's history, long-tail share and coverage, exposure entropy,
personalisation, and item-side fairness (exposure of head / mid / tail items against their share of the
catalogue, of training interactions and of relevant items). Kernels and formulas: recux.kernels.exposure.

Popularity is the number of training users per item (``EvalContext.train_item_counts``). The head / mid /
tail partition (``popularity_groups``) is computed once per context and setting (cached in ``ctx.extra``):
- aplt and ltc use a two-way split with ``tail_share`` = 0.8 by default: the long tail is the least popular
  items that together make the bottom 80% of training interactions, i.e. everything outside the short head of
  the most popular items that make the top 20% (issue 10's suggestion, a short head / long tail split as in
  Abdollahpouri et al. 2017); ``tail_share`` = 0.2 gives the 3-group tail below instead;
- exposure_share_* and exposure_relevance_* use three groups, ``head_share`` = ``tail_share`` = 0.2 by
  default (Abdollahpouri et al. 2019): head = the most popular items making 20% of the interactions, tail =
  the least popular making 20%, mid = the rest.
"""

from __future__ import annotations

import math

import numpy as np

from recux.errors import ConfigError
from recux.metric import EvalContext, Metric, MetricResult
from recux.registry import register

_POP = {"topk", "train_popularity"}


def _item_pop(ctx: EvalContext, metric: str) -> np.ndarray:
    if ctx.train_item_counts is None:
        raise ConfigError(
            f"metric '{metric}' needs training popularity: pass train=<users x items CSR of training "
            "interactions> to evaluate_topk (recux-evaluate: --train FILE), or drop the metric."
        )
    return ctx.train_item_counts


def _groups(ctx: EvalContext, metric: str, head_share: float, tail_share: float) -> np.ndarray:
    """The (n_items,) group code of every item, computed once per context and (head_share, tail_share)."""
    cache = ctx.extra.setdefault("popularity_groups", {})
    key = (float(head_share), float(tail_share))
    if key not in cache:
        from recux.kernels.exposure import popularity_groups

        cache[key] = popularity_groups(_item_pop(ctx, metric), head_share, tail_share)
    return cache[key]


def _exposure_counts(ctx: EvalContext) -> dict[int, np.ndarray]:
    """``{k: (n_items,) number of top-k lists holding each item}``, computed once per context."""
    ks = tuple(int(k) for k in ctx.ks)
    cached = ctx.extra.get("exposure_counts")
    if cached is None or cached[0] != ks:
        from recux.kernels.beyond import exposure_counts

        cached = (ks, exposure_counts(ctx.topk, ks, ctx.n_items))
        ctx.extra["exposure_counts"] = cached
    return cached[1]


def _share(metric: str, name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise ConfigError(f"metric '{metric}': {name}={value!r} must be a number in [0, 1] "
                          f"(a share of training interactions), e.g. {{name: {metric}, {name}: 0.2}}")
    return float(value)


@register("metric", "pop_lift", higher_is_better=False, needs=_POP | {"history"})
class PopularityLift(Metric):
    """pop_lift@k: (mean popularity of the list - mean popularity of the user's training history) / the
    latter, per user (Abdollahpouri et al. 2019's GAP lift per user). 0 = as popular as the history; NaN for
    an empty history or a list without a real item (left out of the mean)."""

    def compute(self, ctx: EvalContext) -> MetricResult:
        if ctx.history_indptr is None or ctx.history_indices is None:
            raise ConfigError("metric 'pop_lift' needs the users' training history: pass history=<CSR whose row r "
                              "holds the training items of topk row r's user> to evaluate_topk, or drop it.")
        from recux.kernels.exposure import pop_lift

        return MetricResult(per_user=pop_lift(ctx.topk, ctx.ks, _item_pop(ctx, "pop_lift"), ctx.history_indptr,
                                              ctx.history_indices))


class _LongTail(Metric):
    name = ""

    def __init__(self, tail_share: float = 0.8) -> None:
        self.tail_share = _share(self.name, "tail_share", tail_share)

    def _is_tail(self, ctx: EvalContext) -> np.ndarray:
        from recux.kernels.exposure import TAIL

        return _groups(ctx, self.name, 0.0, self.tail_share) == TAIL


@register("metric", "aplt", higher_is_better=True, needs=_POP)
class AveragePercentageLongTail(_LongTail):
    """APLT@k: share of a user's real top-k items in the long tail (Abdollahpouri et al. 2017); the long tail
    is the least popular items making ``tail_share`` (default 0.8) of training interactions."""

    name = "aplt"

    def compute(self, ctx: EvalContext) -> MetricResult:
        from recux.kernels.exposure import member_share

        shares = member_share(ctx.topk, ctx.ks, self._is_tail(ctx))
        return MetricResult(per_user={f"aplt@{k}": v for k, v in shares.items()})


@register("metric", "ltc", higher_is_better=True, needs=_POP)
class LongTailCoverage(_LongTail):
    """LTC@k: share of the long-tail items that appear in at least one top-k list (Abdollahpouri et al.
    2019, "Managing popularity bias in recommender systems with personalized re-ranking"); NaN when the long
    tail is empty."""

    name = "ltc"

    def compute(self, ctx: EvalContext) -> MetricResult:
        tail = self._is_tail(ctx)
        n_tail = int(tail.sum())
        out = {f"ltc@{k}": (np.count_nonzero(c[tail]) / n_tail if n_tail else math.nan)
               for k, c in _exposure_counts(ctx).items()}
        return MetricResult(aggregate=out)


@register("metric", "exposure_entropy", higher_is_better=True, needs={"topk"})
class ExposureEntropy(Metric):
    """exposure_entropy@k: Shannon entropy in bits of the distribution of top-k slots over the catalogue
    (-sum_i p_i log2 p_i, p_i = item i's share of all filled slots); exposure_entropy_norm@k divides it by
    log2(n_items), so 1 = every catalogue item equally exposed."""

    def compute(self, ctx: EvalContext) -> MetricResult:
        from recux.kernels.exposure import exposure_entropy

        out: dict[str, float] = {}
        for k, counts in _exposure_counts(ctx).items():
            out[f"exposure_entropy@{k}"], out[f"exposure_entropy_norm@{k}"] = exposure_entropy(counts)
        return MetricResult(aggregate=out)


@register("metric", "personalisation", higher_is_better=True, needs={"topk"})
class Personalisation(Metric):
    """personalisation@k: 1 - mean cosine similarity |L_u ∩ L_v| / sqrt(|L_u||L_v|) over all pairs of users'
    top-k lists (= 1 - mean overlap / k for full lists), exact by item-count algebra in O(n K)."""

    def compute(self, ctx: EvalContext) -> MetricResult:
        from recux.kernels.exposure import personalisation

        return MetricResult(aggregate=personalisation(ctx.topk, ctx.ks, ctx.n_items, _exposure_counts(ctx)))


class _GroupExposure(Metric):
    """Base of the item-side fairness metrics of one popularity group (``group``: head, mid or tail)."""

    prefix = ""
    group = ""

    def __init__(self, head_share: float = 0.2, tail_share: float = 0.2) -> None:
        name = f"{self.prefix}_{self.group}"
        self.head_share = _share(name, "head_share", head_share)
        self.tail_share = _share(name, "tail_share", tail_share)
        if self.head_share + self.tail_share > 1.0:
            raise ConfigError(f"metric '{name}': head_share={head_share} + tail_share={tail_share} exceeds 1; "
                              "head and tail would overlap. Lower one of them (defaults 0.2 and 0.2).")

    def _code_groups(self, ctx: EvalContext) -> tuple[int, np.ndarray]:
        from recux.kernels.exposure import GROUPS

        groups = _groups(ctx, f"{self.prefix}_{self.group}", self.head_share, self.tail_share)
        return GROUPS.index(self.group), groups

    def _exposure_shares(self, ctx: EvalContext) -> dict[int, float]:
        from recux.kernels.exposure import group_shares

        code, groups = self._code_groups(ctx)
        return {k: float(group_shares(c, groups)[code]) for k, c in _exposure_counts(ctx).items()}


class _ExposureShare(_GroupExposure):
    """exposure_share_<group>@k: the group's share of all filled top-k slots (Abdollahpouri et al. 2019's
    head / mid / tail groups). Beside it, per k for a uniform table (they do not depend on k):
    catalogue_share_<group>@k = the group's share of the catalogue, interaction_share_<group>@k = its share of
    the training interactions; exposure_share above catalogue_share or interaction_share = over-exposed."""

    prefix = "exposure_share"

    def compute(self, ctx: EvalContext) -> MetricResult:
        from recux.kernels.exposure import group_shares

        code, groups = self._code_groups(ctx)
        catalogue = float(group_shares(np.ones(len(groups)), groups)[code])
        interactions = float(group_shares(_item_pop(ctx, self.prefix), groups)[code])
        out: dict[str, float] = {}
        for k, share in self._exposure_shares(ctx).items():
            out[f"exposure_share_{self.group}@{k}"] = share
            out[f"catalogue_share_{self.group}@{k}"] = catalogue
            out[f"interaction_share_{self.group}@{k}"] = interactions
        return MetricResult(aggregate=out)


class _ExposureRelevance(_GroupExposure):
    """exposure_relevance_<group>@k = exposure_share_<group>@k / relevance share of the group, the relevance
    share being the group's share of the evaluated users' relevant (held-out ground-truth) items, counted
    once per user. 1 = exposure proportional to relevance (parity; the equal-opportunity idea of Singh &
    Joachims 2018, "Fairness of exposure in rankings"), above 1 = over-exposed; NaN when the group holds no
    relevant item or nothing is exposed."""

    prefix = "exposure_relevance"

    def compute(self, ctx: EvalContext) -> MetricResult:
        from recux.kernels.exposure import group_shares

        code, groups = self._code_groups(ctx)
        relevant = ctx.extra.get("relevant_counts")
        if relevant is None:  # how many evaluated users hold each item in their ground truth
            relevant = ctx.extra["relevant_counts"] = np.bincount(ctx.gt_indices, minlength=ctx.n_items)
        rel_share = float(group_shares(relevant, groups)[code])
        out = {f"exposure_relevance_{self.group}@{k}": (share / rel_share if rel_share > 0 else math.nan)
               for k, share in self._exposure_shares(ctx).items()}
        return MetricResult(aggregate=out)


# Directions assume popularity bias: less head exposure and more mid / tail exposure is the improvement.
@register("metric", "exposure_share_head", higher_is_better=False, needs=_POP)
class ExposureShareHead(_ExposureShare):
    """exposure_share_head@k: share of top-k slots given to head items (with catalogue/interaction shares)."""

    group = "head"


@register("metric", "exposure_share_mid", higher_is_better=True, needs=_POP)
class ExposureShareMid(_ExposureShare):
    """exposure_share_mid@k: share of top-k slots given to mid items (with catalogue/interaction shares)."""

    group = "mid"


@register("metric", "exposure_share_tail", higher_is_better=True, needs=_POP)
class ExposureShareTail(_ExposureShare):
    """exposure_share_tail@k: share of top-k slots given to tail items (with catalogue/interaction shares)."""

    group = "tail"


@register("metric", "exposure_relevance_head", higher_is_better=False, needs=_POP | {"ground_truth"})
class ExposureRelevanceHead(_ExposureRelevance):
    """exposure_relevance_head@k: head items' exposure share / their share of relevant items (1 = parity)."""

    group = "head"


@register("metric", "exposure_relevance_mid", higher_is_better=True, needs=_POP | {"ground_truth"})
class ExposureRelevanceMid(_ExposureRelevance):
    """exposure_relevance_mid@k: mid items' exposure share / their share of relevant items (1 = parity)."""

    group = "mid"


@register("metric", "exposure_relevance_tail", higher_is_better=True, needs=_POP | {"ground_truth"})
class ExposureRelevanceTail(_ExposureRelevance):
    """exposure_relevance_tail@k: tail items' exposure share / their share of relevant items (1 = parity)."""

    group = "tail"
