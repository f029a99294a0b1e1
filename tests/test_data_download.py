"""Checksummed fetching: nothing unverified is ever stored under its final name."""

from __future__ import annotations

import hashlib
import os

import pytest

from recux.download import ChecksumError, data_home, fetch_url, fetch_wheel_members, pip_download
from recux.plugins.datasets import movielens as ml


def test_data_home_follows_env(tmp_path, monkeypatch):
    monkeypatch.setenv("RECUX_DATA", str(tmp_path / "x"))
    assert data_home() == tmp_path / "x"
    monkeypatch.delenv("RECUX_DATA")
    assert data_home().name == "recux"


def test_fetch_url_verifies_before_storing(tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(b"payload" * 1000)
    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    dest = tmp_path / "cache" / "file.bin"
    with pytest.raises(ChecksumError, match="downloaded file"):
        fetch_url(src.as_uri(), dest, "0" * 64)
    assert not dest.exists() and list(dest.parent.iterdir()) == []  # no partial file left either
    assert fetch_url(src.as_uri(), dest, digest) == dest
    assert dest.read_bytes() == src.read_bytes()
    # Cached copy: verified again on reuse, a modified one is refused.
    dest.write_bytes(b"tampered")
    with pytest.raises(ChecksumError, match="cached file"):
        fetch_url(src.as_uri(), dest, digest)


@pytest.mark.network("package-index")
def test_wheel_member_with_wrong_pin_is_not_stored(tmp_path):
    member = "recbole/dataset_example/ml-100k/ml-100k.user"
    with pytest.raises(ChecksumError, match="ml-100k.user"):
        fetch_wheel_members(ml.RECBOLE_REQUIREMENT, {member: "f" * 64}, tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []


def test_pip_failure_is_reported(tmp_path, monkeypatch):
    # no index and no config: pip fails at once and offline ("no matching distribution")
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.delenv("PIP_FIND_LINKS", raising=False)
    with pytest.raises(OSError, match=r"recbole==0\.0\.0\.1.*failed \(exit [1-9]"):
        pip_download("recbole==0.0.0.1", tmp_path)
