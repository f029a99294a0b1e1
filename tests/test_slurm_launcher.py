"""The README's SLURM sweep: its command composes with conf/hydra/launcher/slurm.yaml, and the sbatch script that
submitit would submit for it carries the settings the README states (no cluster needed: nothing is submitted)."""

from __future__ import annotations

import math
import os
import re
import shlex
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason="the `parallel` extra is not installed")


def readme_command() -> list[str]:
    """The overrides of the README's `recux -m hydra/launcher=slurm ...` command."""
    blocks = re.findall(r"```bash\n(.*?)```", README.read_text(), flags=re.S)
    block = next(b for b in blocks if "hydra/launcher=slurm" in b)
    words = shlex.split(block.replace("\\\n", " "))
    return words[words.index("-m") + 1:]


def compose_launcher(overrides: list[str]):
    from hydra import compose, initialize_config_module

    with initialize_config_module(config_module="recux.conf", version_base="1.3"):
        return compose("config", overrides=overrides, return_hydra_config=True)


def n_jobs(overrides: list[str]) -> int:
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(overrides)
    return math.prod(len(list(o.sweep_string_iterator())) for o in parsed if o.is_sweep_override())


@pytest.fixture
def login_node(tmp_path, monkeypatch):
    """An `srun` on PATH (submitit's executor only checks that it exists; nothing is run or submitted)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "srun").write_text("#!/bin/sh\nexit 1\n")
    (bin_dir / "srun").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    return tmp_path


def sbatch_text(launcher_cfg, jobs: int, folder: Path) -> str:
    """The sbatch script of the array: the launcher built from its config as Hydra builds it, its settings
    mapped to submitit's executor as its launch() maps them
    (hydra_submitit_launcher.submitit_launcher.BaseSubmititLauncher.launch)."""
    import submitit
    from hydra.utils import instantiate
    from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf
    from omegaconf import OmegaConf, open_dict

    with open_dict(launcher_cfg):  # these two resolve from the running job's Hydra state only
        launcher_cfg.name, launcher_cfg.submitit_folder = "recux", str(folder)
    params = dict(instantiate(launcher_cfg).params)
    executor = submitit.AutoExecutor(cluster="slurm", folder=params.pop("submitit_folder"),
                                     slurm_max_num_timeout=params.pop("max_num_timeout"))
    base = set(OmegaConf.structured(BaseQueueConf).keys())
    executor.update_parameters(**{k if k in base else f"slurm_{k}": v for k, v in params.items()})
    inner = executor._executor
    inner.parameters["map_count"] = jobs  # what map_array sets for an array of `jobs` tasks
    return inner._make_submission_file_text("python -u -m submitit.core._submit", "uid")


def test_readme_sweep_composes_and_its_sbatch_script_has_the_documented_settings(login_node):
    overrides = readme_command()
    single = [o if "," not in o else o.split("=")[0] + "=" + o.split("=")[1].split(",")[0] for o in overrides]
    cfg = compose_launcher(single)  # one job of the sweep: the whole config composes with the launcher
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher")
    assert (launcher.partition, launcher.timeout_min, launcher.gpus_per_node, launcher.cpus_per_task,
            launcher.mem_gb, launcher.array_parallelism) == ("gpu", 120, 1, 8, 32, 4)
    assert cfg.trainer.accelerator == "gpu" and cfg.model.name == "bpr"

    jobs = n_jobs(overrides)
    assert jobs == 6  # as the README says: model=bpr,lightgcn x seed=0,1,2
    text = sbatch_text(launcher, jobs, login_node / "submitit")
    for line in ("--array=0-5%4", "--partition=gpu", "--time=120", "--gpus-per-node=1", "--cpus-per-task=8",
                 "--mem=32GB", "--nodes=1", "--ntasks-per-node=1", "--signal=USR2@120"):
        assert f"#SBATCH {line}" in text, (line, text)
    readme = " ".join(README.read_text().split())
    assert "sbatch --array=0-5%4 --partition=gpu --time=120 --gpus-per-node=1 --cpus-per-task=8 --mem=32GB" in readme


def test_defaults_are_the_documented_ones_and_the_partition_comes_from_the_environment(monkeypatch, login_node):
    monkeypatch.delenv("RECUX_SLURM_PARTITION", raising=False)
    launcher = compose_launcher(["hydra/launcher=slurm"]).hydra.launcher
    assert (launcher.partition, launcher.timeout_min, launcher.gpus_per_node, launcher.cpus_per_task,
            launcher.mem_gb, launcher.array_parallelism, launcher.max_num_timeout) == ("gpu", 240, 1, 8, 32, 8, 0)
    monkeypatch.setenv("RECUX_SLURM_PARTITION", "a100")
    launcher = compose_launcher(["hydra/launcher=slurm"]).hydra.launcher
    assert launcher.partition == "a100"
    assert "#SBATCH --partition=a100" in sbatch_text(launcher, 3, login_node / "submitit")
