"""The replay task's request stream: the test period of a time-ordered split as requests in timestamp order,
each request's history (what the model may condition on), its windows, and serving the requests through a
fitted model one micro-batch at a time. Pure numpy over the split's code space.

A request is one (user, timestamp) pair of the test part; its targets are every test item of that user at that
timestamp (the "next item(s)"). Its history is every row of the user in train + valid + test strictly before
the timestamp: the model conditions on it (``Recommender.condition_on``) and it is masked from the ranking (the
user already consumed it). Rows at the request's own timestamp or later are never in it (no leakage). Requests
are replayed in (timestamp, user code) order.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from recux.data import Interactions, Split
from recux.errors import ConfigError

SPAN_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


@dataclass(frozen=True)
class Stream:
    """Requests over one log (train + valid + test rows sorted by user, then time; ties keep the split's order).

    ``hist_start[r]:hist_end[r]`` are the rows of ``log`` request r may see (its user's rows before ``ts[r]``)."""

    log: Interactions
    user: np.ndarray  # (n,) user code of each request, in replay order
    ts: np.ndarray  # (n,) timestamp of each request
    targets: sp.csr_matrix  # (n, n_items) the request's target items
    hist_start: np.ndarray
    hist_end: np.ndarray

    def __len__(self) -> int:
        return len(self.user)

    @property
    def history_len(self) -> np.ndarray:
        return self.hist_end - self.hist_start

    def history_rows(self, requests: np.ndarray) -> np.ndarray:
        """Row indices of ``log`` in the histories of ``requests`` (concatenated in request order)."""
        return ranges(self.hist_start[requests], self.hist_end[requests])

    def history_csr(self) -> sp.csr_matrix:
        """(n, n_items) binary matrix of each request's history items (the ranking mask)."""
        rows = self.history_rows(np.arange(len(self)))
        indptr = np.r_[0, np.cumsum(self.history_len)].astype(np.int64)
        m = sp.csr_matrix((np.ones(len(rows), np.float32), self.log.item[rows].astype(np.int64), indptr),
                          shape=(len(self), self.log.n_items))
        m.sum_duplicates()
        m.data[:] = 1.0
        return m


def ranges(starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Concatenation of arange(starts[i], ends[i]) for every i (int64)."""
    lens = np.asarray(ends, np.int64) - np.asarray(starts, np.int64)
    if not len(lens) or lens.sum() == 0:
        return np.zeros(0, dtype=np.int64)
    offsets = np.asarray(starts, np.int64) - np.r_[0, np.cumsum(lens)[:-1]]
    return np.repeat(offsets, lens) + np.arange(int(lens.sum()), dtype=np.int64)


def _concat(parts: list[Interactions]) -> Interactions:
    return Interactions(user=np.concatenate([p.user for p in parts]), item=np.concatenate([p.item for p in parts]),
                        n_users=parts[0].n_users, n_items=parts[0].n_items,
                        timestamp=np.concatenate([p.timestamp for p in parts]))


def _key(user: np.ndarray, ts_rank: np.ndarray, n_ranks: int) -> np.ndarray:
    return user.astype(np.int64) * (n_ranks + 1) + ts_rank.astype(np.int64)


def build_stream(split: Split, part: str = "test") -> Stream:
    """The requests of one part of ``split`` ("test": the replay; "valid": the same replay of the validation
    period, the like-for-like reference of the alerts) over the whole split's log (a request sees only the rows
    before it, so a validation request never sees a test row)."""
    if split.test.timestamp is None or split.train.timestamp is None:
        raise ConfigError("task=replay replays requests in time order and needs timestamps; this dataset has "
                          "none. Use a dataset with timestamps (e.g. ml-100k, synthetic).")
    log = _concat([split.train, split.valid, split.test]).sort_by_user_time()
    part = getattr(split, part)
    all_ts = np.unique(log.timestamp)  # every part's timestamps are in the log
    n_ranks = len(all_ts)
    log_key = _key(log.user, np.searchsorted(all_ts, log.timestamp), n_ranks)  # sorted (user, time) order
    ev_rank = np.searchsorted(all_ts, part.timestamp)
    pair, inverse = np.unique(_key(part.user, ev_rank, n_ranks), return_inverse=True)
    user = (pair // (n_ranks + 1)).astype(np.int64)
    ts = all_ts[pair % (n_ranks + 1)]
    order = np.lexsort((user, ts))  # replay order: time, then user code
    rank_of = np.empty(len(order), dtype=np.int64)
    rank_of[order] = np.arange(len(order))
    targets = sp.csr_matrix((np.ones(len(part), np.float32), (rank_of[inverse.ravel()], part.item)),
                            shape=(len(pair), log.n_items))
    targets.sum_duplicates()
    targets.data[:] = 1.0
    user, pair = user[order], pair[order]
    hist_start = np.searchsorted(log_key, _key(user, np.zeros(len(user), np.int64), n_ranks), side="left")
    hist_end = np.searchsorted(log_key, pair, side="left")  # the user's rows strictly before ts
    return Stream(log, user, ts[order], targets, hist_start, hist_end)


# ---------------------------------------------------------------------------------------------------- windows


def parse_span(size: object) -> int:
    """A time span in seconds from an integer or a string like '7d', '12h', '30m', '90s', '2w'."""
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        seconds = int(size)
    else:
        m = re.fullmatch(r"\s*(\d+)\s*([smhdw]?)\s*", str(size))
        if m is None:
            raise ConfigError(f"task.window.size={size!r} is not a time span; with window.by=time give seconds "
                              "or a number with a unit s/m/h/d/w, e.g. 7d.")
        seconds = int(m.group(1)) * SPAN_UNITS[m.group(2) or "s"]
    if seconds < 1:
        raise ConfigError(f"task.window.size={size!r} must be a positive time span, e.g. 7d.")
    return seconds


def assign_windows(ts: np.ndarray, by: str, size: object) -> tuple[np.ndarray, np.ndarray | None]:
    """Window index of each request (0..W-1, every index used) and, for time windows, each window's nominal
    start time. ``by=requests``: consecutive blocks of ``size`` requests in replay order; a remainder shorter
    than half a block joins the block before it (no window of a handful of requests), a longer one is the last
    window. ``by=time``: spans of ``size`` from the first request, empty spans dropped."""
    if by == "requests":
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or int(size) < 1:
            raise ConfigError(f"task.window.size={size!r} must be a positive number of requests with "
                              "window.by=requests, e.g. 500.")
        size = int(size)
        window = np.arange(len(ts), dtype=np.int64) // size
        full, rest = divmod(len(ts), size)
        if full and 0 < rest < size / 2:
            window[full * size:] = full - 1
        return window, None
    if by == "time":
        span = parse_span(size)
        raw = (np.asarray(ts, np.int64) - int(ts[0])) // span if len(ts) else np.zeros(0, np.int64)
        slots, window = np.unique(raw, return_inverse=True)
        return window.ravel().astype(np.int64), int(ts[0]) + slots * span if len(ts) else np.zeros(0, np.int64)
    raise ConfigError(f"task.window.by={by!r} must be 'requests' (blocks of window.size requests) or 'time' "
                      "(spans of window.size, e.g. 7d).")


# ---------------------------------------------------------------------------------------------------- serving


def micro_batches(user: np.ndarray, size: int) -> list[tuple[int, int]]:
    """Consecutive request blocks [a, b) in replay order of at most ``size`` requests and no user twice (so
    each request's user is conditioned on exactly that request's history)."""
    out, start, seen = [], 0, set()
    for r, u in enumerate(user.tolist()):
        if r - start == size or u in seen:
            out.append((start, r))
            start, seen = r, set()
        seen.add(u)
    if start < len(user):
        out.append((start, len(user)))
    return out


@dataclass
class Served:
    topk: np.ndarray  # (n, k) item codes, -1 padded
    scores: np.ndarray
    latency_ms: np.ndarray  # (n,) wall time of the micro-batch that answered the request


def _answer(model, stream: Stream, history: sp.csr_matrix, a: int, b: int, k: int):
    from recux.ranking import mask_rows, to_numpy, topk_from_scores

    model.condition_on(stream.log.subset(stream.history_rows(np.arange(a, b))))
    block = np.array(to_numpy(model.score(stream.user[a:b])), dtype=np.float32, copy=True)
    mask_rows(block, np.arange(a, b), history)
    return topk_from_scores(block, k)


def serve(model, stream: Stream, history: sp.csr_matrix, k: int, batch_size: int = 1, warmup: int = 10) -> Served:
    """Answer every request in replay order: condition the model on the request's history, score the catalogue,
    mask the history, keep the top k (recux.ranking's tie rule). The model is never refitted. ``warmup``
    requests are answered first and not timed (one-off costs: JIT compilation, allocator warm-up)."""
    n = len(stream)
    topk, scores = np.full((n, k), -1, np.int32), np.full((n, k), -np.inf, np.float32)
    latency = np.zeros(n, np.float64)
    for a in range(0, min(warmup, n)):
        _answer(model, stream, history, a, a + 1, k)
    for a, b in micro_batches(stream.user, batch_size):
        t0 = time.perf_counter()
        topk[a:b], scores[a:b] = _answer(model, stream, history, a, b, k)
        latency[a:b] = (time.perf_counter() - t0) * 1000.0
    return Served(topk, scores, latency)
