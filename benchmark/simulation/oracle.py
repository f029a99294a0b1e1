"""The preference oracle: who likes what, as a click attractiveness a(u, i) in (0, 1).

From any score matrix (the synthetic world's true preferences ``Dataset.true_scores``, or a model fitted on all
of a real dataset's interactions: semi-synthetic), standardised over the whole matrix to z(u, i):

    a(u, i) = sigmoid(z(u, i) / temperature + b_u - shift),   b_u ~ N(0, heterogeneity^2) per user (seeded)

b_u makes some users click more than others whatever they are shown (what CUPED's pre-period covariate
captures). ``shift`` is the one calibrated scalar: found by bisection so that uniformly random slates have the
target click-through rate per impression,

    target_ctr = mean_k(e_k) * mean_{u, i} a(u, i)

(under a uniformly random slate every position holds a uniform item, so this is exactly the expected marginal
CTR; e_k the examination probabilities of the click model). The mean over (u, i) is exact up to 4M pairs,
else over 1M pairs sampled with the seed.

Bias of a semi-synthetic oracle: a model of the oracle's own family (e.g. EASE judged by an EASE oracle) fits
the oracle's structure, not only the users' preferences, and looks better than it is; report results under
oracles of two different families (e.g. EASE and iALS) and trust only conclusions that hold under both.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recux.errors import ConfigError

EXACT_PAIRS = 4_000_000
SAMPLED_PAIRS = 1_000_000


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # = 1 / (1 + exp(-x)), without overflow


def standardise(scores: np.ndarray) -> np.ndarray:
    """(scores - mean) / std over the whole matrix (finite scores; non-finite ones get the minimum)."""
    s = np.asarray(scores, dtype=np.float64)
    finite = np.isfinite(s)
    if not finite.any():
        raise ConfigError("the oracle's scores are all non-finite; check the oracle model")
    s = np.where(finite, s, s[finite].min())
    sd = float(s.std())
    if sd == 0:
        raise ConfigError("the oracle's scores are constant (no preference to simulate); use another oracle")
    return (s - s.mean()) / sd


def calibrate_shift(logits: np.ndarray, target: float, tol: float = 1e-10) -> float:
    """The shift with mean(sigmoid(logits - shift)) = target, by bisection (the mean falls as shift grows)."""
    lo, hi = -60.0, 60.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if float(_sigmoid(logits - mid).mean()) > target:
            lo = mid
        else:
            hi = mid
        if hi - lo < tol:
            break
    return 0.5 * (lo + hi)


@dataclass
class Oracle:
    """Click attractiveness a(u, i) (float32, users x items) and how it was calibrated."""

    attract: np.ndarray
    shift: float
    target_ctr: float
    temperature: float
    heterogeneity: float
    source: str

    @classmethod
    def calibrated(cls, scores: np.ndarray, target_ctr: float, mean_examination: float, temperature: float = 1.0,
                   heterogeneity: float = 0.0, seed: int = 0, source: str = "scores") -> Oracle:
        """Calibrate ``scores`` (users x items) to ``target_ctr`` under uniformly random slates."""
        check_oracle_settings(target_ctr, mean_examination, temperature, heterogeneity)
        rng = np.random.default_rng([int(seed), 0xC11C])
        z = standardise(scores)
        logits = z / temperature + heterogeneity * rng.standard_normal(z.shape[0])[:, None]
        sample = logits.ravel()
        if sample.size > EXACT_PAIRS:
            sample = sample[rng.integers(0, sample.size, SAMPLED_PAIRS)]
        shift = calibrate_shift(sample, target_ctr / mean_examination)
        attract = _sigmoid(logits - shift).astype(np.float32)
        return cls(attract, shift, float(target_ctr), float(temperature), float(heterogeneity), source)

    def describe(self) -> dict:
        return {"source": self.source, "target_ctr": self.target_ctr, "shift": self.shift,
                "temperature": self.temperature, "heterogeneity": self.heterogeneity,
                "mean_attractiveness": float(self.attract.mean()),
                "formula": "a(u,i) = sigmoid(z(u,i)/temperature + b_u - shift), b_u ~ N(0, heterogeneity^2)"}


def check_oracle_settings(target_ctr: float, mean_examination: float, temperature: float,
                          heterogeneity: float) -> None:
    if not 0 < target_ctr < mean_examination:
        raise ConfigError(
            f"task.target_ctr={target_ctr} must lie in (0, {mean_examination:.4g}): a click needs an examination, "
            "and the mean examination probability of the slate's positions is the most a random slate can reach "
            "(lower the target, e.g. 0.05, or task.examination_eta)."
        )
    if not temperature > 0:
        raise ConfigError(f"task.temperature={temperature} must be positive (e.g. 1.0): it divides the scores.")
    if not heterogeneity >= 0:
        raise ConfigError(f"task.user_heterogeneity={heterogeneity} must be >= 0 (the sd of the per-user click "
                          "offset; 0 = none).")
