"""Neighbourhood attribution of the linear item-item models: EASE (Steck 2019) and ItemKNN score

    score(u, i) = sum_{j in H(u)} B[j, i]

with H(u) the user's training items and B the item-item weights (EASE's B, ItemKNN's pruned similarity W), so
the contribution of history item j to item i is B[j, i], and the contributions sum to the score exactly: the
explanation is the model's own decomposition, exact by construction (no approximation)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from recux.explain import Attribution, Explainer
from recux.registry import register


@register("explainer", "neighbourhood", models=("ease", "itemknn"))
class Neighbourhood(Explainer):
    """Contribution B[j, i] of each history item j to the item's score (sums to the score exactly)."""

    def explain(self, model: Any, users: np.ndarray, histories: Sequence[np.ndarray],
                items: np.ndarray) -> list[Attribution]:
        b = model.item_item()
        out = []
        for history, row in zip(histories, items, strict=True):
            cand = np.unique(np.asarray(history, dtype=np.int64))
            cols = np.where(row >= 0, row, 0)
            block = b[cand][:, cols]
            block = block.toarray() if sp.issparse(block) else np.asarray(block)
            out.append(Attribution(cand, np.asarray(block, dtype=np.float64).T * (row >= 0)[:, None]))
        return out
