"""User groups for fairness and diagnosis: a label per evaluated user from the dataset's user features or from
the user's training history.

Groups (``metrics.groups``; ``available_groups`` lists those a dataset offers):

- any categorical user-feature column (string, categorical or boolean, at most ``MAX_LEVELS`` distinct values;
  ML-100K: ``gender``, ``occupation``; its 795 zip codes are too many levels to compare): the column's value;
  a missing value is the level ``(missing)``.
- ``age`` (a numeric ``age`` column): bands ``AGE_BANDS`` = <25, 25-34, 35-44, 45+ (ML-100K ages 7-73; four
  bands of 170-380 users each, where ML-1M's seven bands would leave groups of about 30);
- ``activity``: terciles of the length of the user's training history (training interactions only, not
  validation), computed on the evaluated users (see ``terciles``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl
import scipy.sparse as sp

from recux.errors import ConfigError

ACTIVITY = "activity"
AGE = "age"
MAX_LEVELS = 50  # a categorical column with more distinct values is no group (e.g. zip codes)
AGE_BANDS: tuple[tuple[float, str], ...] = ((25, "<25"), (35, "25-34"), (45, "35-44"), (np.inf, "45+"))
TERCILES = ("low", "mid", "high")
MISSING = "(missing)"
_CATEGORICAL = (pl.String, pl.Categorical, pl.Enum, pl.Boolean)


@dataclass(frozen=True)
class Grouping:
    """A label per user (aligned with the users asked for), the levels in display order and what each means."""

    name: str
    labels: np.ndarray  # str, one per user
    levels: tuple[str, ...]
    definitions: dict[str, str]


def _categorical_columns(user_features: pl.DataFrame | None) -> list[str]:
    if user_features is None:
        return []
    return [c for c, dtype in user_features.schema.items()
            if c != "user_id" and c != AGE and isinstance(dtype, _CATEGORICAL)
            and user_features[c].n_unique() <= MAX_LEVELS]


def _has_age(user_features: pl.DataFrame | None) -> bool:
    return user_features is not None and AGE in user_features.columns and user_features[AGE].dtype.is_numeric()


def available_groups(user_features: pl.DataFrame | None) -> list[str]:
    """The group names a dataset with these user features offers (``activity`` always)."""
    return [*_categorical_columns(user_features), *([AGE] if _has_age(user_features) else []), ACTIVITY]


def check_groups(names, user_features: pl.DataFrame | None, dataset: str = "the dataset",
                 setting: str = "metrics.groups") -> list[str]:
    """``names`` as a list, or a ConfigError naming the unknown group(s) and the available ones."""
    if names is None:
        return []
    if isinstance(names, str) or not isinstance(names, Sequence):
        raise ConfigError(f"{setting}={names!r} must be a list of group names, e.g. {setting}=[gender,age,activity]")
    names = [str(n) for n in names]
    avail = available_groups(user_features)
    unknown = [n for n in names if n not in avail]
    if unknown:
        raise ConfigError(
            f"{setting} names unknown user group(s) {', '.join(unknown)} for {dataset}; available: "
            f"{', '.join(avail)} (categorical user features with at most {MAX_LEVELS} values, age bands when "
            "the dataset has a numeric age, and activity terciles)."
        )
    if len(set(names)) != len(names):
        raise ConfigError(f"{setting}={names} lists a group twice; keep one of each")
    return names


def terciles(values: np.ndarray) -> tuple[np.ndarray, tuple[float, float]]:
    """Tercile labels of ``values`` and the cut points q1, q2 = numpy.quantile(values, [1/3, 2/3]) (linear
    interpolation): ``low`` if v <= q1, ``mid`` if q1 < v <= q2, ``high`` if v > q2. Ties at a cut point go to
    the lower group, so with repeated values the groups can differ in size (and one can be empty)."""
    v = np.asarray(values, dtype=np.float64)
    q1, q2 = (float(q) for q in np.quantile(v, [1 / 3, 2 / 3]))
    labels = np.where(v <= q1, TERCILES[0], np.where(v <= q2, TERCILES[1], TERCILES[2]))
    return labels.astype(object), (q1, q2)


def tercile_grouping(name: str, values: np.ndarray, what: str) -> Grouping:
    labels, (q1, q2) = terciles(values)
    defs = {"low": f"{what} <= {q1:.4g}", "mid": f"{q1:.4g} < {what} <= {q2:.4g}", "high": f"{what} > {q2:.4g}"}
    return Grouping(name, labels, TERCILES, defs)


def history_lengths(train_csr: sp.csr_matrix, users: np.ndarray) -> np.ndarray:
    """Training interactions of each user (code)."""
    return np.diff(train_csr.indptr)[np.asarray(users)]


def _age_bands(ages: pl.Series) -> Grouping:
    a = ages.cast(pl.Float64).to_numpy()
    labels = np.full(len(a), MISSING, dtype=object)
    lower = -np.inf
    for upper, band in AGE_BANDS:
        labels[(a >= lower) & (a < upper)] = band
        lower = upper
    levels = tuple(b for _, b in AGE_BANDS) + ((MISSING,) if (labels == MISSING).any() else ())
    return Grouping(AGE, labels, levels, {"<25": "age < 25", "25-34": "25 <= age < 35", "35-44": "35 <= age < 45",
                                          "45+": "age >= 45"})


def _categorical(name: str, column: pl.Series) -> Grouping:
    labels = np.array([MISSING if v is None else str(v) for v in column.to_list()], dtype=object)
    return Grouping(name, labels, tuple(sorted(set(labels))), {})


def grouping(name: str, users: np.ndarray, user_features: pl.DataFrame | None,
             train_csr: sp.csr_matrix) -> Grouping:
    """The labels of group ``name`` (already checked by ``check_groups``) for user codes ``users``."""
    if name == ACTIVITY:
        return tercile_grouping(ACTIVITY, history_lengths(train_csr, users), "training interactions")
    feats = user_features[np.asarray(users).tolist()]  # row i = user code i
    return _age_bands(feats[AGE]) if name == AGE else _categorical(name, feats[name])
