"""Bernoulli-TS slates from numpy's legacy beta stream without computing every draw exactly, with the result
certified equal to the exact one.

``recux.ope.legacy_rng`` reproduces each draw of ``RandomState.beta`` bit for bit; each of the 160 gammas of an
OBD row then costs a libm log, a division and a square root (numpy's polar Gaussian f = sqrt(-2 ln r2 / r2)), plus
two more logs when the squeeze test fails. A slate needs far less: which draws numpy accepts, and which items take
the k largest values. Both are decided here from values computed with ``recux.ope.fastlog.log_approx`` (SIMD, no
libm call) together with a rigorous bound on their distance from numpy's values:

- x_hat = f_hat t differs from numpy's Gaussian x by at most ``eps`` |x| (``EPS_X``: log_approx's error, the C
  library's (< 1 ulp), and the roundings of the division, square root and product, with room).
- numpy's squeeze test u < 1 - 0.0331 x^4 and its v = 1 + c x > 0 are taken from x_hat only where the margin
  exceeds what that error can move (every step is monotone in |x|, so the bound is the error of x^4 plus the
  roundings); its log test ln u < x^2/2 + b (1 - v^3 + ln v^3) likewise, with the error of each term bounded.
  Where a margin is too thin the gamma is decided exactly as numpy decides it (``_exact_test``).
- Each item's beta Ga / (Ga + Gb), with Ga = b (1 + c x)^3, is within err = beta (6 (da + db) + 4e-15) of numpy's,
  da = c |x| eps / v (the relative error of v), the 6 covering the cube (3) and the quotient's two gammas, doubled.
  A row counts only if its top k are certified: each of the k largest exceeds the next by more than both errors,
  and the k-th exceeds every other item's upper bound. Otherwise ``rank_rows_certified`` reports failure and the
  caller recomputes everything exactly. Measured on the OBD prior (1M rows, seed 12345): every row is certified
  up to eps = 1e-8, and certification first fails at 1e-7; EPS_X = 1e-14 would need a near-tie some million
  times closer, so a recomputation is of the order of one run in ten million.

The stream is consumed exactly as numpy consumes it, so the uniforms, the speculative parse and the roll-back of
a row at a block's end follow ``legacy_rng.consume_rows``. Indices are cast to unsigned where loops are hot: numba
wraps negative signed indices, and that check turns contiguous loads into gathers.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit
from numba.cpython.unsafe.numbers import trailing_zeros

from recux.ope.draw_rules import gamma_rejected, item_beta, polar_f, row_top_k
from recux.ope.fastlog import REL_ERR, log_approx

EPS_X = 1e-14  # |x_hat - x| <= EPS_X |x|: (REL_ERR + 1 ulp) / 2 for the logs, + ~4 ulp of roundings, x ~5


@njit(cache=True, nogil=True, inline="always")
def _u(i: int) -> np.uint64:
    return np.uint64(i)


@njit(cache=True, nogil=True, inline="always", error_model="numpy")
def _f_hat(r2: float) -> float:
    return math.sqrt(-2.0 * log_approx(r2) / r2)


@njit(cache=True, nogil=True)
def bits_words(n: int) -> int:
    """Length of the ``accept_bits`` array for a buffer of n uniforms (two words per 128 positions, one chunk of
    sentinels beyond)."""
    return 2 * (n // 128 + 2)


@njit(cache=True, nogil=True, inline="always")
def _pair_accepted(buf, p: int, n: int) -> np.uint64:
    if p + 1 >= n:
        return np.uint64(1)  # sentinel: no pair fits, the parse stops here and reports the buffer ran out
    x1 = 2.0 * buf[_u(p)] - 1.0
    x2 = 2.0 * buf[_u(p + 1)] - 1.0
    r2 = x1 * x1 + x2 * x2
    return np.uint64((r2 < 1.0) & (r2 != 0.0))


@njit(cache=True, nogil=True)
def accept_bits(buf: np.ndarray, start: int, stop: int, bits: np.ndarray) -> None:
    """For the 128-position chunks from start (a multiple of 128) up to stop: bit (p >> 1) & 63 of word
    2 (p >> 7) + (p & 1) says whether numpy's polar method accepts the pair (buf[p], buf[p + 1]), 0 < r2 < 1
    computed as numpy computes it; positions from len(buf) - 1 on are set (sentinels). The parse then finds the
    next accepted pair of a parity with one trailing-zero count instead of a branch per pair (a branch that
    mispredicts on every fifth pair)."""
    n = buf.shape[0]
    for ch in range(start >> 7, (stop + 127) >> 7):
        base = ch << 7
        even, odd = np.uint64(0), np.uint64(0)
        if base + 129 < n:
            for i in range(64):
                p = base + 2 * i
                x0, x1, x2 = 2.0 * buf[_u(p)] - 1.0, 2.0 * buf[_u(p + 1)] - 1.0, 2.0 * buf[_u(p + 2)] - 1.0
                r_even, r_odd = x0 * x0 + x1 * x1, x1 * x1 + x2 * x2
                even |= np.uint64((r_even < 1.0) & (r_even != 0.0)) << np.uint64(i)
                odd |= np.uint64((r_odd < 1.0) & (r_odd != 0.0)) << np.uint64(i)
        else:
            for i in range(64):
                even |= _pair_accepted(buf, base + 2 * i, n) << np.uint64(i)
                odd |= _pair_accepted(buf, base + 2 * i + 1, n) << np.uint64(i)
        bits[_u(2 * ch)], bits[_u(2 * ch + 1)] = even, odd
    last = (n - 1) >> 7
    if (stop + 127) >> 7 > last:  # the buffer's last chunk was written: a chunk of sentinels beyond it
        bits[_u(2 * last + 2)], bits[_u(2 * last + 3)] = ~np.uint64(0), ~np.uint64(0)


@njit(cache=True, nogil=True, inline="always")
def _next_accepted(bits: np.ndarray, p: int) -> int:
    """The first position q >= p of p's parity whose pair numpy accepts (``accept_bits``)."""
    par, i = p & 1, p >> 1
    k = i >> 6
    word = bits[_u(2 * k + par)] >> np.uint64(i & 63)
    while word == 0:  # rare: no accepted pair in the rest of this word
        k += 1
        i = k << 6
        word = bits[_u(2 * k + par)]
    return 2 * (i + np.int64(trailing_zeros(word))) + par


@njit(cache=True, nogil=True, inline="always")
def _parse(buf, bits, p, h, jc, ct, j0, r2s, tt, t1, uu, pu, sq):
    """Stream positions of gammas j0.. of a row if each accepts its first Gaussian and its first uniform (as
    ``legacy_rng._parse``; the polar pairs numpy rejects are skipped with ``bits``), recording for gamma j: r2s[j]
    its pair's r2, tt[j] the factor its Gaussian multiplies f by (x2 of a fresh pair, x1 of a cached one), t1[j]
    its fresh pair's x1, uu[j]/pu[j] its uniform and its position, sq[j] its pair's position (-2: the pair of
    gamma jc, cached within the row; -1: the Gaussian carried in, with factor ``ct``). Returns (p, h, jc); p = -1
    when the buffer ran out."""
    end = buf.shape[0]
    for j in range(j0, r2s.shape[0]):
        k = _u(j)
        if h:
            if jc >= 0:
                r2s[k], tt[k], sq[k] = r2s[_u(jc)], t1[_u(jc)], -2
            else:
                r2s[k], tt[k], sq[k] = 0.5, ct, -1  # (r2 unused: x comes from the carry)
            h = 0
        else:
            q = _next_accepted(bits, p)
            if q + 2 > end:
                return -1, h, jc
            x1 = 2.0 * buf[_u(q)] - 1.0
            x2 = 2.0 * buf[_u(q + 1)] - 1.0
            p = q + 2
            r2s[k], tt[k], t1[k], sq[k] = x1 * x1 + x2 * x2, x2, x1, q
            h, jc = 1, j
        if p + 1 > end:
            return -1, h, jc
        uu[k] = buf[_u(p)]
        pu[k] = p
        p += 1
    return p, h, jc


@njit(cache=True, nogil=True, inline="always", error_model="numpy")
def _screen(c, j0, r2s, tt, uu, sq, cx, xs, sure, flag, eps):
    """x_hat of gammas j0.. into ``xs`` (SIMD), and the list ``flag`` of those the margins do not prove accepted by
    numpy's v > 0 and squeeze tests. ``cx``: x_hat of the carried Gaussian. Returns the number flagged."""
    n_g = r2s.shape[0]
    for j in range(j0, n_g):
        xs[_u(j)] = _f_hat(r2s[_u(j)]) * tt[_u(j)]
    if sq[_u(j0)] == -1:
        xs[_u(j0)] = cx
    for j in range(j0, n_g):
        x = xs[_u(j)]
        v = 1.0 + c[_u(j)] * x
        x4 = (x * x) * (x * x)
        s = 1.0 - 0.0331 * x4
        sure[_u(j)] = (v > 1e-6) & (uu[_u(j)] < s - (0.0331 * x4 * (5.0 * eps) + 1e-15))
    n_f = 0
    for j in range(j0, n_g):
        flag[_u(n_f)] = j
        n_f += 1 - np.int64(sure[_u(j)])
    return n_f


@njit(cache=True, nogil=True, inline="always")
def _exact_test(b, c, j, j0, r2s, tt, uu, sq, cr2, ct, xs):
    """numpy's tests for gamma j on its exact x (stored in xs[j]): True where numpy rejects it (v <= 0, or the
    squeeze and the log test both fail). The carried Gaussian (sq = -1) is f(cr2) ct, or ct itself if cr2 < 0."""
    if j == j0 and sq[j] == -1:
        x = polar_f(cr2) * ct if cr2 >= 0.0 else ct
    else:
        x = polar_f(r2s[j]) * tt[j]
    xs[j] = x
    return gamma_rejected(x, uu[j], b[j], c[j])


@njit(cache=True, nogil=True, inline="always", error_model="numpy")
def _first_rejection(b, c, j0, r2s, tt, uu, sq, cr2, ct, xs, flag, n_f, eps):
    """The first flagged gamma numpy rejects, or -1. Where the squeeze surely fails, numpy's log test is decided
    from log_approx if its margin m exceeds the bound on the error of both sides: |ln u| REL_ERR for the left; for
    the right x^2/2 (2 eps + roundings) and b (2 v^3 dv + roundings of 1 - v^3 and ln v^3), dv = 3 c |x| eps / v
    + 2e-15 the relative error of v^3; all four times. Anything else is tested exactly."""
    for t in range(n_f):
        j = flag[t]
        x = xs[j]
        v = 1.0 + c[j] * x
        u = uu[j]
        if v > 1e-6 and u > 0.0:
            x4 = (x * x) * (x * x)
            if u > 1.0 - 0.0331 * x4 + (0.0331 * x4 * (5.0 * eps) + 1e-15):
                vv = v * v * v
                lu, lv = log_approx(u), log_approx(vv)
                half = 0.5 * x * x
                rhs = half + b[j] * (1.0 - vv + lv)
                dv = 3.0 * c[j] * abs(x) * eps / v + 2e-15
                m = 4.0 * ((REL_ERR + 1e-15) * (abs(lu) + half + abs(rhs)) + 2.0 * eps * half
                           + b[j] * (2.0 * vv * dv + 2e-15 * (abs(1.0 - vv) + abs(lv))))
                if lu < rhs - m:
                    continue
                if lu > rhs + m:
                    return j
        if _exact_test(b, c, j, j0, r2s, tt, uu, sq, cr2, ct, xs):
            return j
    return -1


@njit(cache=True, nogil=True, error_model="numpy")
def consume_rows_certified(buf: np.ndarray, bits: np.ndarray, p: int, b: np.ndarray, c: np.ndarray,
                           gauss: np.ndarray, has_gauss: np.ndarray, rows: int, gammas: np.ndarray, out: np.ndarray,
                           eps: float) -> None:
    """``legacy_rng.consume_rows`` with each gamma's Gaussian x_hat (within ``eps`` |x| of numpy's; exact where a
    test was decided exactly) in ``gammas[r]``, and numpy's accept/reject decisions made exactly as numpy makes
    them (module docstring); ``bits``: ``accept_bits`` of ``buf`` from p on. The stream position, the cached Gaussian handed back in ``gauss``/``has_gauss``
    (exact) and the roll-back of an unfinished row are as there. out[:] = (rows drawn, next p)."""
    n_g = b.shape[0]
    r2s, tt, t1, uu = np.empty(n_g), np.empty(n_g), np.empty(n_g), np.empty(n_g)
    pu, sq, flag = np.empty(n_g, np.int64), np.empty(n_g, np.int64), np.empty(n_g, np.int64)
    sure = np.empty(n_g, np.bool_)
    i, h = 0, has_gauss[0]
    cr2, ct, cx = -1.0, gauss[0], gauss[0]  # the carried Gaussian: its pair's r2 (-1: ct is its exact value), t, x_hat
    rows = min(rows, gammas.shape[0])
    while i < rows:
        p0, h0, cr20, ct0, cx0 = p, h, cr2, ct, cx
        xs = gammas[i]
        j0, jc = 0, -1
        while True:
            p, h, jc = _parse(buf, bits, p, h, jc, ct, j0, r2s, tt, t1, uu, pu, sq)
            if p < 0:
                break
            n_f = _screen(c, j0, r2s, tt, uu, sq, cx, xs, sure, flag, eps)
            bad = _first_rejection(b, c, j0, r2s, tt, uu, sq, cr2, ct, xs, flag, n_f, eps)
            if bad < 0:
                break
            # re-parse from gamma `bad` with numpy's state after its Gaussian (and its uniform unless v <= 0)
            j0 = bad
            p = pu[bad] if 1.0 + c[bad] * xs[bad] <= 0.0 else pu[bad] + 1
            if sq[bad] >= 0:  # a fresh pair: its x1 Gaussian is cached again
                h, jc = 1, -1
                cr2, ct = r2s[bad], t1[bad]
                cx = _f_hat(cr2) * ct
            else:
                h = 0
        if p < 0:
            p, h, cr2, ct, cx = p0, h0, cr20, ct0, cx0
            break
        if h and jc >= 0:
            cr2, ct = r2s[jc], t1[jc]
            cx = _f_hat(cr2) * ct
        i += 1
    has_gauss[0], gauss[0] = h, (polar_f(cr2) * ct if cr2 >= 0.0 else ct) if h else 0.0
    out[0], out[1] = i, p


@njit(cache=True, nogil=True, error_model="numpy")
def rank_rows_certified(gammas: np.ndarray, n: int, b: np.ndarray, c: np.ndarray, counts: np.ndarray,
                        eps: float) -> bool:
    """counts[a, k] += 1 where item a takes the (k+1)-th largest beta of a row of ``gammas[:n]`` (x_hat values
    from ``consume_rows_certified``), for rows whose top k the error bounds certify (module docstring). Returns
    False at the first row they do not (the counts are then incomplete: the caller starts again exactly)."""
    n_items, k_max = gammas.shape[1] // 2, counts.shape[1]
    row, err, hi = np.empty(n_items), np.empty(n_items), np.empty(n_items)
    top = np.empty(k_max, dtype=np.int64)
    for r in range(n):
        for a in range(n_items):
            ia, ib = _u(2 * a), _u(2 * a + 1)
            xa, xb = gammas[r, ia], gammas[r, ib]
            beta = item_beta(b[ia], c[ia], xa, b[ib], c[ib], xb)
            da, db = c[ia] * abs(xa) * eps / (1.0 + c[ia] * xa), c[ib] * abs(xb) * eps / (1.0 + c[ib] * xb)
            e = beta * (6.0 * (da + db) + 4e-15)
            row[_u(a)], err[_u(a)], hi[_u(a)] = beta, e, beta + e
        row_top_k(row, top)
        for k in range(k_max - 1):
            if not row[top[k]] - err[top[k]] > hi[top[k + 1]]:
                return False
        last = row[top[k_max - 1]] - err[top[k_max - 1]]
        for k in range(k_max):
            hi[top[k]] = -np.inf
        for a in range(n_items):
            if not hi[a] < last:
                return False
        for k in range(k_max):
            counts[top[k], k] += 1
    return True
