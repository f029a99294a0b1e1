"""results.atomic_write: the one writer behind results.json, leaderboards and recux-evaluate's outputs."""

from __future__ import annotations

import os

import polars as pl
import pytest

from recux.results import atomic_write


def test_text_bytes_and_writer_functions_land_whole_with_umask_permissions(tmp_path):
    atomic_write(tmp_path / "a" / "x.txt", "héllo")
    assert (tmp_path / "a" / "x.txt").read_text(encoding="utf-8") == "héllo"
    atomic_write(tmp_path / "x.bin", b"\x00\x01")
    assert (tmp_path / "x.bin").read_bytes() == b"\x00\x01"
    frame = pl.DataFrame({"u": [1, 2], "v": [0.5, 0.25]})
    atomic_write(tmp_path / "f.parquet", frame.write_parquet)
    assert pl.read_parquet(tmp_path / "f.parquet").equals(frame)
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "x.bin").stat().st_mode & 0o777 == 0o666 & ~umask
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "f.parquet", "x.bin"]  # no temp files
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["x.txt"]


def test_a_failing_writer_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "keep.txt"
    atomic_write(target, "old")

    def broken(path):
        path.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(target, broken)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]
