"""scripts/gpu_check_lm.py runs end to end without a GPU (--against cpu --dry-run, a tiny encoder), and the same
seed on the same device gives the same test NDCG@10 (the comparison it prints is meaningful)."""

import pytest

from tests._lm_world import tiny_bert_folder
from tests._scripts import load_script

pytest.importorskip("peft")


def test_dry_run_against_cpu(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.chdir(tmp_path)
    folder = tiny_bert_folder(tmp_path / "bert")
    script = load_script("gpu_check_lm")
    args = ["--against", "cpu", "--dry-run", "--dataset", "synthetic", "--encoder", str(folder), "--epochs", "1",
            "--strategies", "frozen,lora", "--threads", "1"]
    assert script.main(args) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines() if line.startswith(("frozen ", "lora "))]
    assert [r[0] for r in rows] == ["frozen", "frozen", "lora", "lora"]
    ndcg = [float(r[7]) for r in rows]
    assert ndcg[0] == ndcg[1] and ndcg[2] == ndcg[3] and all(0 < v <= 1 for v in ndcg)
    trainable = [int(r[5].replace(",", "")) for r in rows]
    assert trainable[2] > trainable[0]  # LoRA adds adapter weights to what trains
    import torch

    if not torch.cuda.is_available():  # asking for a GPU where there is none is a clear refusal, not a crash
        assert script.main(["--devices", "cuda", "--dataset", "synthetic"]) == 2
