"""The continual task's data scheme: the log cut in time into periods, and for each update stage the rows it
trains on, validates on, conditions on and is tested on. Pure numpy over one code space (the whole log's, so
item and user codes are stable across periods and a network's weights carry over from one stage to the next).

Scheme (P periods, stages t = 0..P-2; stage t is the model updated with the data up to period t and tested
on period t+1):

* Periods: ``recux.splitting.time_periods`` (global time cuts at the p/P quantiles of all rows).
* Test part of period p >= 1: for each user *known* at the previous stage (a row of theirs was trained on,
  i.e. is before the training cut c_{p-1} and not held out) the share ``test_share`` of their period-p rows
  with known items (at least one), drawn at random (seeded). These rows are never trained or validated on:
  they are task p-1's test set, re-scored after every later update to measure forgetting.
* Training cut c_t: the (1 - valid_share) quantile time of period t's rows that are not held out; rows of
  period t from c_t on are stage t's validation slice (early stopping), restricted to users and items of the
  rows before c_t. They are trained on at the next stage.
* Stage t trains on the non-held-out rows before c_t (``update_data=all``) or only on those from c_{t-1} on
  (``new``: everything since the previous update, the previous validation slice included).
* Test task t (stage t's test, and the task every later model re-scores): period t+1's test part; the model
  conditions on (sequential models read) every row before period t+1; masked from the ranking are those rows
  and the user's period-(t+1) rows outside the test part (the usual "mask what the user consumed" rule, so
  the candidate set of a task is the same for every model that scores it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recux.data import Interactions
from recux.errors import ConfigError
from recux.splitting import _time_order, tie_key, time_periods


@dataclass(frozen=True)
class Stage:
    """One update: what it trains and validates on, and its test task (see the module docstring)."""

    index: int
    train: Interactions
    valid: Interactions
    seen: Interactions  # every row before the training cut (the validation mask; validation's known set)
    history: Interactions  # every row before the test period (conditioning)
    test: Interactions  # the test part of period index + 1
    mask: Interactions  # history + the test period's other rows (masked when ranking the test task)
    train_cut: int  # c_t


@dataclass(frozen=True)
class Periods:
    """The scheme's row labels over one Interactions: period and held-out flag per row, and the cuts."""

    period: np.ndarray
    held_out: np.ndarray
    period_cuts: list[int]
    train_cuts: list[int]


def check_shares(test_share: float, valid_share: float) -> None:
    if not 0 < float(test_share) <= 1:
        raise ConfigError(f"task.test_share={test_share} must be in (0, 1]: the share of a returning user's "
                          "period rows held out as that period's test set, e.g. 0.5.")
    if not 0 < float(valid_share) < 1:
        raise ConfigError(f"task.valid_share={valid_share} must be in (0, 1): the latest share of each period "
                          "used to validate (early stopping), e.g. 0.1.")


def _known(inter: Interactions, rows: np.ndarray) -> np.ndarray:
    """Per row: whether its user and its item both occur among ``rows`` (a boolean mask)."""
    users = np.zeros(inter.n_users, dtype=bool)
    items = np.zeros(inter.n_items, dtype=bool)
    users[inter.user[rows]] = True
    items[inter.item[rows]] = True
    return users[inter.user] & items[inter.item]


def _hold_out(inter: Interactions, candidates: np.ndarray, share: float, seed: int) -> np.ndarray:
    """A random ``share`` (rounded half up, at least one) of each user's candidate rows (boolean mask)."""
    idx = np.flatnonzero(candidates)
    key = tie_key(inter.user[idx], inter.item[idx], seed + 7919)  # seeded, independent of row storage
    order = idx[np.lexsort((key, inter.user[idx]))]
    users = inter.user[order]
    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
    sizes = np.diff(np.r_[starts, len(order)])
    pos = np.arange(len(order)) - np.repeat(starts, sizes)
    n_test = np.maximum(1, np.floor(sizes * share + 0.5)).astype(np.int64)
    out = np.zeros(len(inter), dtype=bool)
    out[order[pos < np.repeat(n_test, sizes)]] = True
    return out


def _quantile_time(ts: np.ndarray, q: float) -> int:
    ts = np.sort(ts)
    return int(ts[min(len(ts) - 1, int(np.floor(len(ts) * q)))])


def label_periods(inter: Interactions, n_periods: int, test_share: float, valid_share: float,
                  seed: int) -> Periods:
    """Period, held-out flag and training cut of every row (see the module docstring)."""
    check_shares(test_share, valid_share)
    if inter.timestamp is None:
        raise ConfigError("task=continual needs timestamps (periods are cut in time); this dataset has none.")
    ts = inter.timestamp
    period, period_cuts = time_periods(ts, n_periods)
    held = np.zeros(len(inter), dtype=bool)
    train_cuts: list[int] = []
    for p in range(int(n_periods) - 1):
        in_p = period == p
        if p >= 1:
            trained = ~held & (ts < train_cuts[p - 1])
            held |= _hold_out(inter, in_p & _known(inter, trained), float(test_share), seed + p)
        rest = in_p & ~held
        if not rest.any():
            raise ConfigError(f"period {p} of task.n_periods={n_periods} has no training rows (heavy timestamp "
                              "ties or a tiny log); use fewer periods.")
        train_cuts.append(_quantile_time(ts[rest], 1.0 - float(valid_share)))
    last = period == int(n_periods) - 1
    held |= _hold_out(inter, last & _known(inter, ~held & (ts < train_cuts[-1])), float(test_share),
                      seed + int(n_periods) - 1)
    return Periods(period, held, period_cuts, train_cuts)


def build_stages(inter: Interactions, labels: Periods, update_data: str, seed: int) -> list[Stage]:
    """The stages t = 0..P-2 of the scheme, each part's rows in time order (per user, ties seeded)."""
    if update_data not in ("all", "new"):
        raise ConfigError(f"task.update_data={update_data!r} must be 'all' (train each update on every row so "
                          "far) or 'new' (only on the rows since the previous update).")
    order = _time_order(inter, "task=continual", seed)
    ts, period, held = inter.timestamp, labels.period, labels.held_out

    def rows(mask: np.ndarray) -> Interactions:
        return inter.subset(order[mask[order]])

    stages = []
    for t, cut in enumerate(labels.train_cuts):
        seen = ts < cut
        train = ~held & seen
        if update_data == "new" and t > 0:
            train &= ts >= labels.train_cuts[t - 1]
        valid = ~held & ~seen & (period == t) & _known(inter, ~held & seen)
        history = period <= t
        test = held & (period == t + 1)
        mask = history | ((period == t + 1) & ~held)
        stages.append(Stage(t, rows(train), rows(valid), rows(seen), rows(history), rows(test), rows(mask), cut))
    return stages
