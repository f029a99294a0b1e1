"""scripts/gpu_check.py: its comparison runs end to end without a GPU (trainer=cpu against itself)."""

import pytest

from tests._scripts import load_script


@pytest.fixture(scope="module")
def gpu_check():
    return load_script("gpu_check")


def test_same_seed_cpu_runs_agree_and_a_negative_tolerance_flags_them(gpu_check, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.chdir(tmp_path)
    args = ["--against", "cpu", "--models", "bpr", "--epochs", "1", "--dataset", "synthetic"]
    assert gpu_check.main(args) == 0
    row = [line for line in capsys.readouterr().out.splitlines() if line.startswith("bpr")]
    assert len(row) == 1 and row[0].endswith(" ok") and "=0 " in row[0], row
    assert gpu_check.main([*args, "--tol", "-1"]) == 1  # the check can fail
    assert "DIFFERS" in capsys.readouterr().out
