"""Off-policy estimators of a policy's value from logged bandit feedback, position-wise (slates of ``len_list``).

Notation (per logged round i, with context x_i, item a_i at position k_i, reward r_i, logging propensity
p_i = pi_b(a_i | x_i, k_i)):
  pi_e(a | x, k) = action_dist[i, a, k]   (evaluation policy; sums to 1 over a for each position)
  q(x, a, k)     = q_hat[i, a, k]         (a reward model's prediction)
  w_i = pi_e(a_i | x_i, k_i) / p_i        (importance weight)
  DM_i = sum_a pi_e(a | x_i, k_i) q(x_i, a, k_i)
Each estimator's value is the mean over rounds of its round rewards:
  DM:        DM_i                                              (Beygelzimer & Langford 2009)
  IPW:       w_i r_i                                           (Precup et al. 2000; Strehl et al. 2010)
  SNIPW:     w_i r_i / mean(w)                                 (Swaminathan & Joachims 2015)
  DR:        DM_i + w_i (r_i - q(x_i, a_i, k_i))               (Dudik, Langford & Li 2011)
  SNDR:      DM_i + w_i (r_i - q(x_i, a_i, k_i)) / mean(w)     (OBP's self-normalised DR)
  Switch-DR: DM_i + 1[w_i <= lambda] w_i (r_i - q_i)           (Wang, Agarwal & Dudik 2017)
  DRos:      DM_i + lambda w_i / (w_i^2 + lambda) (r_i - q_i)  (Su, Dimakopoulou, Krishnamurthy & Dudik 2020)
These are the definitions of OBP (obp/ope/estimators.py, v0.5.5): the slate of an OBD round is scored
position by position, and the value is the mean per-impression reward. lambda = inf gives DR for Switch-DR and
DRos (OBP's convention; DRos with lambda = 0 is DM).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from recux.errors import ConfigError


@dataclass(frozen=True)
class OPEInputs:
    """The arrays an estimator reads; ``q_hat`` may be None for estimators that need no reward model.

    The per-round quantities shared by estimators (w, DM_i, q(x_i, a_i, k_i)) are computed once and cached;
    the arrays are not to be modified after construction."""

    reward: np.ndarray  # (n,)
    action: np.ndarray  # (n,) int
    position: np.ndarray  # (n,) int
    pscore: np.ndarray  # (n,)
    action_dist: np.ndarray  # (n, n_actions, len_list)
    q_hat: np.ndarray | None = None  # (n, n_actions, len_list)

    def __post_init__(self) -> None:
        n = len(self.reward)
        if self.action_dist.ndim != 3 or self.action_dist.shape[0] != n:
            raise ConfigError(f"action_dist must be (n_rounds={n}, n_actions, len_list), got {self.action_dist.shape}")
        if self.q_hat is not None and self.q_hat.shape != self.action_dist.shape:
            raise ConfigError(f"q_hat {self.q_hat.shape} must have action_dist's shape {self.action_dist.shape}")
        if self.position.max(initial=0) >= self.action_dist.shape[2]:
            raise ConfigError(f"a position exceeds the action distribution's len_list={self.action_dist.shape[2]}")

    def take(self, idx: np.ndarray) -> OPEInputs:
        return OPEInputs(self.reward[idx], self.action[idx], self.position[idx], self.pscore[idx],
                         self.action_dist[idx], None if self.q_hat is None else self.q_hat[idx])

    @cached_property
    def iw(self) -> np.ndarray:
        """w_i = pi_e(a_i | x_i, k_i) / p_i."""
        n = len(self.reward)
        return self.action_dist[np.arange(n), self.action, self.position] / self.pscore

    def _need_q(self) -> np.ndarray:
        if self.q_hat is None:
            raise ConfigError("this estimator needs a reward model's predictions (q_hat); set ope.reward_model")
        return self.q_hat

    @cached_property
    def q_factual(self) -> np.ndarray:
        """q(x_i, a_i, k_i)."""
        return self._need_q()[np.arange(len(self.reward)), self.action, self.position]

    @cached_property
    def dm(self) -> np.ndarray:
        """DM_i = sum_a pi_e(a | x_i, k_i) q(x_i, a, k_i) / sum_a pi_e(a | x_i, k_i) (np.average, as OBP)."""
        n = len(self.reward)
        q = self._need_q()[np.arange(n), :, self.position]
        pi = self.action_dist[np.arange(n), :, self.position]
        return (q * pi).sum(axis=1) / pi.sum(axis=1)


@dataclass(frozen=True)
class Estimator:
    """Base: ``round_rewards`` gives one term per round; the estimate is their mean."""

    name: str = ""
    needs_reward_model: bool = False

    def round_rewards(self, inp: OPEInputs) -> np.ndarray:
        raise NotImplementedError

    def estimate(self, inp: OPEInputs) -> float:
        return float(self.round_rewards(inp).mean())


@dataclass(frozen=True)
class DM(Estimator):
    name: str = "dm"
    needs_reward_model: bool = True

    def round_rewards(self, inp: OPEInputs) -> np.ndarray:
        return inp.dm


@dataclass(frozen=True)
class IPW(Estimator):
    """IPW with optional weight clipping min(w, lambda) (OBP's ``lambda_``; inf = none)."""

    name: str = "ipw"
    lambda_: float = np.inf

    def round_rewards(self, inp: OPEInputs) -> np.ndarray:
        return inp.reward * np.minimum(inp.iw, self.lambda_)


@dataclass(frozen=True)
class SNIPW(Estimator):
    name: str = "snipw"

    def round_rewards(self, inp: OPEInputs) -> np.ndarray:
        w = inp.iw
        return inp.reward * w / w.mean()


@dataclass(frozen=True)
class DR(Estimator):
    """DR with optional weight clipping min(w, lambda) (OBP's ``lambda_``; inf = none)."""

    name: str = "dr"
    needs_reward_model: bool = True
    lambda_: float = np.inf

    def shrunk_weights(self, w: np.ndarray) -> np.ndarray:
        return np.minimum(w, self.lambda_)

    def round_rewards(self, inp: OPEInputs) -> np.ndarray:
        return inp.dm + self.shrunk_weights(inp.iw) * (inp.reward - inp.q_factual)


@dataclass(frozen=True)
class SNDR(Estimator):
    name: str = "sndr"
    needs_reward_model: bool = True

    def round_rewards(self, inp: OPEInputs) -> np.ndarray:
        w = inp.iw
        return inp.dm + w * (inp.reward - inp.q_factual) / w.mean()


@dataclass(frozen=True)
class SwitchDR(DR):
    """Switch-DR: the importance-weighted correction only where w <= lambda."""

    name: str = "switch-dr"

    def shrunk_weights(self, w: np.ndarray) -> np.ndarray:
        return w * (w <= self.lambda_)


@dataclass(frozen=True)
class DRos(DR):
    """DR with optimistic shrinkage: w -> lambda w / (w^2 + lambda); lambda = inf keeps w (OBP's default is 0)."""

    name: str = "dr-os"
    lambda_: float = 0.0

    def shrunk_weights(self, w: np.ndarray) -> np.ndarray:
        if np.isinf(self.lambda_):
            return w
        if self.lambda_ == 0:  # DM; OBP would give 0/0 = nan where w = 0
            return np.zeros_like(w)
        return self.lambda_ * w / (w**2 + self.lambda_)
