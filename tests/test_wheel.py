"""A wheel built from the repository installs and runs on its own: the configs travel inside it (recux.conf),
the import names are the distribution's own (recux, recux.plugins), and `recux` runs from another folder.

The fresh virtual environment gets recux from the wheel only; its third-party dependencies come from the test
interpreter's site-packages through a plain path entry (no .pth processing there, so the editable install of
the checkout stays invisible), which keeps the test offline and fast."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(ROOT)],
                   check=True, capture_output=True, text=True, timeout=600)
    (whl,) = out.glob("recux-*.whl")
    return whl


def test_wheel_ships_configs_under_its_own_import_name(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith((".dist-info", ".data"))}
    assert top == {"recux", "hydra_plugins"}, top  # no generic `benchmark` or `plugins` import names
    assert "recux/conf/config.yaml" in names
    assert "recux/conf/model/ease.yaml" in names
    assert "recux/conf/hydra/launcher/slurm.yaml" in names  # nested config groups too (hydra/launcher=slurm)
    assert "recux/plugins/models/ease.py" in names
    assert "recux/plugins/tasks/offline_ranking.py" in names and "recux/conf/task/offline_ranking.yaml" in names
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "recux.plugins.models" in text and "recux.cli.run:main" in text
    assert "builtin-tasks = recux.plugins.tasks" in text


def test_wheel_installs_into_a_fresh_venv_and_runs_from_another_folder(wheel, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    site = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    # dependencies from the test interpreter's site-packages folders, appended after the venv's own
    deps = [p for p in sys.path if p.rstrip("/").endswith("site-packages") and Path(p).is_dir()]
    (site / "_deps.pth").write_text("\n".join(deps or [sysconfig.get_paths()["purelib"]]) + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "-q", "--no-deps",
                    "--no-index", str(wheel)], check=True, capture_output=True, text=True, timeout=300)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    where = subprocess.run([str(py), "-c", "import recux, recux.plugins; print(recux.__file__)"], cwd=elsewhere,
                           check=True, capture_output=True, text=True, env=env).stdout.strip()
    assert where.startswith(str(site)), f"recux imported from {where}, not from the wheel in {site}"

    listing = subprocess.run([str(venv / "bin" / "recux-plugins")], cwd=elsewhere, capture_output=True,
                             text=True, env=env, timeout=300)
    assert listing.returncode == 0, listing.stderr
    assert "ease" in listing.stdout and "ndcg" in listing.stdout

    run = subprocess.run([str(venv / "bin" / "recux"), "dataset=synthetic", "dataset.n_users=200",
                          "dataset.n_items=100", "model=pop", "logger=none", "hydra.run.dir=out"],
                         cwd=elsewhere, capture_output=True, text=True, env=env, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    results = json.loads((elsewhere / "out" / "results.json").read_text())
    assert results["status"] == "ok" and results["model"]["name"] == "pop"
    assert 0.0 < results["metrics"]["ndcg@10"] <= 1.0
