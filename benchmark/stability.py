"""Perturbation stability: how much a user's top-k list changes when one item is removed from, or added to, the
history the model conditions on (train + validation, what the test ranking conditions on).

For each test user: the history H (their train + valid rows) and an edited H' (``remove``: one of their rows
dropped uniformly at random; ``add``: one item they never interacted with, uniform, at the time of a random
event of theirs), both scored with ``model.score_with_history`` (no refitting) and ranked with the same mask:
the test ranking's mask (training and, by ``eval.exclude_valid``, validation items) plus the added item, so
only the model's scores, not the masking, can change the list. A model whose ``score_with_history`` returns
None (it cannot fold a new history in, e.g. BPR) is not measured.

Two overlaps of the lists S (from H) and T (from H') at depth k, averaged over users:

- Jaccard@k = |S ∩ T| / |S ∪ T|.
- Rank-biased overlap, extrapolated (Webber, Moffat & Zobel 2010, "A similarity measure for indefinite
  rankings", ACM TOIS, eq. 32), for two lists of depth k with persistence p:
  RBO_ext = (X_k / k) p^k + ((1 - p) / p) Σ_{d=1..k} (X_d / d) p^d,   X_d = |S_{1:d} ∩ T_{1:d}|.
  It is 1 for identical lists and weighs agreement near the top more (p = 0.9: the top 10 carry ~86% of the
  weight of an indefinite ranking). Padding (-1, fewer candidates than k) never matches.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from recux.data import Interactions
from recux.errors import ConfigError
from recux.ranking import rank_topk

EDITS = ("remove", "add")


def overlap_counts(s: np.ndarray, t: np.ndarray) -> np.ndarray:
    """(n, k) X_d = |S_{1:d} ∩ T_{1:d}| for d = 1..k, rows of item lists (items distinct within a list; -1
    padding never matches)."""
    eq = (s[:, :, None] == t[:, None, :]) & (s[:, :, None] >= 0)
    both = eq.cumsum(axis=1).cumsum(axis=2)  # both[:, i, j]: matches among S_{1:i+1} x T_{1:j+1}
    d = np.arange(s.shape[1])
    return both[:, d, d]


def jaccard(s: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Per row: |S ∩ T| / |S ∪ T| over the non-padding items (1 when both are empty)."""
    x = overlap_counts(s, t)[:, -1].astype(np.float64)
    union = (s >= 0).sum(axis=1) + (t >= 0).sum(axis=1) - x
    return np.divide(x, union, out=np.ones_like(x), where=union > 0)


def rbo_ext(s: np.ndarray, t: np.ndarray, p: float) -> np.ndarray:
    """Per row: extrapolated rank-biased overlap of two depth-k lists (module docstring, Webber et al. eq. 32)."""
    if not 0.0 < p < 1.0:
        raise ConfigError(f"task.stability.rbo_p={p} must lie in (0, 1); e.g. 0.9")
    k = s.shape[1]
    x = overlap_counts(s, t).astype(np.float64)
    d = np.arange(1, k + 1, dtype=np.float64)
    return x[:, -1] / k * p ** k + (1 - p) / p * (x / d * p ** d).sum(axis=1)


# ----------------------------------------------------------------------------------------------------------
# Edited histories


def edit_history(history: Interactions, users: np.ndarray, edit: str, rng: np.random.Generator
                 ) -> tuple[Interactions, sp.csr_matrix]:
    """``history`` with one row removed, or one new item added, for each of ``users``; and the (n_users x
    n_items) binary matrix of the added items (empty for ``remove``). Users without a row to remove, or
    without a free item to add, are left as they are."""
    if edit not in EDITS:
        raise ConfigError(f"task.stability.edits has {edit!r}; use a list of {', '.join(EDITS)}")
    users = np.asarray(users, dtype=np.int64)
    order = np.argsort(history.user, kind="stable")
    starts = np.searchsorted(history.user[order], np.arange(history.n_users + 1))
    shape = (history.n_users, history.n_items)
    if edit == "remove":
        drop = [order[starts[u] + rng.integers(starts[u + 1] - starts[u])] for u in users
                if starts[u + 1] > starts[u]]
        keep = np.ones(len(history), dtype=bool)
        keep[np.asarray(drop, dtype=np.int64)] = False
        return history.subset(keep), sp.csr_matrix(shape, dtype=np.float32)
    rows, items, times, ratings = [], [], [], []
    for u in users:
        own = order[starts[u]:starts[u + 1]]
        seen = np.unique(history.item[own])
        if len(seen) >= history.n_items:
            continue
        r = int(rng.integers(history.n_items - len(seen)))  # the r-th item not in `seen`
        item = r + int(np.searchsorted(seen - np.arange(len(seen)), r, side="right"))
        at = own[rng.integers(len(own))] if len(own) else None
        rows.append(u)
        items.append(item)
        if history.timestamp is not None:
            times.append(history.timestamp[at] if at is not None else 0)
        if history.rating is not None:
            ratings.append(history.rating[at] if at is not None else 1.0)
    added = Interactions(np.asarray(rows), np.asarray(items), history.n_users, history.n_items,
                         rating=np.asarray(ratings) if history.rating is not None else None,
                         timestamp=np.asarray(times) if history.timestamp is not None else None)
    merged = Interactions(np.concatenate([history.user, added.user]), np.concatenate([history.item, added.item]),
                          history.n_users, history.n_items,
                          rating=None if history.rating is None else np.concatenate([history.rating, added.rating]),
                          timestamp=None if history.timestamp is None
                          else np.concatenate([history.timestamp, added.timestamp]))
    return merged, added.csr()


# ----------------------------------------------------------------------------------------------------------
# Measuring a model


@dataclass(frozen=True)
class StabilitySettings:
    """``task.stability``: which edits, the RBO persistence ``rbo_p``, and whether to measure at all."""

    edits: tuple[str, ...] = EDITS
    rbo_p: float = 0.9
    enabled: bool = True

    @classmethod
    def of(cls, node: dict | None) -> StabilitySettings:
        node = dict(node or {})
        edits = tuple(node.get("edits", EDITS))
        bad = [e for e in edits if e not in EDITS]
        if bad:
            raise ConfigError(f"task.stability.edits has {bad}; use a list of {', '.join(EDITS)}")
        p = float(node.get("rbo_p", 0.9))
        if not 0.0 < p < 1.0:
            raise ConfigError(f"task.stability.rbo_p={p} must lie in (0, 1); e.g. 0.9")
        return cls(edits, p, bool(node.get("enabled", True)))


def measure(model, history: Interactions, users: np.ndarray, mask: sp.csr_matrix, ks: tuple[int, ...],
            settings: StabilitySettings, seed: int, batch_size: int = 1024) -> dict[str, float] | None:
    """``stability/<edit>/jaccard@k`` and ``stability/<edit>/rbo@k`` (means over ``users``), or None when the
    model cannot score an edited history."""
    k = max(ks)
    if model.score_with_history(np.asarray(users[:1]), history) is None:
        return None
    out: dict[str, float] = {}
    for i, edit in enumerate(settings.edits):
        edited, added = edit_history(history, users, edit, np.random.default_rng([int(seed), 7, i]))
        both = (mask + added).tocsr()
        both.data[:] = 1.0
        before, _ = rank_topk(lambda b: model.score_with_history(b, history), users, k, both, batch_size)
        after, _ = rank_topk(lambda b, h=edited: model.score_with_history(b, h), users, k, both, batch_size)
        for kk in ks:
            out[f"stability/{edit}/jaccard@{kk}"] = float(jaccard(before[:, :kk], after[:, :kk]).mean())
            out[f"stability/{edit}/rbo@{kk}"] = float(rbo_ext(before[:, :kk], after[:, :kk], settings.rbo_p).mean())
    return out
