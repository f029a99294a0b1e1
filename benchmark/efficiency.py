"""What serving a fitted model costs (results.json ``efficiency``): parameters, size on disk, one user's top-k
latency and batch throughput, measured on the device the run used.

- ``parameters``: the numbers the model stores to score: ``model.n_parameters()`` when it has one (a compressed
  model: its stored elements, the non-zeros of pruned matrices), else a torch network's parameter elements
  (``model.net``), else the elements of the model's NumPy arrays and the stored entries of its SciPy sparse
  matrices.
- ``size_bytes``: the file ``model.save`` writes (the run's model.pkl format); models without ``save`` are
  measured as their pickle; None when neither works.
- ``latency_ms``: p50 and p99 over ``latency_users`` test users of one user's full path — score the catalogue,
  mask the user's training (and validation) items, take the top-k — each timed alone after ``warmup`` untimed
  users (Python ``time.perf_counter``; the users are a seeded sample).
- ``throughput_users_per_s``: users ranked per second by a batched pass (the run's batch size) over a seeded
  sample of at most ``throughput_users`` test users, timed after the latency users warmed the path, so one-time
  first-call costs (JIT compilation, lazy allocation) do not count (for a sequential model it includes building
  the users' scoring sequences). ``throughput_n`` is the sample size. Records written before this field existed
  divided all test users by the ranking stage's seconds, first call included.

Under ``compress`` (recux.compression) the model measured is the compressed one: its parameters are what it
stores (non-zeros of pruned matrices), its size the compressed file. ``compress.export_onnx=true`` adds
``onnx`` (recux.onnx_export): the same measures through onnxruntime.
"""

from __future__ import annotations

import pickle
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp


def count_parameters(model: Any) -> int:
    if callable(getattr(model, "n_parameters", None)):  # e.g. a compressed model: what it stores
        return int(model.n_parameters())
    net = getattr(model, "net", None)
    if net is not None and hasattr(net, "parameters"):
        return int(sum(p.numel() for p in net.parameters()))
    total = 0
    for value in vars(model).values():
        if isinstance(value, np.ndarray):
            total += int(value.size)
        elif sp.issparse(value):
            total += int(value.nnz)
    return total


def size_on_disk(model: Any) -> int | None:
    with tempfile.TemporaryDirectory(prefix="recux-size-") as tmp:
        path = Path(tmp) / "model.pkl"
        try:
            model.save(path)
            return path.stat().st_size
        except Exception:  # noqa: BLE001 - e.g. a class pickle cannot import: try the plain pickle, else None
            pass
    try:
        return len(pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL))
    except Exception:  # noqa: BLE001 - a model that cannot be pickled has no size here, not a failed run
        return None


def single_user_latency(score: Any, users: np.ndarray, k: int, exclude: sp.csr_matrix, warmup: int
                        ) -> dict[str, float | int]:
    """p50/p99 milliseconds of scoring, masking and taking the top-k for one user at a time."""
    from recux.ranking import rank_topk

    times = []
    for i, u in enumerate(users):
        t0 = time.perf_counter()
        rank_topk(score, np.array([u]), k, exclude=exclude, batch_size=1)
        if i >= warmup:
            times.append((time.perf_counter() - t0) * 1000.0)
    if not times:
        return {"p50": None, "p99": None, "n": 0}
    return {"p50": float(np.percentile(times, 50)), "p99": float(np.percentile(times, 99)), "n": len(times)}


def latency_sample(test_users: np.ndarray, latency_users: int, warmup: int, seed: int) -> tuple[np.ndarray, int]:
    """The seeded sample of test users timed one at a time (warm-up users first) and the warm-up count."""
    rng = np.random.default_rng(seed)
    n = min(len(test_users), latency_users + warmup)
    sample = rng.choice(np.asarray(test_users), size=n, replace=False) if n else np.zeros(0, np.int64)
    return sample, min(warmup, max(n - 1, 0))


def batch_throughput(score: Any, users: np.ndarray, k: int, exclude: sp.csr_matrix, batch_size: int
                     ) -> float | None:
    """Users per second of one batched score -> mask -> top-k pass over ``users``."""
    from recux.ranking import rank_topk

    if len(users) == 0:
        return None
    t0 = time.perf_counter()
    rank_topk(score, users, k, exclude=exclude, batch_size=batch_size)
    seconds = time.perf_counter() - t0
    return len(users) / seconds if seconds > 0 else None


def measure(model: Any, test_users: np.ndarray, exclude: sp.csr_matrix, k: int, batch_size: int,
            latency_users: int = 100, warmup: int = 10, seed: int = 0, throughput_users: int = 10_000,
            ) -> dict[str, Any]:
    """The ``efficiency`` record of a fitted, conditioned model (see the module docstring)."""
    sample, warmup = latency_sample(test_users, latency_users, warmup, seed)
    latency = single_user_latency(model.score, sample, k, exclude, warmup=warmup)  # also warms the path
    users = np.asarray(test_users)
    if len(users) > throughput_users:
        users = np.sort(np.random.default_rng(seed).choice(users, size=throughput_users, replace=False))
    return {
        "parameters": count_parameters(model),
        "size_bytes": size_on_disk(model),
        "latency_ms": latency,
        "latency_k": int(k),
        "throughput_users_per_s": batch_throughput(model.score, users, k, exclude, batch_size),
        "throughput_n": int(len(users)),
    }
