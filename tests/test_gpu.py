"""On a machine with a CUDA device: same-seed runs on the GPU and on the CPU reach the same test metrics within
scripts/gpu_check.py's tolerance (float32 maths differs in the last bits). Skipped, saying why, without a GPU."""

import pytest

from tests._scripts import load_script


@pytest.mark.gpu
def test_gpu_runs_agree_with_cpu_runs(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = ["--against", "gpu", "--models", "bpr,sasrec", "--epochs", "2", "--dataset", "synthetic"]
    code = load_script("gpu_check").main(args)
    out = capsys.readouterr().out
    assert code == 0, out
    assert sum(line.endswith(" ok") for line in out.splitlines()) == 2, out
