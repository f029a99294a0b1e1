"""Validating rating predictors (and satisfaction judges) against held-out ratings.

- ``random_rating_split``: a seeded random split of the rating events (not per user): each rating goes to the
  test part with probability-free exact share ``test_fraction`` (a random permutation, the first
  round(n * test_fraction) rows held out).
- ``spearman``: Spearman's rank correlation of predictions and held-out ratings pooled over all held-out
  ratings, with average ranks for ties (Spearman 1904; the Pearson correlation of the mid-ranks, as
  ``scipy.stats.spearmanr``).
- ``paired_bootstrap_spearman``: percentile bootstrap CI of spearman(a) - spearman(b) on the same held-out
  ratings, resampling USERS with replacement (a cluster bootstrap; Davison & Hinkley 1997, section 3.8): one
  user's ratings share that user's scale and taste, so they are not independent draws, and resampling single
  ratings would understate the variance. A resampled user brings all of its held-out ratings.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from recux.data import Interactions
from recux.errors import ConfigError


def random_rating_split(inter: Interactions, test_fraction: float = 0.2, seed: int = 0
                        ) -> tuple[Interactions, Interactions]:
    """(train, test) rating events: a seeded random permutation, the first round(n * test_fraction) to test."""
    if inter.rating is None:
        raise ConfigError("the judge validation needs explicit ratings: this dataset's interactions have none "
                          "(use ml-100k, or a files dataset with a rating column)")
    if not 0.0 < float(test_fraction) < 1.0:
        raise ConfigError(f"test_fraction must be in (0, 1), got {test_fraction}")
    perm = np.random.default_rng(seed).permutation(len(inter))
    n_test = int(round(len(inter) * float(test_fraction)))
    return inter.subset(np.sort(perm[n_test:])), inter.subset(np.sort(perm[:n_test]))


def midranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks of ``x`` with ties given the mean of their ranks."""
    x = np.asarray(x, np.float64)
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    starts = np.flatnonzero(np.concatenate([[True], xs[1:] != xs[:-1]]))
    ends = np.concatenate([starts[1:], [len(x)]])
    avg = (starts + ends + 1) / 2.0  # mean of the 1-based ranks starts+1 .. ends
    ranks = np.empty(len(x))
    ranks[order] = np.repeat(avg, ends - starts)
    return ranks


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    a = a - a.mean()
    b = b - b.mean()
    den = math.sqrt(float(a @ a) * float(b @ b))
    return float(a @ b) / den if den > 0 else math.nan


def spearman(pred: np.ndarray, truth: np.ndarray) -> float:
    """Spearman's rho of ``pred`` and ``truth`` (NaN when either is constant)."""
    pred, truth = np.asarray(pred), np.asarray(truth)
    if pred.shape != truth.shape or pred.ndim != 1:
        raise ValueError(f"spearman: 1-D arrays of equal length needed, got {pred.shape} and {truth.shape}")
    return pearson(midranks(pred), midranks(truth))


def rmse(pred: np.ndarray, truth: np.ndarray) -> float:
    d = np.asarray(pred, np.float64) - np.asarray(truth, np.float64)
    return float(np.sqrt(np.mean(d * d)))


@dataclass(frozen=True)
class SpearmanDiff:
    """spearman(a) - spearman(b) on the full held-out set, its percentile bootstrap CI over users, and the
    share of resamples where the difference is <= 0 (a one-sided bootstrap p-value for "a beats b")."""

    diff: float
    ci_low: float
    ci_high: float
    p_not_better: float
    n_users: int
    n_resamples: int


def paired_bootstrap_spearman(a: np.ndarray, b: np.ndarray, truth: np.ndarray, users: np.ndarray,
                              n_resamples: int = 1000, level: float = 0.95, seed: int = 0) -> SpearmanDiff:
    """Paired cluster bootstrap of the Spearman difference of predictions ``a`` and ``b`` of ``truth``, each
    resample drawing len(unique users) users with replacement (all their held-out ratings)."""
    a, b, truth, users = (np.asarray(v) for v in (a, b, truth, users))
    if not (a.shape == b.shape == truth.shape == users.shape) or a.ndim != 1:
        raise ValueError("paired_bootstrap_spearman: a, b, truth and users must be 1-D and aligned")
    if int(n_resamples) < 1 or not 0 < level < 1:
        raise ConfigError(f"n_resamples must be >= 1 and level in (0, 1), got {n_resamples}, {level}")
    uniq, inv = np.unique(users, return_inverse=True)
    order = np.argsort(inv, kind="stable")
    indptr = np.concatenate([[0], np.cumsum(np.bincount(inv, minlength=len(uniq)))])
    rng = np.random.default_rng(seed)
    diffs = np.empty(int(n_resamples))
    for r in range(int(n_resamples)):
        pick = rng.integers(0, len(uniq), len(uniq))
        idx = order[_expand(indptr, pick)]
        diffs[r] = spearman(a[idx], truth[idx]) - spearman(b[idx], truth[idx])
    alpha = (1 - level) / 2
    lo, hi = np.quantile(diffs, [alpha, 1 - alpha])
    return SpearmanDiff(diff=spearman(a, truth) - spearman(b, truth), ci_low=float(lo), ci_high=float(hi),
                        p_not_better=float(np.mean(diffs <= 0)), n_users=len(uniq), n_resamples=int(n_resamples))


def _expand(indptr: np.ndarray, pick: np.ndarray) -> np.ndarray:
    """Concatenated ranges indptr[p]:indptr[p+1] for p in pick (positions into the user-sorted order)."""
    starts, lens = indptr[pick], indptr[pick + 1] - indptr[pick]
    offsets = np.repeat(starts - np.concatenate([[0], np.cumsum(lens)[:-1]]), lens)
    return np.arange(int(lens.sum())) + offsets
