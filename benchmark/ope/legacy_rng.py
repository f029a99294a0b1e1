"""numba port of the part of numpy's legacy ``RandomState`` that Bernoulli-TS simulation uses: MT19937 draws,
``legacy_double``, the polar Gaussian with its cached second value, Marsaglia-Tsang gamma for shape > 1 and
beta as Ga / (Ga + Gb), all in numpy's order (numpy/random/src/mt19937/mt19937.c, numpy/random/src/legacy/
legacy-distributions.c). Starting from ``RandomState(seed).get_state()`` it yields exactly the draws of
``RandomState(seed).beta(alpha, beta, size=(m, len(alpha)))`` (tests compare them bit for bit), without
allocating them: each row of draws is consumed in place by the caller's kernel.

Only shapes > 1 are ported (the Open Bandit Dataset's priors have alpha >= 2 and beta >= 2,189); callers fall
back to numpy otherwise (``supported``).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

_N, _M = 624, 397
# typed constants: numba promotes uint64 (op) int64 to float64, so every operand of the bit arithmetic is uint64
_MATRIX_A = np.uint64(0x9908B0DF)
_UPPER, _LOWER = np.uint64(0x80000000), np.uint64(0x7FFFFFFF)
_ONE, _ZERO = np.uint64(1), np.uint64(0)
_S1, _S5, _S6, _S7, _S11, _S15, _S18 = (np.uint64(v) for v in (1, 5, 6, 7, 11, 15, 18))
_T1, _T2, _MASK32 = np.uint64(0x9D2C5680), np.uint64(0xEFC60000), np.uint64(0xFFFFFFFF)


def supported(alpha: np.ndarray, beta: np.ndarray) -> bool:
    return bool(np.all(alpha > 1.0) and np.all(beta > 1.0))


def state_of(rng: np.random.RandomState) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(key uint32[624], [pos, has_gauss] int64, [gauss] float64) of a legacy RandomState."""
    name, key, pos, has_gauss, gauss = rng.get_state()
    if name != "MT19937":
        raise ValueError(f"expected an MT19937 RandomState, got {name}")
    return np.array(key, dtype=np.uint32), np.array([pos, has_gauss], dtype=np.int64), np.array([gauss])


@njit(cache=True)
def count_row_top(row: np.ndarray, top: np.ndarray, counts: np.ndarray) -> None:
    """counts[a, k] += 1 where item a has the (k+1)-th largest value of ``row``, k < len(top) (insertion into
    a running top-k in the scratch ``top``; exact ties go to the later item)."""
    k_max, n_top = len(top), 0
    for a in range(len(row)):
        val = row[a]
        j = n_top
        while j > 0 and row[top[j - 1]] <= val:
            j -= 1
        if j < k_max:
            for m in range(min(n_top, k_max - 1), j, -1):
                top[m] = top[m - 1]
            top[j] = a
            if n_top < k_max:
                n_top += 1
    for k in range(k_max):
        counts[top[k], k] += 1


@njit(cache=True)
def _regenerate(key: np.ndarray) -> None:
    for i in range(_N):
        j = i + 1 if i + 1 < _N else 0
        m = i + _M if i + _M < _N else i + _M - _N
        y = (np.uint64(key[i]) & _UPPER) | (np.uint64(key[j]) & _LOWER)
        mag = _MATRIX_A if (y & _ONE) != _ZERO else _ZERO
        key[i] = np.uint32(np.uint64(key[m]) ^ (y >> _S1) ^ mag)


@njit(cache=True)
def fill_doubles(key: np.ndarray, ints: np.ndarray, out: np.ndarray) -> None:
    """out[:] = the next len(out) ``legacy_double`` values: (a * 2^26 + b) / 2^53 with a, b the next two tempered
    MT19937 words shifted right by 5 and 6. One call per block: draws in one function body avoid a per-draw call
    (whose array reference counting costs more than the draw)."""
    pos = ints[0]
    for i in range(out.shape[0]):
        if pos >= _N:
            _regenerate(key)
            pos = 0
        a = _temper(np.uint64(key[pos])) >> _S5
        pos += 1
        if pos >= _N:
            _regenerate(key)
            pos = 0
        b = _temper(np.uint64(key[pos])) >> _S6
        pos += 1
        out[i] = (float(a) * 67108864.0 + float(b)) / 9007199254740992.0
    ints[0] = pos


@njit(cache=True, inline="always")
def _temper(y: np.uint64) -> np.uint64:
    y ^= y >> _S11
    y ^= (y << _S7) & _T1
    y ^= (y << _S15) & _T2
    y ^= y >> _S18
    return y & _MASK32


@njit(cache=True)
def beta_rows(key: np.ndarray, ints: np.ndarray, cached: np.ndarray, alpha: np.ndarray, beta: np.ndarray,
              rows: int, sink: np.ndarray, counts: np.ndarray, block: int = 1 << 16) -> None:
    """Draw ``rows`` rows of Beta(alpha[a], beta[a]) (shapes > 1) in numpy's order and hand each to the sink:
    with ``counts`` of shape (n_items, k) non-empty, count which items take the k largest values (Bernoulli-TS
    slates); else copy the rows into ``sink`` (rows, n_items).

    The per-element draw is numpy's legacy_beta = Ga / (Ga + Gb), each gamma by Marsaglia & Tsang with the polar
    Gaussian (numpy's cached second value included), every uniform a legacy_double taken from a block buffer."""
    n_items = alpha.shape[0]
    k_max = counts.shape[1]
    buf = np.empty(block)
    fill_doubles(key, ints, buf)
    p = 0
    has_gauss = ints[1]
    gauss_cached = cached[0]
    row = np.empty(n_items)
    top = np.empty(max(k_max, 1), dtype=np.int64)
    for i in range(rows):
        for a in range(n_items):
            ga = 0.0
            for which in range(2):
                shape = alpha[a] if which == 0 else beta[a]
                bb = shape - 1.0 / 3.0
                c = 1.0 / math.sqrt(9 * bb)
                while True:
                    while True:
                        if has_gauss:
                            x = gauss_cached
                            has_gauss = 0
                            gauss_cached = 0.0
                        else:
                            while True:
                                if p == block:  # refill only when used up: no draw is skipped
                                    fill_doubles(key, ints, buf)
                                    p = 0
                                x1 = 2.0 * buf[p] - 1.0
                                p += 1
                                if p == block:
                                    fill_doubles(key, ints, buf)
                                    p = 0
                                x2 = 2.0 * buf[p] - 1.0
                                p += 1
                                r2 = x1 * x1 + x2 * x2
                                if r2 < 1.0 and r2 != 0.0:
                                    break
                            f = math.sqrt(-2.0 * math.log(r2) / r2)
                            gauss_cached = f * x1
                            has_gauss = 1
                            x = f * x2
                        v = 1.0 + c * x
                        if v > 0.0:
                            break
                    v = v * v * v
                    if p == block:
                        fill_doubles(key, ints, buf)
                        p = 0
                    u = buf[p]
                    p += 1
                    if u < 1.0 - 0.0331 * (x * x) * (x * x):
                        break
                    if math.log(u) < 0.5 * x * x + bb * (1.0 - v + math.log(v)):
                        break
                if which == 0:
                    ga = bb * v
                else:
                    row[a] = ga / (ga + bb * v)
        if k_max == 0:
            sink[i, :] = row
            continue
        count_row_top(row, top, counts)
