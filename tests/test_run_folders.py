"""A run folder holds one run: the publish guard (another run's results or claim appeared meanwhile), moving an
earlier run's files aside, and Lightning's swallowed SIGTERM turned into ``Terminated``."""

from __future__ import annotations

import json
import os
import signal

import pytest

from recux.results import (
    RunArtifacts,
    RunFolderConflict,
    claim_folder,
    move_aside_previous,
    write_json_atomic,
)


def _stage(art: RunArtifacts, seed: int) -> None:
    art.path("per_user_metrics.parquet").write_text(f"metrics of seed {seed}")
    art.set_results({"run_id": f"run-{seed}", "status": "ok", "seed": seed})


def test_publish_refuses_a_folder_where_another_run_published_meanwhile(tmp_path):
    with pytest.raises(RunFolderConflict) as err:
        with RunArtifacts(tmp_path) as art:
            _stage(art, 1)
            write_json_atomic(tmp_path / "results.json", {"run_id": "run-0", "seed": 0})  # the other run
    assert json.loads((tmp_path / "results.json").read_text())["seed"] == 0  # untouched
    kept = err.value.kept
    assert kept == tmp_path / "unpublished-run-1"
    assert json.loads((kept / "results.json").read_text())["seed"] == 1  # not lost either
    assert (kept / "per_user_metrics.parquet").read_text() == "metrics of seed 1"
    assert not list(tmp_path.glob(".staging-*"))


def test_publish_refuses_a_folder_another_run_claimed_after_this_one(tmp_path):
    claim_folder(tmp_path)
    with RunArtifacts(tmp_path) as art:  # its own claim: publishes
        _stage(art, 0)
    assert json.loads((tmp_path / "results.json").read_text())["seed"] == 0
    (tmp_path / "results.json").unlink()
    (tmp_path / ".recux-owner").write_text("a later run's token")
    with pytest.raises(RunFolderConflict):
        with RunArtifacts(tmp_path) as art:
            _stage(art, 1)
    assert not (tmp_path / "results.json").exists()
    assert (tmp_path / "unpublished-run-1" / "results.json").is_file()


def test_an_earlier_runs_files_are_moved_aside_whole(tmp_path):
    assert move_aside_previous(tmp_path) is None  # nothing there: nothing moved
    for name in ("results.json", "recommendations.parquet", "split/train.parquet", ".hydra/config.yaml", "run.log"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(json.dumps({"run_id": "old-1"}) if name == "results.json" else name)
    aside = move_aside_previous(tmp_path)
    assert aside == tmp_path / "previous-old-1"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".hydra", "previous-old-1", "run.log"]
    assert sorted(str(p.relative_to(aside)) for p in aside.rglob("*") if p.is_file()) == [
        "recommendations.parquet", "results.json", "split/train.parquet"]


def test_lightning_fit_interrupted_by_sigterm_raises_terminated():
    pytest.importorskip("torch")
    import pytorch_lightning as pl

    from recux.signals import Terminated
    from recux.training import fit_lightning
    from tests._model_world import fit_context, make_world
    from tests.test_training import _batches, _net

    class KillSelf(pl.Callback):
        def on_train_epoch_end(self, trainer, pl_module):
            if trainer.current_epoch == 0:
                os.kill(os.getpid(), signal.SIGTERM)  # default SIGTERM disposition: only Lightning's handler

    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    ds, split = make_world(n_users=150, n_items=120, seed=3)
    ctx = fit_context(ds, split)
    ctx.validate = None
    ctx.trainer = {**(ctx.trainer or {}), "callbacks": [KillSelf()], "enable_progress_bar": False}
    with pytest.raises(Terminated):
        fit_lightning(_net(split), ctx, _batches(split), max_epochs=50, patience=1)
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # Lightning restored the handler
