"""What both Bernoulli-TS paths (the exact port ``recux.ope.legacy_rng`` and the certified one
``recux.ope.certified_rows``) must do identically: numpy's legacy formulas for a polar Gaussian, a Marsaglia-Tsang
gamma's acceptance and a beta draw, evaluated in numpy's order (numpy/random/src/legacy/legacy-distributions.c),
and the slate's top-k rule."""

from __future__ import annotations

import math

import numpy as np
from numba import njit


@njit(cache=True, nogil=True, inline="always")
def polar_f(r2: float) -> float:
    """numpy's legacy_gauss factor f = sqrt(-2 ln r2 / r2) of an accepted polar pair, exactly as numpy computes it."""
    return math.sqrt(-2.0 * math.log(r2) / r2)


@njit(cache=True, nogil=True, inline="always")
def gamma_rejected(x: float, u: float, b: float, c: float) -> bool:
    """Whether numpy's legacy_standard_gamma (shape > 1; b = shape - 1/3, c = 1 / sqrt(9 b)) rejects the Gaussian
    x with the uniform u: v = 1 + c x <= 0, or both the squeeze u < 1 - 0.0331 x^4 and the log test
    ln u < x^2 / 2 + b (1 - v^3 + ln v^3) fail."""
    v = 1.0 + c * x
    if v <= 0.0:
        return True
    v = v * v * v
    if u < 1.0 - 0.0331 * (x * x) * (x * x):
        return False
    return not math.log(u) < 0.5 * x * x + b * (1.0 - v + math.log(v))


@njit(cache=True, nogil=True, inline="always")
def item_beta(b_a: float, c_a: float, x_a: float, b_b: float, c_b: float, x_b: float) -> float:
    """numpy's legacy beta Ga / (Ga + Gb) from its two gammas' accepted Gaussians: G = b (1 + c x)^3, the cube as
    numpy's legacy_standard_gamma computes it, (v * v) * v."""
    va = 1.0 + c_a * x_a
    vb = 1.0 + c_b * x_b
    ga, gb = b_a * (va * va * va), b_b * (vb * vb * vb)
    return ga / (ga + gb)


@njit(cache=True, nogil=True, inline="always")
def row_top_k(row: np.ndarray, top: np.ndarray) -> None:
    """top[k] = the item with the (k+1)-th largest value of ``row``, k < len(top) (insertion into a running
    top-k; exact ties go to the later item)."""
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


@njit(cache=True, nogil=True)
def count_row_top(row: np.ndarray, top: np.ndarray, counts: np.ndarray) -> None:
    """counts[a, k] += 1 where item a has the (k+1)-th largest value of ``row``, k < len(top) (``row_top_k``
    into the scratch ``top``)."""
    row_top_k(row, top)
    for k in range(len(top)):
        counts[top[k], k] += 1
