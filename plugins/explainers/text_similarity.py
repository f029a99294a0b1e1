"""Text similarity for the content model (recux.plugins.models.content): with unit item vectors e (the frozen
language-model embeddings of the item texts, or genre flags for content_genres) and the user's profile weights
w_j (1 per interaction for ``profile: mean``, the recency decay otherwise),

    score(u, i) = cos(p_u, e_i) = sum_{j in H(u)} w_j cos(e_j, e_i) / ||p_u||,     p_u = sum_j w_j e_j,

so history item j contributes w_j cos(e_j, e_i) / ||p_u||: the cosine of its text embedding with the item's,
weighted as the profile weighs it. With the mean profile the weights rank items exactly as the plain cosines do
(w_j = 1 and ||p_u|| are the same for every j of a user), and they sum to the score exactly."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from recux.explain import Attribution, Explainer
from recux.registry import register


@register("explainer", "text_similarity", models=("content", "content_genres"))
class TextSimilarity(Explainer):
    """Cosine of the item's text embedding with each history item's, times its profile weight / ||p_u||."""

    def explain(self, model: Any, users: np.ndarray, histories: Sequence[np.ndarray],
                items: np.ndarray) -> list[Attribution]:
        e = np.asarray(model.item_vectors, dtype=np.float64)
        weights = model.history_weights(histories)
        out = []
        for r, row in enumerate(items):
            w = weights.getrow(r)
            cand, wj = w.indices.astype(np.int64), w.data.astype(np.float64)
            order = np.argsort(cand)
            cand, wj = cand[order], wj[order]
            norm = np.linalg.norm(wj @ e[cand]) if len(cand) else 0.0
            cols = np.where(row >= 0, row, 0)
            cos = e[cols] @ e[cand].T  # (n, h): unit vectors
            scale = wj[None, :] / norm if norm > 0 else np.zeros((1, len(cand)))
            out.append(Attribution(cand, cos * scale * (row >= 0)[:, None]))
        return out
