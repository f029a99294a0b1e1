"""Bootstrap confidence interval of an estimate: resample the round rewards, take percentiles of the means.

As OBP's ``estimate_confidence_interval_by_bootstrap`` (obp/utils.py): ``n_bootstrap_samples`` resamples with
replacement of the per-round terms (``RandomState(random_state).choice``; the resamples are drawn in one
vectorised call per block, which gives the same index stream), the percentile interval
[q(alpha/2), q(1 - alpha/2)] of their means, and the bootstrap mean. The estimator's hyper-parameters (and the
reward model) are held fixed across resamples, as in OBP.
"""

from __future__ import annotations

import numpy as np

from recux.errors import ConfigError

_BLOCK_ELEMENTS = 1 << 22


def bootstrap_ci(samples: np.ndarray, alpha: float = 0.05, n_bootstrap_samples: int = 10_000,
                 random_state: int | None = None) -> dict[str, float]:
    if not 0 < alpha < 1:
        raise ConfigError(f"alpha must be in (0, 1), got {alpha}")
    if n_bootstrap_samples < 1:
        raise ConfigError(f"n_bootstrap_samples must be >= 1, got {n_bootstrap_samples}")
    samples = np.asarray(samples, dtype=float)
    n = len(samples)
    rng = np.random.RandomState(random_state)
    block = max(1, _BLOCK_ELEMENTS // max(n, 1))
    means = np.empty(n_bootstrap_samples)
    for start in range(0, n_bootstrap_samples, block):
        stop = min(start + block, n_bootstrap_samples)
        idx = rng.randint(0, n, size=(stop - start, n))  # RandomState.choice(samples, n) draws randint(0, n, n)
        means[start:stop] = samples[idx].mean(axis=1)
    return {
        "mean": float(means.mean()),
        "lower": float(np.percentile(means, 100 * alpha / 2)),
        "upper": float(np.percentile(means, 100 * (1 - alpha / 2))),
        "alpha": alpha,
        "n_bootstrap_samples": n_bootstrap_samples,
    }
