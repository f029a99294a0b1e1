"""Logged bandit feedback: what off-policy estimation needs from a logging (behaviour) policy's log.

A ranking ``recux.data.Dataset`` holds user-item interactions keyed by user and item ids; a bandit log is a
different object: one row per impression (round) with the context the policy saw, the action (item) it showed,
the slot (position) it showed it in, the reward (click) and the probability with which the logging policy chose
that action at that position (the propensity). Users are not identified (the context is all there is), and the
propensity is part of the data, not something a ranking dataset could carry; hence this small container.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from recux.errors import DataError


@dataclass(frozen=True)
class BanditFeedback:
    """One logging policy's rounds. Arrays are aligned on the round axis (length ``n_rounds``).

    context: (n_rounds, dim_context) float, features the policy saw (e.g. one-hot user features).
    action: (n_rounds,) int in [0, n_actions), the item shown.
    position: (n_rounds,) int in [0, len_list), the slot it was shown in (0 = top).
    reward: (n_rounds,) float, the observed reward (click 0/1).
    pscore: (n_rounds,) float in (0, 1], the logging policy's probability of that action at that position.
    action_context: (n_actions, dim_action_context) float, item features (row i = item i).
    """

    context: np.ndarray
    action: np.ndarray
    position: np.ndarray
    reward: np.ndarray
    pscore: np.ndarray
    action_context: np.ndarray
    n_actions: int
    len_list: int
    policy: str = ""
    campaign: str = ""

    def __post_init__(self) -> None:
        n = len(self.action)
        for name in ("position", "reward", "pscore"):
            if len(getattr(self, name)) != n:
                raise DataError(f"bandit feedback: {name} has {len(getattr(self, name))} rounds, action has {n}")
        if self.context.ndim != 2 or self.context.shape[0] != n:
            raise DataError(f"bandit feedback: context must be (n_rounds={n}, dim), got {self.context.shape}")
        if n and (self.action.min() < 0 or self.action.max() >= self.n_actions):
            raise DataError(f"bandit feedback: actions must lie in [0, {self.n_actions})")
        if n and (self.position.min() < 0 or self.position.max() >= self.len_list):
            raise DataError(f"bandit feedback: positions must lie in [0, {self.len_list})")
        if n and not (np.all(self.pscore > 0) and np.all(self.pscore <= 1)):
            raise DataError("bandit feedback: pscore (logging propensities) must lie in (0, 1]")
        if self.action_context.shape[0] != self.n_actions:
            raise DataError(
                f"bandit feedback: action_context has {self.action_context.shape[0]} rows, n_actions={self.n_actions}"
            )

    @property
    def n_rounds(self) -> int:
        return len(self.action)

    @property
    def on_policy_value(self) -> float:
        """The logging policy's own value: the mean observed reward (OBP's on-policy ground truth)."""
        return float(self.reward.mean())

    def take(self, idx: np.ndarray) -> BanditFeedback:
        """The rounds at ``idx`` (e.g. a bootstrap resample); item features are kept whole."""
        return BanditFeedback(
            context=self.context[idx],
            action=self.action[idx],
            position=self.position[idx],
            reward=self.reward[idx],
            pscore=self.pscore[idx],
            action_context=self.action_context,
            n_actions=self.n_actions,
            len_list=self.len_list,
            policy=self.policy,
            campaign=self.campaign,
        )


@dataclass(frozen=True)
class BanditLogs:
    """Logs of several policies on the same items (an A/B test), keyed by policy name.

    ``priors``: per policy, parameters that define it where the data's authors publish them (for the Open Bandit
    Dataset's Bernoulli Thompson sampling: ``{"alpha": (n_actions,), "beta": (n_actions,)}``).
    ``info``: provenance (source, paths, checksums).
    """

    logs: Mapping[str, BanditFeedback]
    priors: Mapping[str, Mapping[str, np.ndarray]] = field(default_factory=dict)
    info: Mapping[str, Any] = field(default_factory=dict)

    def __getitem__(self, policy: str) -> BanditFeedback:
        if policy not in self.logs:
            raise DataError(f"no log of policy {policy!r}; the data has {sorted(self.logs)}")
        return self.logs[policy]
