"""recux-leaderboard never destroys a published leaderboard: the README command writes to a local folder; a
folder with a manifest is rewritten only from the runs it lists (or explicitly merged / replaced); failed runs
are listed apart from the ranking."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shlex
import shutil
from pathlib import Path

import polars as pl
import pytest

from recux.cli.leaderboard import main
from recux.record import ResultsRecord
from tests.test_leaderboard import table_rows, write_run

REPO = Path(__file__).resolve().parents[1]


def _readme_leaderboard_args() -> list[str]:
    """The arguments of the `recux-leaderboard` command in the README's "Read the leaderboard" block."""
    text = (REPO / "README.md").read_text()
    block = re.search(r"## Read the leaderboard\s+```bash\n(.*?)```", text, flags=re.S)
    assert block, "README lost its 'Read the leaderboard' command block"
    line = next(ln for ln in block.group(1).splitlines() if "recux-leaderboard" in ln)
    words = shlex.split(line, comments=True)
    return words[1:]


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def _cli(cwd: Path, *args: str) -> int:
    old = os.getcwd()
    os.chdir(cwd)
    try:
        return main(list(args))
    finally:
        os.chdir(old)


def _keys(manifest_file: Path) -> set[tuple[str, str]]:
    return {(e["run_id"], e["config_hash"]) for e in json.loads(manifest_file.read_text())["runs"]}


def _run_keys(folders) -> set[tuple[str, str]]:
    keys = set()
    for f in folders:
        data = json.loads((f / "results.json").read_text())
        keys.add((data["run_id"], data["config_hash"]))
    return keys


def test_readme_command_leaves_the_committed_leaderboard_byte_for_byte_intact(tmp_path, monkeypatch):
    for var in ("WANDB_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR", "WANDB_CONFIG_DIR", "WANDB_ARTIFACT_DIR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("WANDB_MODE", "offline")
    shutil.copytree(REPO / "leaderboards", tmp_path / "leaderboards", ignore=shutil.ignore_patterns(".wandb"))
    committed = _snapshot(tmp_path / "leaderboards")
    assert {"ml-100k.md", "ml-100k.csv", "ml-100k.manifest.json", "ml-100k_ndcg@10.png"} <= set(committed)
    for seed in (0, 1):  # a small local sweep on the same dataset name as the committed leaderboard
        write_run(tmp_path / "outputs", dataset="ml-100k", label="pop", vhash="p" * 12, seed=seed,
                  metrics={"ndcg@10": 0.03 + seed / 100})  # fmt: skip
        write_run(tmp_path / "multirun", dataset="ml-100k", label="bpr", vhash="b" * 12, seed=seed,
                  metrics={"ndcg@10": 0.05 + seed / 100})  # fmt: skip

    assert _cli(tmp_path, *_readme_leaderboard_args()) == 0

    assert _snapshot(tmp_path / "leaderboards") == committed
    local = tmp_path / "outputs" / "leaderboards"
    assert pl.read_csv(local / "ml-100k.csv")["variant"].to_list() == ["bpr", "pop"]
    assert len(_keys(local / "ml-100k.manifest.json")) == 4


def test_publish_rebuilds_only_from_the_listed_runs_merge_adds_replace_drops(tmp_path, capsys):
    a = [write_run(tmp_path / "a", label="pop", vhash="p" * 12, seed=s, metrics={"ndcg@10": 0.1 + s / 10})
         for s in (0, 1)]  # fmt: skip
    assert _cli(tmp_path, "a", "--publish", "--no-wandb", "--no-plots") == 0
    published = tmp_path / "leaderboards"
    manifest = published / "toy.manifest.json"
    assert _keys(manifest) == _run_keys(a)
    listed = json.loads(manifest.read_text())["runs"]
    assert {e["folder"] for e in listed} == {str(f.resolve()) for f in a}
    first = _snapshot(published)

    # the same runs again: allowed; only the "Built" line of the Markdown and the manifest's time may differ
    assert _cli(tmp_path, "a", "--publish", "--no-wandb", "--no-plots") == 0
    again = _snapshot(published)
    assert again["toy.csv"] == first["toy.csv"]
    drop_built = lambda b: [ln for ln in b.decode().splitlines() if not ln.startswith("Built ")]  # noqa: E731
    assert drop_built(again["toy.md"]) == drop_built(first["toy.md"])

    # a new run (another folder) without a flag: refused, nothing written, the message names it
    b = write_run(tmp_path / "b", label="bpr", vhash="b" * 12, seed=0, metrics={"ndcg@10": 0.3})
    capsys.readouterr()
    assert _cli(tmp_path, "a", "b", "--publish", "--no-wandb", "--no-plots") == 2
    err = capsys.readouterr().err
    assert "refused" in err and str(b.resolve()) in err and "--merge" in err and "Nothing was written" in err
    assert _snapshot(published) == again

    # --merge with only the new folder: the listed runs are read again from their folders, the new one added
    assert _cli(tmp_path, "b", "--publish", "--merge", "--no-wandb", "--no-plots") == 0
    assert _keys(manifest) == _run_keys([*a, b])
    assert sorted(pl.read_csv(published / "toy.csv")["variant"].to_list()) == ["bpr", "pop"]
    merged = _snapshot(published)

    # a listed run that is gone: --merge refuses (never drops), --replace drops it and says so
    shutil.rmtree(a[1])
    assert _cli(tmp_path, "b", "--publish", "--merge", "--no-wandb", "--no-plots") == 2
    err = capsys.readouterr().err
    assert str(a[1].resolve()) in err and "never drops" in err
    assert _snapshot(published) == merged
    assert _cli(tmp_path, "a", "b", "--publish", "--replace", "--no-wandb", "--no-plots") == 0
    assert "dropping 1 run(s)" in capsys.readouterr().out
    assert _keys(manifest) == _run_keys([a[0], b])


def test_a_leaderboard_without_manifest_is_not_overwritten_unless_replaced(tmp_path, capsys):
    write_run(tmp_path / "runs", label="pop", vhash="p" * 12, metrics={"ndcg@10": 0.1})
    out = tmp_path / "mine"
    out.mkdir()
    (out / "toy.md").write_text("an older leaderboard\n")
    assert _cli(tmp_path, "runs", "--out", "mine", "--no-wandb", "--no-plots") == 2
    assert "no manifest" in capsys.readouterr().err
    assert _snapshot(out) == {"toy.md": b"an older leaderboard\n"}
    assert _cli(tmp_path, "runs", "--out", "mine", "--replace", "--no-wandb", "--no-plots") == 0
    assert (out / "toy.manifest.json").exists() and "pop" in (out / "toy.md").read_text()


def test_the_local_default_folder_is_rewritten_freely(tmp_path):
    write_run(tmp_path / "outputs", label="pop", vhash="p" * 12, metrics={"ndcg@10": 0.1})
    assert _cli(tmp_path, "--no-wandb", "--no-plots") == 0
    write_run(tmp_path / "outputs", label="bpr", vhash="b" * 12, metrics={"ndcg@10": 0.2})
    assert _cli(tmp_path, "--no-wandb", "--no-plots") == 0
    assert pl.read_csv(tmp_path / "outputs" / "leaderboards" / "toy.csv")["variant"].to_list() == ["bpr", "pop"]
    assert not (tmp_path / "leaderboards").exists()


def _failed_record(folder: Path, label: str, seed: int, status: str, error: str) -> Path:
    """A results.json of a run that did not finish, built with recux.record.ResultsRecord."""
    fields = {f.name for f in dataclasses.fields(ResultsRecord)}
    kwargs = dict(run_id=f"{label}-{seed}-{status}", status=status, label=label, variant_hash=label[0] * 12,
                  data_hash="d" * 12, config_hash=f"{label}{seed}", seed=seed, dataset={"name": "toy"},
                  model={"name": label})  # fmt: skip
    if "error" in fields:
        kwargs["error"] = error
    else:
        kwargs["extra"] = {"error": error}
    folder.mkdir(parents=True)
    (folder / "results.json").write_text(json.dumps(ResultsRecord(**kwargs).to_dict()))
    return folder


def test_failed_and_terminated_runs_are_listed_apart_not_ranked(tmp_path, caplog):
    write_run(tmp_path / "runs", label="pop", vhash="p" * 12, seed=0, metrics={"ndcg@10": 0.1})
    failed = _failed_record(tmp_path / "runs" / "knn0", "itemknn", 0, "failed",
                            "ConfigError: model.k must be at least 1, got 0\nTraceback (most recent call last):")  # fmt: skip
    killed = _failed_record(tmp_path / "runs" / "bpr1", "bpr", 1, "terminated", "terminated by SIGTERM")
    broken = tmp_path / "runs" / "broken"
    broken.mkdir()
    (broken / "results.json").write_text("{not json")
    assert _cli(tmp_path, "runs", "--out", "lb", "--no-wandb", "--no-plots") == 0

    out = tmp_path / "lb"
    assert pl.read_csv(out / "toy.csv")["variant"].to_list() == ["pop"]
    md = (out / "toy.md").read_text()
    ranked, rest = md.split("## Failed runs", 1)
    assert [r[1] for r in table_rows(ranked)[1:]] == ["pop"]
    rows = [[c.strip() for c in ln.strip("|").split(" | ")] for ln in rest.splitlines() if ln.startswith("| ")]
    assert rows[0][:3] == ["Variant", "Seed", "Status"]
    expected = [["bpr", "1", "terminated", "`dddddddd`", "terminated by SIGTERM", f"`{killed.relative_to(tmp_path)}`"],
                ["itemknn", "0", "failed", "`dddddddd`", "ConfigError: model.k must be at least 1, got 0",
                 f"`{failed.relative_to(tmp_path)}`"]]  # fmt: skip
    assert rows[1:] == expected
    entries = json.loads((out / "toy.manifest.json").read_text())["runs"]
    assert sorted((e["label"], e["status"]) for e in entries) == [
        ("bpr", "terminated"), ("itemknn", "failed"), ("pop", "ok")]  # fmt: skip
    assert os.path.join("runs", "broken", "results.json") in caplog.text and "unreadable" in caplog.text


@pytest.mark.parametrize("flags", [["--merge", "--replace"]])
def test_merge_and_replace_are_exclusive(tmp_path, flags):
    with pytest.raises(SystemExit) as e:
        _cli(tmp_path, *flags)
    assert e.value.code == 2


def test_a_failed_run_whose_rerun_finished_says_so(tmp_path):
    _failed_record(tmp_path / "runs" / "knn0-failed", "itemknn", 0, "failed", "MemoryError")
    _failed_record(tmp_path / "runs" / "ease0-failed", "ease", 0, "failed", "MemoryError")
    ok = ResultsRecord(run_id="itemknn-0-ok", label="itemknn", variant_hash="i" * 12, data_hash="d" * 12,
                       config_hash="itemknn0", seed=0, dataset={"name": "toy"}, metrics={"ndcg@10": 0.2})  # fmt: skip
    (tmp_path / "runs" / "knn0-ok").mkdir()
    (tmp_path / "runs" / "knn0-ok" / "results.json").write_text(json.dumps(ok.to_dict()))
    assert _cli(tmp_path, "runs", "--out", "lb", "--no-wandb", "--no-plots") == 0
    rest = (tmp_path / "lb" / "toy.md").read_text().split("## Failed runs", 1)[1]
    status = {c[0]: c[2] for c in ([x.strip() for x in ln.strip("|").split(" | ")] for ln in rest.splitlines()
                                   if ln.startswith("| ") and not ln.startswith("| Variant"))}  # fmt: skip
    assert status == {"itemknn": "failed (rerun ok)", "ease": "failed"}
