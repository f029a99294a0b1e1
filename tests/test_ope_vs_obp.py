"""recux's estimators against obp's on the same inputs. obp (>= 0.5, pandas<2/numpy<2) lives in its own
environment: set RECUX_OBP_PYTHON to its python (with obp importable, e.g. via PYTHONPATH); skipped otherwise.
scripts/ope_obp_estimates.py computes obp's side."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from recux.ope.estimators import DM, DR, IPW, SNDR, SNIPW, DRos, OPEInputs, SwitchDR
from recux.ope.interval import bootstrap_ci
from recux.ope.tuning import Tuned

OBP_PYTHON = os.environ.get("RECUX_OBP_PYTHON")
SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "ope_obp_estimates.py"
LAMBDAS = [10, 50, 100, 500, 1000, 5000, 10000, np.inf]

pytestmark = pytest.mark.skipif(not OBP_PYTHON, reason="set RECUX_OBP_PYTHON to a python with obp >= 0.5")


def _inputs(seed: int, n: int = 3000, n_actions: int = 10, len_list: int = 3) -> OPEInputs:
    rng = np.random.default_rng(seed)
    pi = rng.dirichlet(np.full(n_actions, 0.2), size=(n, len_list)).transpose(0, 2, 1)
    return OPEInputs(reward=rng.binomial(1, 0.05, n).astype(float), action=rng.integers(0, n_actions, n),
                     position=rng.integers(0, len_list, n), pscore=rng.uniform(0.0005, 0.05, n),
                     action_dist=pi, q_hat=rng.uniform(0, 0.1, (n, n_actions, len_list)))


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_estimates_equal_obps(seed, tmp_path):
    inp = _inputs(seed)
    path = tmp_path / "inputs.npz"
    np.savez(path, reward=inp.reward, action=inp.action, position=inp.position, pscore=inp.pscore,
             action_dist=inp.action_dist, q_hat=inp.q_hat)
    lam_switch, lam_os = 50.0, 100.0
    proc = subprocess.run([OBP_PYTHON, str(SCRIPT), str(path), str(lam_switch), str(lam_os)], capture_output=True,
                          text=True, check=True)
    obp = json.loads(proc.stdout.strip().splitlines()[-1])
    ours = {e.name: e.estimate(inp) for e in (DM(), IPW(), SNIPW(), DR(), SNDR(), SwitchDR(lambda_=lam_switch),
                                              DRos(lambda_=lam_os))}
    for name, value in ours.items():
        assert value == pytest.approx(obp[name], rel=1e-10, abs=1e-15), name
    for method in ("slope", "mse"):
        for name, cls in (("switch-dr", SwitchDR), ("dr-os", DRos)):
            tuned = Tuned(cls, LAMBDAS, method=method)
            assert tuned.estimate(inp) == pytest.approx(obp[f"{name}-{method}"], rel=1e-10), (name, method)
            assert tuned.last_lambda == obp[f"{name}-{method}-lambda"], (name, method)
    ci = bootstrap_ci(IPW().round_rewards(inp), alpha=0.1, n_bootstrap_samples=300, random_state=3)
    assert [ci["mean"], ci["lower"], ci["upper"]] == pytest.approx(obp["ipw-ci"], rel=1e-12)
