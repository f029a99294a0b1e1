"""The deletion test of explanations (faithfulness): an explanation is faithful when deleting the history items it
ranks highest hurts the explained item more than deleting as many random history items.

For user u, recommended item i, the explainer's top-m history items D and R random m-subsets D_1..D_R of the
same candidate set (the history items the explainer weighs), with s(u, i | H) the model's score of i when u's
history is H (``Recommender.score_histories``, the fitted parameters unchanged) and rank(u, i | H) its position
among u's candidates (items not masked at test time; ties: lower item code first, the ranking's rule):

    score drop       = s(u, i | H) - s(u, i | H \\ D)             (random: mean over r of the same with D_r)
    rank drop        = rank(u, i | H \\ D) - rank(u, i | H)       (places the item falls)

Deleting an item deletes every occurrence of it; the candidate set of the ranking is kept (the deleted items stay
masked), so ranks before and after compare the same items. Each user's value is the mean over their explained
items with more than m candidates (users with none are excluded and counted). Explainer and random values are
paired per user: ``significance.paired_compare`` gives the mean difference, its bootstrap CI and the paired t,
Wilcoxon and permutation p-values (the deletion / "comprehensiveness" test of DeYoung et al. 2020, ERASER,
ACL, and of Samek et al. 2017, "Evaluating the visualization of what a deep neural network has learned", IEEE
TNNLS, adapted to history items as in recommender-explanation evaluations).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from recux.explain import Attribution
from recux.significance import paired_compare

MEASURES = ("score_drop", "rank_drop")


@dataclass
class Deletion:
    """Per-user means (aligned with ``users``; NaN for a user without a testable item) of the drops."""

    users: np.ndarray
    score_drop: np.ndarray
    score_drop_random: np.ndarray
    rank_drop: np.ndarray
    rank_drop_random: np.ndarray
    base_scores: np.ndarray  # (n_users, n) s(u, i | H) of every explained item (NaN for -1 items)

    @property
    def tested(self) -> np.ndarray:
        return ~np.isnan(self.score_drop)


def ranks(scores: np.ndarray, items: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """Per row r, 1 + the number of allowed items ranked above ``items[r]`` (higher score, or equal score and
    lower item code)."""
    s_i = scores[np.arange(len(items)), items][:, None]
    codes = np.arange(scores.shape[1])[None, :]
    above = (scores > s_i) | ((scores == s_i) & (codes < items[:, None]))
    return 1 + np.count_nonzero(above & allowed[None, :], axis=1)


def deletion_sets(att: Attribution, row: int, m: int, draws: int, rng: np.random.Generator) -> list[np.ndarray]:
    """The explainer's top-m set, then ``draws`` random m-subsets of the candidates."""
    return [att.top(row, m)] + [rng.choice(att.candidates, size=m, replace=False) for _ in range(draws)]


def _user_block(model: Any, history: np.ndarray, att: Attribution, items: np.ndarray, allowed: np.ndarray,
                m: int, draws: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(drops (4,), base scores (n,)) for one user: mean score/rank drop, explainer then random."""
    rows = [r for r in range(len(items)) if items[r] >= 0 and len(att.candidates) > m]
    edited = [history]
    for r in rows:
        edited += [history[~np.isin(history, d)] for d in deletion_sets(att, r, m, draws, rng)]
    scores = np.asarray(model.score_histories(edited), dtype=np.float64)
    base = np.full(len(items), np.nan)
    valid = items >= 0
    base[valid] = scores[0, items[valid]]
    if not rows:
        return np.full(4, np.nan), base
    targets = np.repeat(items[rows], 1 + draws)
    after = scores[1:][np.arange(len(targets)), targets].reshape(len(rows), 1 + draws)
    rank0 = ranks(np.repeat(scores[:1], len(rows), axis=0), items[rows], allowed)
    rank1 = ranks(scores[1:], targets, allowed).reshape(len(rows), 1 + draws)
    sdrop = base[rows][:, None] - after
    rdrop = rank1 - rank0[:, None]
    return np.array([sdrop[:, 0].mean(), sdrop[:, 1:].mean(), rdrop[:, 0].mean(), rdrop[:, 1:].mean()]), base


def deletion_test(model: Any, users: np.ndarray, histories: Sequence[np.ndarray], items: np.ndarray,
                  attributions: Sequence[Attribution], known: sp.csr_matrix, m: int, draws: int,
                  seed: int) -> Deletion:
    """Run the deletion test for every user (``known``: users x items, the items masked at test time)."""
    rng = np.random.default_rng([int(seed), 13])  # one stream over the users in order
    out = np.full((len(users), 4), np.nan)
    base = np.full(items.shape, np.nan)
    for k, u in enumerate(np.asarray(users)):
        allowed = np.ones(known.shape[1], dtype=bool)
        allowed[known.indices[known.indptr[u]:known.indptr[u + 1]]] = False
        out[k], base[k] = _user_block(model, np.asarray(histories[k]), attributions[k], items[k], allowed, m,
                                      draws, rng)
    return Deletion(np.asarray(users), out[:, 0], out[:, 1], out[:, 2], out[:, 3], base)


def summarize(d: Deletion, seed: int = 0) -> dict[str, Any]:
    """Means of each drop over tested users and the paired comparison explainer vs random per measure."""
    keep = d.tested
    out: dict[str, Any] = {"users_tested": int(keep.sum()), "users_excluded": int((~keep).sum())}
    for measure in MEASURES:
        a, b = getattr(d, measure)[keep], getattr(d, f"{measure}_random")[keep]
        t = paired_compare(a, b, seed=seed)
        out[measure] = {"explainer": float(a.mean()) if a.size else float("nan"),
                        "random": float(b.mean()) if b.size else float("nan"),
                        "difference": t.mean_diff, "ci_low": t.ci_low, "ci_high": t.ci_high, "n": t.n,
                        "p_ttest": t.p_ttest, "p_wilcoxon": t.p_wilcoxon, "p_permutation": t.p_permutation}
    return out
