"""`recux-plugins` lists every kind with descriptions, and does so without importing torch or Lightning."""

from __future__ import annotations

import json
import subprocess
import sys


def test_listing_does_not_import_heavy_libraries():
    code = (
        "import sys, json; from recux.cli.plugins import main; rc = main(['--json']);"
        "heavy = [m for m in ('torch', 'pytorch_lightning', 'lightning', 'transformers', 'peft', 'wandb')"
        " if m in sys.modules]; print('HEAVY=' + json.dumps(heavy)); sys.exit(rc)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    listing, heavy_line = out.stdout.rsplit("HEAVY=", 1)
    assert json.loads(heavy_line) == []
    data = json.loads(listing)
    assert set(data) == {"dataset", "model", "finetune", "metric", "task", "encoder", "explainer", "compress",
                         "injector"}
    assert {p["name"] for p in data["explainer"]} == {"neighbourhood", "gradient", "text_similarity"}
    assert {p["name"] for p in data["compress"]} == {"none", "int8", "prune", "fp16"}
    assert [p["name"] for p in data["encoder"]] == ["hf"]
    assert {"noise", "sparsity", "random_attack", "average_attack", "bandwagon_attack"} == {
        p["name"] for p in data["injector"]}
    assert {"offline_ranking", "cold_start", "continual"} <= {p["name"] for p in data["task"]}
    bpr = next(p for p in data["model"] if p["name"] == "bpr")
    assert bpr["meta"]["training"] == "lightning" and bpr["description"]
    arp = next(p for p in data["metric"] if p["name"] == "arp")
    assert arp["meta"]["higher_is_better"] is False and "train_popularity" in arp["meta"]["needs"]


def test_text_listing_shows_direction(capsys):
    from recux.cli.plugins import main

    assert main(["metric"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("metric:")
    ndcg_line = next(line for line in out.splitlines() if line.strip().startswith("ndcg "))
    assert "higher is better" in ndcg_line
