"""A run's lifecycle as a scheduler and a user see it (issue 8, sections 1-3): sweeps that survive a failing
job and resume, SIGTERM, unique run folders, never two runs' files in one folder. Each test runs the real
``recux`` command in a subprocess on the small synthetic world."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from recux import identity
from recux.results import config_hash

RECUX = [sys.executable, "-m", "recux.cli.run"]
FAST = ["dataset=synthetic", "dataset.n_users=200", "dataset.n_items=100", "logger=none"]


def recux(*args: str, cwd: Path, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run([*RECUX, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout)


def records(root: Path, name: str) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(root.rglob(name))]


def test_sweep_with_a_failing_job_records_it_and_finishes_the_others(tmp_path):
    sweep = tmp_path / "sweep"
    out = recux("-m", "model=itemknn", "model.k=5,0,10", *FAST, f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    assert out.returncode == 3, out.stderr  # documented: some jobs of the sweep failed
    ok = {r["model"]["params"]["k"]: r for r in records(sweep, "results.json")}
    assert sorted(ok) == [5, 10]  # the job after the failing one ran too
    (failed,) = records(sweep, "failed.json")
    job = sweep / "1_itemknn_seed0"
    assert (job / "failed.json").is_file() and not (job / "results.json").exists()
    assert failed["status"] == "failed" and failed["error"]["type"] == "ConfigError"
    assert "k must be >= 1" in failed["error"]["message"]
    assert "Traceback" in (job / "traceback.txt").read_text()
    assert "k must be >= 1" in (job / "run.log").read_text()
    # identity fields as a leaderboard groups them: same data section as the siblings, its own variant
    assert failed["data_hash"] == ok[5]["data_hash"]
    assert failed["variant_hash"] not in {ok[5]["variant_hash"], ok[10]["variant_hash"]}
    assert failed["config"]["model"] == {"name": "itemknn", "k": 0, "shrink": 0.0}
    assert failed["variant_hash"] == identity.variant_hash(failed["config"])
    assert failed["config_hash"] == config_hash(failed["config"], drop=("run.skip_existing",))
    assert failed["label"] == "itemknn(k=0)" and failed["seed"] == 0
    assert "1 failed" in out.stderr and str(job) in out.stderr
    assert not list(sweep.rglob(".staging-*"))
    # the leaderboard ranks the two finished variants and lists the failed one apart, with its error
    from recux.cli.leaderboard import main as leaderboard

    assert leaderboard([str(sweep), "--out", str(tmp_path / "lb"), "--no-wandb", "--no-plots"]) == 0
    md = next((tmp_path / "lb").glob("*.md")).read_text()
    ranking, failed_part = md.split("## Failed runs")
    assert "itemknn(k=5)" in ranking and "itemknn(k=10)" in ranking and "itemknn(k=0)" not in ranking
    assert "itemknn(k=0)" in failed_part and "ConfigError: " in failed_part


@pytest.mark.skipif(not __import__("importlib").util.find_spec("hydra_plugins.hydra_joblib_launcher"),
                    reason="hydra-joblib-launcher not installed")
def test_sweep_under_joblib_keeps_sibling_jobs(tmp_path):
    sweep = tmp_path / "sweep"
    out = recux("-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "model=itemknn", "model.k=5,0,10", *FAST,
                f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    assert out.returncode == 3, out.stderr
    assert sorted(r["model"]["params"]["k"] for r in records(sweep, "results.json")) == [5, 10]
    assert [r["status"] for r in records(sweep, "failed.json")] == ["failed"]
    assert not list(sweep.rglob(".staging-*"))


def test_rerun_of_a_sweep_skips_finished_jobs_and_a_flag_forces_them(tmp_path):
    sweep = tmp_path / "sweep"
    args = ("-m", "model=pop,itemknn", *FAST, f"hydra.sweep.dir={sweep}")
    assert recux(*args, cwd=tmp_path).returncode == 0
    first = {r["label"]: r["run_id"] for r in records(sweep, "results.json")}
    again = recux(*args, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert {r["label"]: r["run_id"] for r in records(sweep, "results.json")} == first  # nothing rerun
    assert again.stdout.count("skipped: results for this config and seed exist") == 2
    assert "0 ok, 0 failed, 2 skipped" in again.stderr
    forced = recux(*args, "run.skip_existing=false", cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr
    now = [r for r in records(sweep, "results.json") if r["run_id"] not in first.values()]
    assert sorted(r["label"] for r in now) == sorted(first)  # both jobs ran again
    # the earlier results were moved aside in each folder, not left beside the new config
    assert sorted(p.parent.parent.name for p in sweep.rglob("previous-*/results.json")) == sorted(
        p.parent.name for p in sweep.glob("*/results.json"))


def _wait_for(path: Path, text: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if path.is_file() and text in path.read_text():
            return
        time.sleep(0.1)
    raise AssertionError(f"{text!r} never appeared in {path} (exit code {proc.poll()})")


def test_sigterm_during_lightning_training_exits_143_without_results(tmp_path):
    run_dir = tmp_path / "run"
    proc = subprocess.Popen([*RECUX, "model=bpr", "model.max_epochs=500", "model.patience=500", *FAST,
                             "trainer.enable_progress_bar=false", f"hydra.run.dir={run_dir}"],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(run_dir / "run.log", "epoch 0:", proc)  # the first epoch is logged: training is under way
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 143, err
    assert "terminated by SIGTERM" in err
    assert not (run_dir / "results.json").exists()
    assert not list(run_dir.glob(".staging-*"))
    record = json.loads((run_dir / "failed.json").read_text())
    assert record["status"] == "terminated" and record["error"]["type"] == "Terminated"


def test_two_runs_started_together_keep_both_results(tmp_path):
    """Same model and seed, default run folder (time to the second + seed before): both results survive."""
    procs = [subprocess.Popen([*RECUX, "model=pop", *FAST], cwd=tmp_path, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for p in procs:
        p.communicate(timeout=120)
    assert [p.returncode for p in procs] == [0, 0]
    results = sorted((tmp_path / "outputs").rglob("results.json"))
    assert len(results) == 2 and results[0].parent != results[1].parent
    assert len({json.loads(p.read_text())["run_id"] for p in results}) == 2


def test_two_runs_in_one_folder_never_mix(tmp_path):
    """Two runs pointed at the same hydra.run.dir: the folder's config and results.json belong to one run,
    the other run's results are kept (not silently lost) and it exits non-zero."""
    run_dir = tmp_path / "same"
    procs = [subprocess.Popen([*RECUX, "model=pop", *FAST, f"seed={s}", f"hydra.run.dir={run_dir}"],
                              cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
             for s in (0, 1)]
    for p in procs:
        p.communicate(timeout=120)
    seeds = sorted(r["seed"] for r in records(run_dir, "results.json"))
    assert seeds == [0, 1]
    top = json.loads((run_dir / "results.json").read_text())
    assert f"seed={top['seed']}" in (run_dir / ".hydra" / "overrides.yaml").read_text()
    # either the later run took the folder while the other ran (that one refused to publish: exit 2), or it
    # started after the other finished and moved its files aside
    assert any(p.returncode == 2 for p in procs) or list(run_dir.glob("previous-*/results.json"))


def test_failed_rerun_into_a_folder_with_results_moves_them_aside(tmp_path):
    run_dir = tmp_path / "run"
    assert recux("model=pop", *FAST, f"hydra.run.dir={run_dir}", cwd=tmp_path).returncode == 0
    old = json.loads((run_dir / "results.json").read_text())
    out = recux("model=itemknn", "model.k=0", *FAST, f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert out.returncode == 2, out.stderr
    assert not (run_dir / "results.json").exists()  # no old results beside the new config
    assert json.loads((run_dir / "failed.json").read_text())["config"]["model"]["name"] == "itemknn"
    moved = json.loads((run_dir / f"previous-{old['run_id']}" / "results.json").read_text())
    assert moved == old


def test_single_run_recux_error_exits_2_and_writes_the_record(tmp_path):
    run_dir = tmp_path / "run"
    out = recux("model=itemknn", "model.k=0", *FAST, f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert out.returncode == 2 and "recux: error:" in out.stderr
    assert json.loads((run_dir / "failed.json").read_text())["status"] == "failed"
    assert "k must be >= 1" in (run_dir / "run.log").read_text()


def test_misspelt_group_option_exits_1(tmp_path):
    out = recux("model=itemknnn", *FAST, cwd=tmp_path)
    assert out.returncode == 1 and "itemknnn" in out.stderr
    assert not (tmp_path / "outputs").exists()

