"""Training-data fraction for learning curves (``data.train_fraction``, ``data.train_keep``).

After the split, each user's *training* interactions are subsampled; validation and test are untouched, and so is
the "already seen" mask of validation and test ranking (``PreparedData.train_csr`` stays the user's full training
history, as at fraction 1.0), so every fraction ranks the same candidates against the same test items and only
what the model learns from (and conditions on) shrinks.

Rule, per user with n training interactions: keep ``max(1, floor(n * fraction + 1/2))`` of them (round half up;
every user keeps at least one, so no test user loses their whole history and sequential models still get an
input). Which ones:

- ``random`` (default): the rows with the smallest seeded key ``splitmix64(tie_key(user, item, seed) ^ SALT)``
  (recux.hashing; repeated pairs by row position). The key does not depend on the fraction and the kept count is
  non-decreasing in it, so the samples are nested: for one seed the 5% sample is inside the 10% one, and so on.
- ``recent``: the user's latest rows (time order with the split's seeded tie-break, recux.splitting), i.e. shorter
  histories ending where the test begins; also nested. Needs timestamps.

Items left with no training interaction stay in the catalogue (an ID model cannot score them; a text model can).
Fraction 1.0 returns the split unchanged (bit-identical results) and is left out of the data hash, so earlier
runs keep their hash; any other fraction is part of the data hash (recux.identity): each fraction is its own
leaderboard section, where models at that fraction are paired per user.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import numpy as np

from recux.data import Interactions, Split
from recux.errors import ConfigError
from recux.hashing import splitmix64

KEEP_RULES = ("random", "recent")
SALT = np.uint64(0x5EED_C0DE_1EA2_C0DE)  # makes the sample's key independent of the split's tie-break key
_EPS = 1e-9


def settings(config: Mapping[str, Any]) -> tuple[float, str]:
    """(fraction, keep rule) from a resolved config's ``data`` node, checked (1.0, "random" when absent)."""
    node = dict(config.get("data") or {})
    raw, keep = node.get("train_fraction", 1.0), str(node.get("train_keep", "random"))
    try:
        fraction = float(raw)
    except (TypeError, ValueError):
        fraction = float("nan")
    if not 0.0 < fraction <= 1.0:
        raise ConfigError(f"data.train_fraction={raw!r} must be a number in (0, 1], the share of each user's "
                          "training interactions kept, e.g. data.train_fraction=0.25 (1.0 keeps all)")
    if keep not in KEEP_RULES:
        raise ConfigError(f"data.train_keep={keep!r} must be one of {', '.join(KEEP_RULES)} (which training "
                          "interactions a user keeps), e.g. data.train_keep=random")
    return fraction, keep


def identity_settings(config: Mapping[str, Any]) -> dict[str, Any]:
    """What the data hash adds: nothing at fraction 1.0 (hashes as before), else the fraction and the rule, as
    written (unchecked: a failed run's record with a refused value still gets a hash)."""
    node = dict(config.get("data") or {})
    fraction = node.get("train_fraction", 1.0)
    if isinstance(fraction, (int, float)) and not isinstance(fraction, bool) and float(fraction) == 1.0:
        return {}
    return {"train_fraction": fraction, "train_keep": node.get("train_keep", "random")}


def keep_sizes(n: np.ndarray, fraction: float) -> np.ndarray:
    """Rows kept per user of ``n`` training rows: max(1, floor(n * fraction + 1/2)), 0 for a user with none."""
    n = np.asarray(n, dtype=np.int64)
    kept = np.maximum(np.floor(n * fraction + 0.5 + _EPS).astype(np.int64), 1)
    return np.minimum(kept, n)


def _priority(train: Interactions, keep: str, seed: int) -> np.ndarray:
    """Row indices grouped by user, each user's rows in the order they are kept (first kept first)."""
    if keep == "random":
        from recux.splitting import tie_key

        key = splitmix64(tie_key(train.user, train.item, seed) ^ SALT)
        return np.lexsort((key, train.user))  # stable: repeated pairs by row position
    from recux.splitting import _time_order

    by_time = _time_order(train, "data.train_keep=recent", seed)  # by user, then time (the split's tie-break)
    rank = np.empty(len(train), dtype=np.int64)
    rank[by_time] = np.arange(len(train))
    return np.lexsort((-rank, train.user))  # each user's latest row first


def kept_rows(train: Interactions, fraction: float, keep: str, seed: int) -> np.ndarray:
    """Sorted row indices of ``train`` that the fraction keeps (see the module docstring)."""
    order = _priority(train, keep, seed)
    counts = np.bincount(train.user, minlength=train.n_users)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    user_sorted = train.user[order]
    position = np.arange(len(order)) - starts[user_sorted]  # 0 for the row a user keeps first
    return np.sort(order[position < keep_sizes(counts, fraction)[user_sorted]])


def subsample_split(split: Split, fraction: float, keep: str, seed: int) -> Split:
    """The split with its training part subsampled (rows keep their order); the split itself at 1.0."""
    if fraction == 1.0:
        return split
    train = split.train.subset(kept_rows(split.train, fraction, keep, seed))
    info = {"train_fraction": fraction, "train_keep": keep, "n_train_full": len(split.train),
            "n_train": len(train)}
    return replace(split, train=train, settings={**split.settings, **info})


def refuse(spec: Any, task: str) -> None:
    """For a task that builds its own training data (not through stages.prepare_data): refuse a fraction below
    1.0 instead of ignoring it."""
    fraction, _ = settings(spec.resolved)
    if fraction != 1.0:
        raise ConfigError(f"data.train_fraction={fraction:g} is not supported by task={task} (it builds its own "
                          "training periods); remove it (data.train_fraction=1.0) or use task=offline_ranking or "
                          "task=cold_start")


def apply(spec: Any, split: Split) -> Split:
    """The stage hook: ``data.train_fraction``/``data.train_keep`` of a run spec, seeded by the run's seed."""
    fraction, keep = settings(spec.resolved)
    return subsample_split(split, fraction, keep, spec.seed)
