"""Third-party plugins: a tiny distribution installed with pip is found through the ``recux.plugins``
entry-point group (its model and metric) and ``recux.configs`` (its YAML), without touching the registry."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

TOY = Path(__file__).parent / "fixtures" / "toy_plugin"
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def toy_site(tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("site")
    build = tmp_path_factory.mktemp("build")
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index",
         "--target", str(target), str(TOY)],
        capture_output=True, text=True, cwd=build,
    )
    assert proc.returncode == 0, proc.stderr
    assert list(target.glob("recux_toy_plugin-*.dist-info")), "pip did not install the toy distribution"
    return target


def _env(site: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(site), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["WANDB_MODE"] = "offline"
    return env


def test_installed_distribution_registers_its_plugins(toy_site):
    code = (
        "import json; from recux import registry;"
        "m = registry.get('model', 'toy-reverse'); k = registry.get('metric', 'toy-length');"
        "print(json.dumps([m.origin, m.meta['training'], k.description, 'bpr' in registry.names('model')]))"
    )
    out = subprocess.run([sys.executable, "-c", code], env=_env(toy_site), capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    origin, training, desc, has_builtin = json.loads(out.stdout)
    assert origin == "recux_toy.plugin.ToyReverse"
    assert training == "closed_form"
    assert desc == "Number of non-padding items in each user's top-k."
    assert has_builtin  # built-ins still load beside third-party plugins


def test_without_the_distribution_the_plugin_is_unknown():
    code = "from recux import registry; registry.get('model', 'toy-reverse')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode != 0 and "unknown model 'toy-reverse'" in out.stderr


def test_recux_runs_a_third_party_model_from_its_own_yaml(toy_site, tmp_path):
    run_dir = tmp_path / "run"
    cmd = [sys.executable, "-m", "recux.cli.run", "model=toy", "dataset=synthetic", "logger=none",
           "metrics.ks=[5,10]", f"hydra.run.dir={run_dir}",
           "metrics.plugins=[{name: ndcg},{name: toy-length}]"]
    out = subprocess.run(cmd, env=_env(toy_site), capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    results = json.loads((run_dir / "results.json").read_text())
    assert results["model"] == {"name": "toy-reverse", "params": {"offset": 1.5}, "training": "closed_form"}
    assert results["metrics"]["toy-length"] == 10.0
