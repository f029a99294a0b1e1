"""W&B tracking. What recux hands to W&B for a run (config, name, group and tags, per-epoch values, the summary,
the exit code) is checked on a recording stand-in for the ``wandb`` module, injected into recux's tracker: the
part under test is the tracker and the pipeline's use of it, not wandb, so nothing depends on wandb's file
formats or on when its background writer flushes. One real offline run in a subprocess checks what wandb
documents: the offline run folder lands inside the run folder, nothing in HOME, and the process exits cleanly."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_module

from recux.cli.run import CONFIG_MODULE
from recux.errors import ConfigError
from recux.pipeline import run_experiment
from recux.tracking import WandbTracker, make_tracker

WANDB_VARS = ("WANDB_MODE", "WANDB_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR", "WANDB_CONFIG_DIR",
              "WANDB_ARTIFACT_DIR", "WANDB_SILENT")
DIR_VARS = WANDB_VARS[1:6]


class RecordingConfig(dict):
    def update(self, values=None, allow_val_change=False, **kw):  # wandb.Run.config.update's signature
        super().update(values or {}, **kw)


class RecordingRun:
    """What one ``wandb.init`` returned: records every call recux (and Lightning's WandbLogger) makes."""

    def __init__(self, kwargs: dict, fail_finish: bool = False):
        self.init = kwargs
        self.env = {k: os.environ.get(k) for k in WANDB_VARS}  # as wandb.init would have seen it
        self.config = RecordingConfig(kwargs.get("config") or {})
        self.summary: dict = {}
        self.logged: list[dict] = []
        self.exit_codes: list[int] = []
        self.id, self.name = "recording", kwargs.get("name")
        self._fail_finish = fail_finish

    def log(self, data, step=None, commit=None):
        assert not self.exit_codes, f"logged {sorted(data)} after finish"
        self.logged.append(dict(data))

    def finish(self, exit_code=None):
        self.exit_codes.append(exit_code)
        if self._fail_finish:
            raise RuntimeError("the W&B service went away")


class RecordedTable:
    """wandb.Table as recux builds it: columns and rows."""

    def __init__(self, columns, data):
        self.columns, self.data = columns, data


class RecordingWandb:
    """The part of the ``wandb`` module's API that recux uses: ``init``, ``Settings`` and ``Table``."""

    Table = RecordedTable

    def __init__(self, fail_finish: bool = False):
        self.runs: list[RecordingRun] = []
        self._fail_finish = fail_finish

    @staticmethod
    def Settings(**kwargs):  # noqa: N802 - wandb's name
        return kwargs

    def init(self, **kwargs):
        self.runs.append(RecordingRun(kwargs, self._fail_finish))
        return self.runs[-1]


def run(tmp_path: Path, overrides: list[str]) -> tuple[dict, Path]:
    with initialize_config_module(config_module=CONFIG_MODULE, version_base="1.3"):
        cfg = compose("config", overrides=overrides)
    return run_experiment(cfg, tmp_path / "run", overrides), tmp_path / "run"


def test_a_lightning_run_logs_its_config_epochs_and_summary(recorder, tmp_path):
    results, run_dir = run(tmp_path, ["dataset=synthetic", "model=bpr", "model.max_epochs=3", "logger=wandb",
                                      "trainer.enable_progress_bar=false"])
    (wb,) = recorder.runs
    init = wb.init
    assert (init["project"], init["mode"], init["job_type"], init["entity"]) == ("recux", "offline", "train", None)
    assert init["config"] == results["config"]
    assert init["name"] == f"{results['label']}-s{results['seed']}" and init["group"] == f"{results['data_hash']}-{results['variant_hash']}"
    assert init["tags"] == [results["dataset"]["name"], results["protocol"], "bpr"]
    inside = run_dir.resolve() / ".wandb"
    assert Path(init["dir"]).resolve() == inside
    assert all(Path(wb.env[v]).resolve().is_relative_to(inside) for v in DIR_VARS), wb.env
    # Lightning's logger adds the module's hyper-parameters; recux's own config is kept as it was
    assert {k: wb.config[k] for k in results["config"]} == results["config"]

    # one record per epoch: its number, training loss and time, and every validation metric; the best epoch's
    # validation values are the ones results.json reports
    epochs = wb.logged
    assert len(epochs) == results["timing"]["epochs"] == 3
    assert [r["epoch"] for r in epochs] == [0, 1, 2]
    assert all(math.isfinite(r["train/loss"]) and r["time/epoch_seconds"] > 0 for r in epochs)
    best = max(epochs, key=lambda r: r["val/ndcg@10"])
    logged_valid = {k.removeprefix("val/"): v for k, v in best.items() if k.startswith("val/")}
    assert logged_valid == pytest.approx(results["valid_metrics"], abs=1e-6)

    expected = {**{f"test/{k}": v for k, v in results["metrics"].items()},
                **{f"timing/{k}": v for k, v in results["timing"].items() if v is not None},
                "users/evaluated": results["users"]["evaluated"], "peak_memory_mb": results["peak_memory_mb"]}
    assert wb.summary == expected
    assert wb.exit_codes == [0]


def test_a_closed_form_run_logs_its_summary_and_no_curves(recorder, tmp_path):
    results, _ = run(tmp_path, ["dataset=synthetic", "model=pop", "logger=wandb"])
    (wb,) = recorder.runs
    assert wb.logged == [] and wb.exit_codes == [0]
    assert {k: v for k, v in wb.summary.items() if k.startswith("test/")} == {
        f"test/{k}": v for k, v in results["metrics"].items()}


def test_a_failed_run_finishes_its_wandb_run_with_exit_code_1(recorder, tmp_path, monkeypatch):
    from recux.plugins.models.popularity import MostPopular

    def broken_fit(self, ctx):
        raise RuntimeError("model failed")

    monkeypatch.setattr(MostPopular, "fit", broken_fit)
    with pytest.raises(RuntimeError, match="model failed"):
        run(tmp_path, ["dataset=synthetic", "model=pop", "logger=wandb"])
    (wb,) = recorder.runs
    assert wb.exit_codes == [1] and wb.summary == {}
    assert not (tmp_path / "run" / "results.json").exists()


def test_logger_none_starts_no_wandb_run_and_an_unknown_logger_names_the_fix(recorder, tmp_path):
    make_tracker({"name": "none"}, tmp_path, {}, name="x", group="g", tags=[]).finish(0)
    make_tracker(None, tmp_path, {}, name="x", group="g", tags=[]).finish(0)
    assert recorder.runs == []
    with pytest.raises(ConfigError, match="logger=wandb or logger=none"):
        make_tracker({"name": "mlflow"}, tmp_path, {}, name="x", group="g", tags=[])


def test_wandb_mode_env_wins_and_a_failing_finish_only_warns(recorder, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    api = RecordingWandb(fail_finish=True)
    tracker = WandbTracker(tmp_path, {"seed": 0}, mode="online", api=api)
    tracker.log({"val/ndcg@10": 0.5}, step=0)
    tracker.summary({"test/ndcg@10": 0.4})
    with pytest.warns(UserWarning, match="wandb finish failed"):
        tracker.finish(0)
    (wb,) = api.runs
    assert wb.init["mode"] == "disabled" and wb.init["config"] == {"seed": 0}
    assert wb.logged == [{"val/ndcg@10": 0.5}] and wb.summary == {"test/ndcg@10": 0.4}
    assert wb.exit_codes == [0] and recorder.runs == []  # the injected api, not the default


def test_real_offline_run_stays_in_the_run_folder_and_exits_cleanly(tmp_path):
    """Real wandb, in its own process: only facts W&B documents (an offline-run-* folder under the run's dir)."""
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WANDB_", "XDG_"))}
    env.update(HOME=str(home), WANDB_MODE="offline")
    run_dir = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "recux.cli.run", "dataset=synthetic", "dataset.n_users=200",
                           "dataset.n_items=100", "model=pop", "logger=wandb", f"hydra.run.dir={run_dir}"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads((run_dir / "results.json").read_text())["status"] == "ok"
    offline = [p for p in (run_dir / ".wandb").rglob("offline-run-*") if p.is_dir()]
    assert len(offline) == 1, offline
    logs = list(offline[0].glob("*.wandb"))
    assert len(logs) == 1 and logs[0].stat().st_size > 0
    in_home = [p for p in home.rglob("*") if "wandb" in str(p).lower()]
    assert in_home == [], f"W&B wrote into HOME: {in_home[:5]}"
