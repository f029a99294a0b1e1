"""numba port of the part of numpy's legacy ``RandomState`` that Bernoulli-TS simulation uses: MT19937 draws,
``legacy_double``, the polar Gaussian with its cached second value, Marsaglia-Tsang gamma for shape > 1 and
beta as Ga / (Ga + Gb), all in numpy's order (numpy/random/src/mt19937/mt19937.c, numpy/random/src/legacy/
legacy-distributions.c). Starting from ``RandomState(seed).get_state()`` it yields exactly the draws of
``RandomState(seed).beta(alpha, beta, size=(m, len(alpha)))`` (tests compare them bit for bit), without
allocating them: each row of draws is consumed in place by the caller's kernel.

Speed without changing a bit:
- MT19937's regeneration is written as loops LLVM vectorises, and words are tempered 624 at a time.
- Two numba threads pipeline the blocks of uniforms: one generates block t + 1 and ranks the rows of block t - 1
  while the other draws the gammas of block t. The whole loop runs without the GIL.
- A row's gammas are drawn speculatively (``consume_rows``): first the uniform stream is parsed as if every
  gamma accepted its first Gaussian and its first uniform (cheap: only the polar test decides); then the values
  are computed in a loop whose iterations do not depend on each other's outcome; then the few gammas whose
  squeeze test failed get numpy's log test. At the first rejection the row is re-parsed from that gamma with the
  stream position and Gaussian cache numpy would have there. The same draws come out in the same order.

Slates (counts of the k largest per row) are first counted by ``recux.ope.certified_rows`` from draws computed
with a fast logarithm and certified by error bounds; the exact kernels here then serve rows written out, the
rare uncertified pass, and as the reference the tests hold both to.

Only shapes > 1 are ported (the Open Bandit Dataset's priors have alpha >= 2 and beta >= 2,189); callers fall
back to numpy otherwise (``supported``).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from recux.ope.certified_rows import (
    EPS_X,
    accept_bits,
    bits_words,
    consume_rows_certified,
    rank_rows_certified,
)
from recux.ope.draw_rules import count_row_top, gamma_rejected, item_beta, polar_f

_N, _M = 624, 397
_MATRIX_A = np.uint32(0x9908B0DF)
_UPPER, _LOWER = np.uint32(0x80000000), np.uint32(0x7FFFFFFF)
_U0, _U1 = np.uint32(0), np.uint32(1)


def supported(alpha: np.ndarray, beta: np.ndarray) -> bool:
    return bool(np.all(alpha > 1.0) and np.all(beta > 1.0))


def state_of(rng: np.random.RandomState) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(key uint32[624], [pos, has_gauss] int64, [gauss] float64) of a legacy RandomState."""
    name, key, pos, has_gauss, gauss = rng.get_state()
    if name != "MT19937":
        raise ValueError(f"expected an MT19937 RandomState, got {name}")
    return np.array(key, dtype=np.uint32), np.array([pos, has_gauss], dtype=np.int64), np.array([gauss])


def gamma_constants(alpha: np.ndarray, beta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(b, c) of Marsaglia-Tsang for the row's gammas in draw order (Ga of item 0, Gb of item 0, Ga of item 1, ...):
    b = shape - 1/3, c = 1 / sqrt(9 b), computed as numpy computes them."""
    shapes = np.empty(2 * len(alpha))
    shapes[0::2], shapes[1::2] = alpha, beta
    b = shapes - 1.0 / 3.0
    return b, 1.0 / np.sqrt(9 * b)


@njit(cache=True, nogil=True)
def _twist(key: np.ndarray) -> None:
    """MT19937's regeneration of the 624 words: key[i] = key[i + 397 mod 624] ^ (y >> 1) ^ (MATRIX_A if y odd),
    y = upper bit of key[i] | lower 31 bits of key[i + 1 mod 624]. Split into loops without a wrapped index so
    that LLVM vectorises them: the first reads only words not yet rewritten, the second words rewritten >= 227
    steps earlier."""
    for i in range(_N - _M):
        y = (key[i] & _UPPER) | (key[i + 1] & _LOWER)
        key[i] = key[i + _M] ^ (y >> _U1) ^ ((_U0 - (y & _U1)) & _MATRIX_A)
    for i in range(_N - _M, _N - 1):
        y = (key[i] & _UPPER) | (key[i + 1] & _LOWER)
        key[i] = key[i + _M - _N] ^ (y >> _U1) ^ ((_U0 - (y & _U1)) & _MATRIX_A)
    y = (key[_N - 1] & _UPPER) | (key[0] & _LOWER)
    key[_N - 1] = key[_M - 1] ^ (y >> _U1) ^ ((_U0 - (y & _U1)) & _MATRIX_A)


@njit(cache=True, nogil=True)
def _temper(key: np.ndarray, start: int, words: np.ndarray) -> None:
    """words[i] = MT19937's tempering of key[i], i >= start."""
    for i in range(start, _N):  # unsigned indices: no wrap-around check, so the loop vectorises
        y = key[np.uint64(i)]
        y ^= y >> np.uint32(11)
        y ^= (y << np.uint32(7)) & np.uint32(0x9D2C5680)
        y ^= (y << np.uint32(15)) & np.uint32(0xEFC60000)
        y ^= y >> np.uint32(18)
        words[np.uint64(i)] = y


@njit(cache=True, nogil=True, inline="always")
def _legacy_double(a: np.uint32, b: np.uint32) -> float:
    return (float(a >> np.uint32(5)) * 67108864.0 + float(b >> np.uint32(6))) / 9007199254740992.0


@njit(cache=True, nogil=True)
def fill_doubles(key: np.ndarray, ints: np.ndarray, out: np.ndarray) -> None:
    """out[:] = the next len(out) ``legacy_double`` values: (a * 2^26 + b) / 2^53 with a, b the next two tempered
    MT19937 words shifted right by 5 and 6. ``ints[0]``: the position in ``key`` (624 = regenerate first)."""
    words = np.empty(_N, dtype=np.uint32)
    n, o, pos = out.shape[0], 0, ints[0]
    while o < n:
        if pos >= _N:
            _twist(key)
            pos = 0
        _temper(key, pos, words)
        pairs = min((_N - pos) // 2, n - o)
        for k in range(pairs):
            out[np.uint64(o + k)] = _legacy_double(words[np.uint64(pos + 2 * k)], words[np.uint64(pos + 2 * k + 1)])
        o, pos = o + pairs, pos + 2 * pairs
        if o < n and pos == _N - 1:  # a double whose two words straddle a regeneration
            first = words[pos]
            _twist(key)
            _temper(key, 0, words)
            out[o] = _legacy_double(first, words[0])
            o, pos = o + 1, 1
    ints[0] = pos


@njit(cache=True, nogil=True, inline="always")
def _pair_f(buf: np.ndarray, q: int) -> float:
    """f = sqrt(-2 ln r2 / r2) of numpy's legacy_gauss for the accepted polar pair buf[q], buf[q + 1]
    (x1 = 2 u - 1, r2 = x1^2 + x2^2): it returns f x2 and caches f x1."""
    x1 = 2.0 * buf[q] - 1.0
    x2 = 2.0 * buf[q + 1] - 1.0
    return polar_f(x1 * x1 + x2 * x2)


@njit(cache=True, nogil=True, inline="always")
def _parse(buf: np.ndarray, p: int, h: int, cq: int, j0: int, src_q: np.ndarray, src_w: np.ndarray,
           pu: np.ndarray) -> tuple[int, int, int]:
    """Stream positions of gammas j0.. of a row if each accepts its first Gaussian and its first uniform:
    src_q[j] the polar pair of its Gaussian (-1: the cached value carried in from before the buffer), src_w[j]
    1 = that pair's first Gaussian (f x2), 0 = its cached second (f x1); pu[j] its uniform. ``h``/``cq``: a
    cached Gaussian is waiting, from pair cq. Returns (p, h, cq); p = -1 when the buffer ran out."""
    end = buf.shape[0]
    for j in range(j0, src_q.shape[0]):
        if h:
            src_q[j], src_w[j], h = cq, 0, 0
        else:
            while True:  # numpy's polar method: pairs until 0 < r2 < 1
                if p + 2 > end:
                    return -1, h, cq
                x1 = 2.0 * buf[p] - 1.0
                x2 = 2.0 * buf[p + 1] - 1.0
                p += 2
                r2 = x1 * x1 + x2 * x2
                if r2 < 1.0 and r2 != 0.0:
                    break
            cq, h = p - 2, 1
            src_q[j], src_w[j] = cq, 1
        if p + 1 > end:
            return -1, h, cq
        pu[j] = p
        p += 1
    return p, h, cq


@njit(cache=True, nogil=True, inline="always")
def _gaussians(buf: np.ndarray, c: np.ndarray, j0: int, src_q: np.ndarray, src_w: np.ndarray, pu: np.ndarray,
               f: float, x_in: float, fr: np.ndarray, xs: np.ndarray, flag: np.ndarray) -> tuple[int, float]:
    """The Gaussians x of the parsed gammas j0.. (into ``xs``) and the list of the gammas that need numpy's
    further tests: v = 1 + c x <= 0 (a new Gaussian) or the squeeze u < 1 - 0.0331 x^4 failing (the log test).
    First the fresh pairs' f (independent iterations), then x = f (2 u - 1) of the pair's second uniform (fresh)
    or first (cached) as numpy computes f x2 and f x1. ``f``: the cached Gaussian's pair's f; ``x_in``: the value
    of a cached Gaussian that came in with the state (src_q = -1). Returns (number flagged, the last pair's f).
    The gamma's value b (1 + c x)^3 is left to ``rank_rows`` (another thread)."""
    for j in range(j0, src_q.shape[0]):
        if src_w[j] == 1:
            fr[j] = _pair_f(buf, src_q[j])
    n_f = 0
    for j in range(j0, src_q.shape[0]):
        q, w = src_q[j], src_w[j]
        f = fr[j] if w == 1 else f
        x = f * (2.0 * buf[q + w] - 1.0) if q >= 0 else x_in
        v = 1.0 + c[j] * x
        u = buf[pu[j]]
        ok = (v > 0.0) & (u < 1.0 - 0.0331 * (x * x) * (x * x))
        xs[j] = x
        flag[n_f] = j
        n_f += 1 - np.int64(ok)
    return n_f, f


@njit(cache=True, nogil=True, inline="always")
def _first_rejection(buf: np.ndarray, b: np.ndarray, c: np.ndarray, pu: np.ndarray, xs: np.ndarray,
                     flag: np.ndarray, n_f: int) -> int:
    """The first flagged gamma numpy rejects (v <= 0, or log u >= x^2 / 2 + b (1 - v^3 + ln v^3)), or -1."""
    for t in range(n_f):
        j = flag[t]
        if gamma_rejected(xs[j], buf[pu[j]], b[j], c[j]):
            return j
    return -1


@njit(cache=True, nogil=True)
def consume_rows(buf: np.ndarray, p: int, b: np.ndarray, c: np.ndarray, gauss: np.ndarray,
                 has_gauss: np.ndarray, rows: int, gammas: np.ndarray, out: np.ndarray) -> None:
    """Draw up to ``rows`` rows of gammas (Ga, Gb of item 0, Ga, Gb of item 1, ...: numpy's legacy_beta for
    shapes > 1 draws Ga then Gb; ``b``, ``c``: ``gamma_constants``), each given by the Gaussian x its accepted
    draw used (the gamma is b (1 + c x)^3: ``rank_rows``), into ``gammas[r]`` from the uniforms
    ``buf[p:]``, until the rows are done, ``gammas`` is full or the buffer runs out mid-row; that row is rolled
    back (uniform position and Gaussian cache as at its start), so a later call with more uniforms redraws it
    identically. out[:] = (rows drawn, next p)."""
    n_g = b.shape[0]
    src_q, src_w, pu = np.empty(n_g, np.int64), np.empty(n_g, np.int64), np.empty(n_g, np.int64)
    fr, flag = np.empty(n_g), np.empty(n_g, np.int64)
    i, h, x_in = 0, has_gauss[0], gauss[0]
    cq, f = -1, 0.0  # the cached Gaussian's pair and its f; cq = -1: x_in came in with the state
    rows = min(rows, gammas.shape[0])
    while i < rows:
        p0, h0, cq0, f0 = p, h, cq, f
        xs = gammas[i]
        j0 = 0
        while True:
            p, h, cq = _parse(buf, p, h, cq, j0, src_q, src_w, pu)
            if p < 0:
                break
            n_f, f_last = _gaussians(buf, c, j0, src_q, src_w, pu, f, x_in, fr, xs, flag)
            bad = _first_rejection(buf, b, c, pu, xs, flag, n_f)
            if bad < 0:
                f = f_last
                break
            # re-parse from gamma `bad` with numpy's state after its Gaussian (and its uniform unless v <= 0)
            j0 = bad
            p = pu[bad] if 1.0 + c[bad] * xs[bad] <= 0.0 else pu[bad] + 1
            if src_w[bad] == 1:  # its pair's second Gaussian is cached again
                h, cq, f = 1, src_q[bad], fr[bad]
            else:
                h = 0
        if p < 0:
            p, h, cq, f = p0, h0, cq0, f0
            break
        if cq >= 0:
            x_in = 0.0  # the state's own cached Gaussian has been used
        i += 1
    if h and cq >= 0:
        x_in = f * (2.0 * buf[cq] - 1.0)
    has_gauss[0], gauss[0] = h, x_in if h else 0.0
    out[0], out[1] = i, p


@njit(cache=True, nogil=True)
def rank_rows(gammas: np.ndarray, n: int, first: int, b: np.ndarray, c: np.ndarray, sink: np.ndarray,
              counts: np.ndarray) -> None:
    """Beta rows Ga / (Ga + Gb) of ``gammas[:n]`` (``consume_rows``: each gamma's Gaussian x; the gamma is
    b (1 + c x)^3 computed as numpy's legacy_standard_gamma does, (v * v) * v): with ``counts`` of width k > 0,
    count which items take the k largest values of each row; else write the rows to sink[first:first + n]."""
    n_items, k_max = gammas.shape[1] // 2, counts.shape[1]
    row = np.empty(n_items)
    top = np.empty(max(k_max, 1), dtype=np.int64)
    for r in range(n):
        for a in range(n_items):
            row[a] = item_beta(b[2 * a], c[2 * a], gammas[r, 2 * a], b[2 * a + 1], c[2 * a + 1], gammas[r, 2 * a + 1])
        if k_max == 0:
            sink[first + r, :] = row
        else:
            count_row_top(row, top, counts)


@njit(cache=True, parallel=True, nogil=True)
def _pipeline_step(key: np.ndarray, pos: np.ndarray, nxt: np.ndarray, carry: int, cur: np.ndarray, p: int,
                   nxt_bits: np.ndarray, cur_bits: np.ndarray, b: np.ndarray, c: np.ndarray, gauss: np.ndarray,
                   has_gauss: np.ndarray, rows: int, gammas: np.ndarray, out: np.ndarray, prev: np.ndarray,
                   n_prev: int, first_prev: int, sink: np.ndarray, counts: np.ndarray, eps: float) -> None:
    """Two numba threads: one generates the next block of uniforms into ``nxt[carry:]`` and ranks the previous
    block's gamma rows; the other draws this block's gamma rows from ``cur[p:]``. The uniform stream is a fixed
    sequence, so generating it ahead changes no draw. eps > 0: certified slates (``recux.ope.certified_rows``;
    the generating thread also marks the next block's accepted polar pairs in ``nxt_bits``); out[2] = 0 once a
    row cannot be certified."""
    for task in prange(2):
        if task == 0:
            fill_doubles(key, pos, nxt[carry:])
            if eps <= 0.0:
                rank_rows(prev, n_prev, first_prev, b, c, sink, counts)
            else:
                accept_bits(nxt, carry, nxt.shape[0], nxt_bits)
                if out[2] and not rank_rows_certified(prev, n_prev, b, c, counts, eps):
                    out[2] = 0
        elif eps <= 0.0:
            consume_rows(cur, p, b, c, gauss, has_gauss, rows, gammas, out)
        else:
            consume_rows_certified(cur, cur_bits, p, b, c, gauss, has_gauss, rows, gammas, out, eps)


def beta_rows(key: np.ndarray, ints: np.ndarray, cached: np.ndarray, alpha: np.ndarray, beta: np.ndarray,
              rows: int, sink: np.ndarray, counts: np.ndarray, block: int = 1 << 21, eps: float = EPS_X) -> bool:
    """Draw ``rows`` rows of Beta(alpha[a], beta[a]) (shapes > 1) in numpy's order and hand each to the sink:
    with ``counts`` of shape (n_items, k) non-empty, count which items take the k largest values (Bernoulli-TS
    slates); else copy the rows into ``sink`` (rows, n_items). ``key``/``ints``/``cached``: ``state_of``.
    Slates are first counted from certified approximations (``recux.ope.certified_rows``, error bound ``eps``
    on each Gaussian); should a row not be certified, everything is recomputed exactly (eps <= 0: exactly at
    once). Returns whether the certified pass stood. Compiled without the GIL: another Python thread runs
    meanwhile (``recux.ope.protocol`` fits reward models)."""
    b, c = gamma_constants(alpha, beta)
    if counts.shape[1] > 0 and eps > 0.0:
        trial = counts.copy()
        if _beta_rows(key.copy(), ints[:1].copy(), ints[1:2].copy(), cached[:1].copy(), b, c, int(rows), sink,
                      trial, int(block), float(eps)):
            counts[:] = trial
            return True
    _beta_rows(key, ints[:1].copy(), ints[1:2].copy(), cached[:1].copy(), b, c, int(rows), sink, counts, int(block),
               0.0)
    return False


@njit(cache=True, nogil=True)
def _buffers(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Two uniform buffers of n doubles and their ``accept_bits`` words."""
    return np.empty(n), np.empty(n), np.empty(bits_words(n), np.uint64), np.empty(bits_words(n), np.uint64)


@njit(cache=True, nogil=True)
def _beta_rows(key: np.ndarray, pos: np.ndarray, has_gauss: np.ndarray, gauss: np.ndarray, b: np.ndarray,
               c: np.ndarray, rows: int, sink: np.ndarray, counts: np.ndarray, block: int, eps: float) -> bool:
    """Uniforms come in blocks of ``block`` legacy_doubles, processed in a pipeline: while one thread draws the
    gamma rows of block t, the other generates block t + 1 and ranks the rows of block t - 1. The uniforms a
    rolled-back row left unused are carried to the front of the next block, so the stream is consumed exactly
    as numpy consumes it. Returns False if a certified pass (eps > 0) met a row it could not certify."""
    n_g = b.shape[0]
    carry = 4096  # room in front of each block for the uniforms the previous block left unused (grows; k * 128)
    cur, nxt, cur_bits, nxt_bits = _buffers(carry + block)
    fill_doubles(key, pos, cur[carry:])
    if eps > 0.0:
        accept_bits(cur, carry, cur.shape[0], cur_bits)
    # each gamma takes >= 1 uniform, so a block holds at most (carry + block) / n_g rows
    gam, prev = np.empty(((carry + block) // n_g + 1, n_g)), np.empty(((carry + block) // n_g + 1, n_g))
    p, done, n_prev, out = carry, 0, 0, np.ones(3, dtype=np.int64)
    while done < rows and out[2]:
        _pipeline_step(key, pos, nxt, carry, cur, p, nxt_bits, cur_bits, b, c, gauss, has_gauss, rows - done, gam,
                       out, prev, n_prev, done - n_prev, sink, counts, eps)
        n_prev, done, left = out[0], done + out[0], cur.shape[0] - out[1]
        gam, prev = prev, gam
        old, fresh = cur, nxt
        cur_bits, nxt_bits = nxt_bits, cur_bits
        if left > carry:  # one row needed more uniforms than a block holds: widen the carry room
            carry = (2 * left + 127) // 128 * 128
            cur, nxt, cur_bits, nxt_bits = _buffers(carry + block)
            cur[carry:] = fresh[fresh.shape[0] - block:]
            if eps > 0.0:
                accept_bits(cur, carry, cur.shape[0], cur_bits)
            gam = np.empty(((carry + block) // n_g + 1, n_g))
        else:
            cur, nxt = fresh, old
        cur[carry - left:carry] = old[old.shape[0] - left:]
        p = carry - left
        if eps > 0.0 and left > 0:
            accept_bits(cur, (p >> 7) << 7, carry, cur_bits)  # the carried uniforms' chunks
    if eps <= 0.0:
        rank_rows(prev, n_prev, done - n_prev, b, c, sink, counts)
        return True
    return bool(out[2]) and rank_rows_certified(prev, n_prev, b, c, counts, eps)
