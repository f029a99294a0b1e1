"""Action distribution of a Bernoulli Thompson-sampling policy that shows a slate of ``len_list`` items.

Each simulation draws one value per item from its Beta(alpha_a, beta_a) and shows the ``len_list`` items with the
largest values, in decreasing order (position 0 = largest). The distribution is the share of simulations in which
item a lands at position k: action_dist[a, k] = #{sims: a at k} / n_sim (OBP's ``BernoulliTS
.compute_batch_action_dist``; the Open Bandit Dataset's evaluation policy with ``is_zozotown_prior=True`` uses the
production prior, obp/policy/conf/prior_bts.yaml, and OBP's example draws 1,000,000 simulations with seed 12345).

The draws are those of ``numpy.random.RandomState(random_state).beta``, row after row, as OBP's loop makes them,
so the result equals OBP's bit for bit. Where every prior parameter exceeds 1 (the OBD priors), a numba port of
numpy's legacy MT19937/gamma/beta (recux.ope.legacy_rng) draws the rows block by block on one thread while a
second generates the next block of uniforms and ranks the previous block's rows, without the GIL. The slates
are counted from draws computed with a fast logarithm and certified equal to numpy's by error bounds
(recux.ope.certified_rows); a row that cannot be certified sends the whole simulation to the exact port.
Otherwise numpy draws blocks of rows (a block of shape (m, n_actions) consumes the stream exactly as m
successive rows) and a numba kernel ranks and counts them.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
from numba import njit

from recux.errors import ConfigError
from recux.ope import legacy_rng
from recux.ope.draw_rules import count_row_top

_BLOCK_ROWS = 50_000


@njit(cache=True)
def _count_top(values: np.ndarray, counts: np.ndarray) -> None:
    """counts[a, k] += 1 where item a has the (k+1)-th largest value of its row (exact ties, which continuous
    draws make vanishingly rare, go to the larger index)."""
    top = np.empty(counts.shape[1], dtype=np.int64)
    for i in range(values.shape[0]):
        count_row_top(values[i], top, counts)


def cached_bts_action_dist(alpha: np.ndarray, beta: np.ndarray, len_list: int, n_sim: int = 1_000_000,
                           random_state: int = 12345, root: Path | None = None) -> np.ndarray:
    """``bts_action_dist`` kept in ``$RECUX_DATA/ope/`` under a hash of its inputs: the result is a deterministic
    function of (prior, len_list, n_sim, seed), so a later run reads the counts instead of simulating again."""
    from recux.download import data_home
    from recux.results import atomic_write

    alpha, beta = np.asarray(alpha, float), np.asarray(beta, float)
    blob = np.concatenate([alpha, beta, [len_list, n_sim, random_state]]).tobytes()
    path = Path(root or data_home() / "ope") / f"bts_action_dist-{hashlib.sha256(blob).hexdigest()[:20]}.npy"
    if path.exists():
        cached = np.load(path)
        if cached.shape == (len(alpha), len_list):
            return cached
    dist = bts_action_dist(alpha, beta, len_list, n_sim, random_state)
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    np.save(buf, dist)
    atomic_write(path, buf.getvalue())
    return dist


def bts_action_dist(alpha: np.ndarray, beta: np.ndarray, len_list: int, n_sim: int = 1_000_000,
                    random_state: int | None = 12345) -> np.ndarray:
    """(n_actions, len_list) probabilities of each item at each position under Bernoulli TS with this prior."""
    alpha, beta = np.asarray(alpha, float), np.asarray(beta, float)
    if alpha.shape != beta.shape or alpha.ndim != 1:
        raise ConfigError(f"alpha and beta must be 1-d of equal length, got {alpha.shape} and {beta.shape}")
    if not 1 <= len_list <= len(alpha):
        raise ConfigError(f"len_list must be in [1, n_actions={len(alpha)}], got {len_list}")
    if n_sim < 1:
        raise ConfigError(f"n_sim must be >= 1, got {n_sim}")
    rng = np.random.RandomState(random_state)
    counts = np.zeros((len(alpha), len_list), dtype=np.int64)
    if legacy_rng.supported(alpha, beta):
        key, ints, cached = legacy_rng.state_of(rng)
        legacy_rng.beta_rows(key, ints, cached, alpha, beta, int(n_sim), np.empty((0, 0)), counts)
        return counts / float(n_sim)
    for start in range(0, int(n_sim), _BLOCK_ROWS):
        rows = min(_BLOCK_ROWS, int(n_sim) - start)
        _count_top(rng.beta(alpha, beta, size=(rows, len(alpha))), counts)
    return counts / float(n_sim)
