"""Cold-start items: the offline_ranking stages on a split that holds items out of training (split=cold_items),
with metrics reported per group of test items.

Groups (each its own metric names in results.json and columns in per_user_metrics.parquet):

- ``cold/<metric>``: the cold test items, ranked among the cold items only (every warm item removed from the
  candidates): can the model order items it never saw?
- ``cold_in_catalogue/<metric>``: the cold test items in the whole-catalogue ranking (can they compete with the
  warm items a user would otherwise be shown?).
- ``warm/<metric>``: the warm test items in the whole-catalogue ranking.
- ``<metric>`` (plain names, overall): every test item, cold and warm, in the whole-catalogue ranking. For a model
  that cannot score unseen items this is still its ranking as deployed: its cold items get whatever scores the
  model gives them (EASE and pop: zero; an untrained embedding: noise), so overall measures what a user of a
  catalogue with new items would see from it, and is comparable across every model of the section.

A user counts in a group when they have test items of that group. Beyond-accuracy metrics keep their catalogue
meaning in every group (e.g. ``cold/coverage@k`` is at most the cold share; ``cold/arp@k`` is 0, since cold items
have no training popularity). Training and validation items are masked as
in offline_ranking. A model without the ``scores_unseen_items`` capability (ID models: EASE, BPR, SASRec, itemknn,
pop) has no representation of an unseen item: its cold groups are recorded as null (not zero) and the record's
``cold_items`` note says why; its warm and overall metrics are reported.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
from hydra.utils import instantiate

from recux import stages
from recux.errors import ConfigError
from recux.plugins.tasks.offline_ranking import OfflineRanking
from recux.registry import register

SCORES_UNSEEN = "scores_unseen_items"  # model capability: it scores items with no training interaction
NOT_SCORED = "not scored: model has no item representation for unseen items"
GROUPS = ("cold", "cold_in_catalogue", "warm")


def cold_mask(spec: stages.RunSpec, data: stages.PreparedData) -> np.ndarray:
    """The held-out items of the run's split (a boolean mask over item codes); refuses other splits."""
    split = instantiate(spec.resolved["split"])
    if not hasattr(split, "cold_items"):
        raise ConfigError(
            f"task=cold_start needs a split that holds items out of training, but the split is "
            f"'{data.split.protocol}'. Add split=cold_items (or use experiment=cold_start)."
        )
    return split.cold_items(data.dataset.interactions, seed=spec.seed)


def scores_unseen(model_info: Any) -> bool:
    return SCORES_UNSEEN in (model_info.meta.get("capabilities") or ())


@register("task", "cold_start", compresses=True)
class ColdStart(OfflineRanking):
    """Offline ranking on a cold-item split, reported on cold items (among cold items and among the whole
    catalogue), warm items and overall."""

    def _before_fit(self, spec, data) -> np.ndarray:
        return cold_mask(spec, data)  # refuses a split without cold items before any fitting

    def _evaluate_more(self, spec, metrics, ranking, fitted, model_info, data, cold) -> dict[str, Any]:
        return group_reports(spec, metrics, ranking, fitted.model, data, cold, scores_unseen(model_info))

    def _write_per_user(self, report, groups, data, art) -> None:
        write_per_user(report, groups, data, art)

    def _add_to_record(self, record, report, groups, data, cold) -> None:
        add_groups(record, report, groups, cold, data)


def _rows(ranking: stages.Ranking, users: np.ndarray) -> stages.Ranking:
    """The ranking's rows of ``users`` (a subset of ranking.users)."""
    at = np.searchsorted(ranking.users, users)
    return stages.Ranking(users, ranking.topk[at], ranking.scores[at], ranking.seconds)


def _graded(data: stages.PreparedData, users: np.ndarray, items: np.ndarray):
    if data.graded_test is None:
        return None
    return stages.keep_items(data.graded_test[np.searchsorted(data.test_users, users)], items)


def group_reports(spec, metrics, ranking, model, data, cold: np.ndarray, can_score_cold: bool) -> dict[str, Any]:
    """The evaluation report of each group (None for a cold group the model cannot score or that is empty)."""
    out: dict[str, Any] = {}
    for name, items in (("warm", ~cold), ("cold_in_catalogue", cold), ("cold", cold)):
        truth = stages.keep_items(data.test_csr, items)
        users = np.intersect1d(np.flatnonzero(np.diff(truth.indptr) > 0), data.test_users)
        if (name != "warm" and not can_score_cold) or not len(users):
            out[name] = None
            continue
        part = (stages.rank_among(spec, model, data, users, cold) if name == "cold"
                else _rows(ranking, users))
        out[name] = stages.evaluate(spec, metrics, part, data, truth=truth, graded=_graded(data, users, items))
    return out


def add_groups(record, report, groups: dict[str, Any], cold: np.ndarray, data: stages.PreparedData) -> None:
    """Each group's means, standard errors and directions under ``<group>/`` names; null means (and a note) for
    groups the model could not score."""
    overall = list(report.means)
    for name in GROUPS:
        rep = groups[name]
        if rep is None:
            record.metrics.update({f"{name}/{k}": None for k in overall})
            continue
        record.metrics.update({f"{name}/{k}": v for k, v in rep.means.items()})
        record.metrics_stderr.update({f"{name}/{k}": v for k, v in (rep.stderr or {}).items()})
        record.directions.update({f"{name}/{k}": v for k, v in rep.directions.items()})
        record.users[f"evaluated_{name}"] = rep.n_evaluated
    if groups["cold"] is None:
        record.extra["cold_items"] = NOT_SCORED
    record.extra["cold_start"] = {"n_cold_items": int(cold.sum()), "n_items": int(len(cold)),
                                  "n_cold_test": int(stages.keep_items(data.test_csr, cold).nnz),
                                  "n_warm_test": int(stages.keep_items(data.test_csr, ~cold).nnz)}


def write_per_user(report, groups: dict[str, Any], data: stages.PreparedData, art) -> None:
    """One per-user table: the overall columns, then each scored group's columns under ``<group>/`` names (null
    for a user without test items in that group)."""
    table = report.per_user
    for name in GROUPS:
        rep = groups[name]
        if rep is None:
            continue
        cols = rep.per_user.rename({c: f"{name}/{c}" for c in rep.per_user.columns if c != "user"})
        table = table.join(cols, on="user", how="left")
    stages.write_per_user(SimpleNamespace(per_user=table), data.dataset, art)
