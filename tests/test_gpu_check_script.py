"""scripts/gpu_check.py: its comparison runs end to end without a GPU (trainer=cpu against itself)."""

import pytest

from tests._scripts import load_script


@pytest.fixture(scope="module")
def gpu_check():
    return load_script("gpu_check")


def test_same_seed_cpu_runs_agree_and_a_negative_tolerance_flags_them(gpu_check, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.chdir(tmp_path)
    args = ["--against", "cpu", "--models", "bpr", "--epochs", "1", "--dataset", "synthetic",
            "--ranking-users", "0"]
    assert gpu_check.main(args) == 0
    row = [line for line in capsys.readouterr().out.splitlines() if line.startswith("bpr")]
    assert len(row) == 1 and row[0].endswith(" ok") and "=0 " in row[0], row
    assert gpu_check.main([*args, "--tol", "-1"]) == 1  # the check can fail
    assert "DIFFERS" in capsys.readouterr().out


def test_ranking_check_compares_the_device_and_host_top_k_with_ties(gpu_check, capsys):
    """On CPU tensors the device path (torch) and the host kernel must give identical lists, ties included."""
    assert gpu_check.main(["--against", "cpu", "--models", "none", "--ranking-users", "300",
                           "--ranking-items", "200"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("cpu")]
    assert len(rows) == 2 and all(r.endswith("identical") for r in rows), rows
    tied = gpu_check.ranking_check("cpu", 300, 200, ties=True)
    assert tied["differing_rows"] == 0 and tied["device_seconds"] > 0 and tied["host_seconds"] > 0


def test_differing_rows_counts_a_changed_tie_order(gpu_check):
    import numpy as np

    items = np.array([[3, 5, 7], [1, 2, 4]], dtype=np.int32)
    scores = np.array([[2.0, 1.0, 1.0], [3.0, 2.0, 1.0]], dtype=np.float32)
    assert gpu_check.differing_rows((items, scores), (items.copy(), scores.copy())) == 0
    swapped = items.copy()
    swapped[0, 1:] = swapped[0, 1:][::-1]  # the same tied scores in the other item order: the check flags it
    assert gpu_check.differing_rows((items, scores), (swapped, scores)) == 1
