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
from numba import njit, prange

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


@njit(cache=True, inline="always")
def _gamma(shape: float, buf: np.ndarray, p: int, end: int, has_gauss: int, gauss: float
           ) -> tuple[float, int, int, float]:
    """numpy's legacy_standard_gamma for shape > 1 (Marsaglia & Tsang 2000) with the polar Gaussian
    (legacy_gauss, its cached second value ``gauss`` when ``has_gauss``), uniforms ``buf[p:end]``. Returns
    (value, next p, has_gauss, gauss), with p = -1 when the buffer ran out (the caller rolls the row back)."""
    bb = shape - 1.0 / 3.0
    c = 1.0 / math.sqrt(9 * bb)
    while True:
        while True:
            if has_gauss:
                x = gauss
                has_gauss = 0
                gauss = 0.0
            else:
                while True:
                    if p + 2 > end:
                        return math.nan, -1, has_gauss, gauss
                    x1 = 2.0 * buf[p] - 1.0
                    x2 = 2.0 * buf[p + 1] - 1.0
                    p += 2
                    r2 = x1 * x1 + x2 * x2
                    if r2 < 1.0 and r2 != 0.0:
                        break
                f = math.sqrt(-2.0 * math.log(r2) / r2)
                gauss = f * x1
                has_gauss = 1
                x = f * x2
            v = 1.0 + c * x
            if v > 0.0:
                break
        v = v * v * v
        if p + 1 > end:
            return math.nan, -1, has_gauss, gauss
        u = buf[p]
        p += 1
        if u < 1.0 - 0.0331 * (x * x) * (x * x):
            return bb * v, p, has_gauss, gauss
        if math.log(u) < 0.5 * x * x + bb * (1.0 - v + math.log(v)):
            return bb * v, p, has_gauss, gauss


@njit(cache=True)
def consume_rows(buf: np.ndarray, p: int, alpha: np.ndarray, beta: np.ndarray, gauss: np.ndarray,
                 has_gauss: np.ndarray, first: int, rows: int, sink: np.ndarray, counts: np.ndarray,
                 out: np.ndarray) -> None:
    """Draw rows first, first + 1, ... (< rows) of Beta(alpha[a], beta[a]) = Ga / (Ga + Gb) (numpy's
    legacy_beta, shapes > 1) from the uniforms ``buf[p:]`` until the rows are done or the buffer runs out
    mid-row; that row is rolled back (uniform position and Gaussian cache as at its start), so a later call
    with more uniforms redraws it identically. Each row goes to ``counts`` (which items take the k largest
    values) or, with ``counts`` of width 0, into ``sink[row]``. out[:] = (rows drawn, next p)."""
    n_items, end, k_max = alpha.shape[0], buf.shape[0], counts.shape[1]
    row = np.empty(n_items)
    top = np.empty(max(k_max, 1), dtype=np.int64)
    i, h, g = first, has_gauss[0], gauss[0]
    while i < rows:
        p0, h0, g0 = p, h, g
        for a in range(n_items):
            gb = 0.0
            ga, p, h, g = _gamma(alpha[a], buf, p, end, h, g)
            if p >= 0:
                gb, p, h, g = _gamma(beta[a], buf, p, end, h, g)
            if p < 0:
                break
            row[a] = ga / (ga + gb)
        if p < 0:
            p, h, g = p0, h0, g0
            break
        if k_max == 0:
            sink[i, :] = row
        else:
            count_row_top(row, top, counts)
        i += 1
    has_gauss[0], gauss[0] = h, g
    out[0], out[1] = i - first, p


@njit(cache=True, parallel=True)
def _fill_and_consume(key: np.ndarray, pos: np.ndarray, nxt: np.ndarray, cur: np.ndarray, p: int,
                      alpha: np.ndarray, beta: np.ndarray, gauss: np.ndarray, has_gauss: np.ndarray, first: int,
                      rows: int, sink: np.ndarray, counts: np.ndarray, out: np.ndarray) -> None:
    """Two tasks at once (numba threads): generate the next block of uniforms into ``nxt`` while the rows
    consume the current block ``cur[p:]``. The uniform stream is a fixed sequence, so generating it ahead
    changes no draw."""
    for task in prange(2):
        if task == 0:
            fill_doubles(key, pos, nxt)
        else:
            consume_rows(cur, p, alpha, beta, gauss, has_gauss, first, rows, sink, counts, out)


def beta_rows(key: np.ndarray, ints: np.ndarray, cached: np.ndarray, alpha: np.ndarray, beta: np.ndarray,
              rows: int, sink: np.ndarray, counts: np.ndarray, block: int = 1 << 20) -> None:
    """Draw ``rows`` rows of Beta(alpha[a], beta[a]) (shapes > 1) in numpy's order and hand each to the sink:
    with ``counts`` of shape (n_items, k) non-empty, count which items take the k largest values (Bernoulli-TS
    slates); else copy the rows into ``sink`` (rows, n_items). ``key``/``ints``/``cached``: ``state_of``.

    Uniforms come in blocks of ``block`` legacy_doubles: while one thread draws rows from block b, another
    generates block b + 1 (MT19937 is ~40% of the work). The uniforms a rolled-back row left unused are
    carried to the front of the next block, so the stream is consumed exactly as numpy consumes it."""
    pos, has_gauss, gauss = ints[:1].copy(), ints[1:2].copy(), cached[:1].copy()
    carry = block  # room in front of each block for the uniforms the previous block left unused
    cur, nxt = np.empty(carry + block), np.empty(carry + block)
    fill_doubles(key, pos, cur[carry:])
    p, done, out = carry, 0, np.zeros(2, dtype=np.int64)
    while done < rows:
        _fill_and_consume(key, pos, nxt[carry:], cur, p, alpha, beta, gauss, has_gauss, done, rows, sink,
                          counts, out)
        done, left = done + int(out[0]), cur.shape[0] - int(out[1])
        old, fresh = cur, nxt
        if left > carry:  # one row needed more uniforms than a block holds: widen the carry room
            carry = 2 * left
            cur, nxt = np.empty(carry + block), np.empty(carry + block)
            cur[carry:] = fresh[fresh.shape[0] - block:]
        else:
            cur, nxt = fresh, old
        cur[carry - left:carry] = old[old.shape[0] - left:]
        p = carry - left
