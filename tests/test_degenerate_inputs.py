"""Issue 8, section 4: degenerate data and settings are refused with a message that names the setting and a fix
that works (each test here failed on the code before the change); what was right stays right."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from recux import identity, registry
from recux.errors import ConfigError, DataError
from recux.pipeline import run_experiment
from tests._compose import compose_cfg


def run(tmp_path: Path, overrides: list[str], name: str = "run") -> tuple[dict, Path]:
    run_dir = tmp_path / name
    return run_experiment(compose_cfg(overrides), run_dir, overrides), run_dir


def load(**params):
    return registry.build("dataset", "files", params).load()


def write_csv(path: Path, rows, header=("user_id", "item_id"), sep=","):
    lines = [sep.join(header)] if header else []
    path.write_text("\n".join(lines + [sep.join(str(x) for x in r) for r in rows]) + "\n")
    return path


def files_run(path: Path, *extra: str) -> list[str]:
    return ["dataset=files", f"dataset.path={path}", "logger=none", "model=pop", *extra]


def random_rows(n_users: int, n_items: int, per_user: int, seed: int = 0) -> list[tuple[int, int]]:
    rng = np.random.default_rng(seed)
    return [(u, int(i)) for u in range(1, n_users + 1) for i in rng.choice(np.arange(1, n_items + 1), per_user,
                                                                           replace=False)]


# ---- too small to evaluate ---------------------------------------------------------------------------------


def test_one_user_file_is_refused_instead_of_scoring_a_perfect_one(tmp_path):
    """30 rows of one user: train 24, valid 3, test 3, so the 3 unmasked items are all in any top 20."""
    path = write_csv(tmp_path / "one.csv", [(1, i) for i in range(1, 31)])
    with pytest.raises(ConfigError, match=r"recall@20 = 1\.0") as err:
        run(tmp_path, files_run(path))
    assert "at most 3 items left to rank" in str(err.value)
    assert not (tmp_path / "run" / "results.json").exists()
    with pytest.raises(ConfigError, match="every ranking scores the same"):  # small cut-offs: still no contest
        run(tmp_path, files_run(path, "metrics.ks=[1,2]", "optimized_metric=ndcg@1"), "small_k")


def test_catalogue_too_small_for_the_cut_offs_suggests_a_list_that_runs(tmp_path):
    path = write_csv(tmp_path / "items15.csv", random_rows(40, 15, 8))
    with pytest.raises(ConfigError, match="larger than the catalogue") as err:
        run(tmp_path, files_run(path))
    suggestion = re.search(r"Use (metrics\.ks=.*)\.$", str(err.value)).group(1).split()  # the overrides
    ks = [int(k) for k in re.search(r"\[([\d,]+)\]", suggestion[0]).group(1).split(",")]
    assert ks and max(ks) < 15
    results, _ = run(tmp_path, files_run(path, *suggestion), "suggested")  # the suggestion runs as written
    assert results["status"] == "ok" and f"ndcg@{max(ks)}" in results["metrics"]


def test_cut_off_equal_to_the_catalogue_is_refused(tmp_path):
    path = write_csv(tmp_path / "items15.csv", random_rows(40, 15, 8))
    with pytest.raises(ConfigError, match="k=15, larger than the catalogue allows"):
        run(tmp_path, files_run(path, "metrics.ks=[5,10,15]"))


def test_empty_test_split_hint_never_suggests_the_split_in_use(tmp_path):
    path = write_csv(tmp_path / "sparse.csv", [(u, u % 30 + 1) for u in range(1, 90)])
    with pytest.raises(ConfigError, match="left no test interactions") as err:
        run(tmp_path, files_run(path))  # split=random is the default
    msg = str(err.value)
    assert "split=random" not in msg and "split.ratios" in msg
    timed = write_csv(tmp_path / "timed.csv", [(u, u % 30 + 1, u) for u in range(1, 90)],
                      header=("user_id", "item_id", "ts"))
    with pytest.raises(ConfigError, match="left no test interactions") as err:
        run(tmp_path, files_run(timed, "dataset.timestamp_col=ts", "split=loo"))
    assert "split=loo" not in str(err.value) and "at least 3 interactions" in str(err.value)


# ---- timestamps ------------------------------------------------------------------------------------------


def test_negative_timestamps_are_reported_like_missing_ones(tmp_path):
    rows = [(1, 1, 100), (1, 2, -5), (2, 1, 300), (2, 3, -1), (3, 2, 50)]
    path = write_csv(tmp_path / "t.csv", rows, header=("user_id", "item_id", "ts"))
    with pytest.raises(DataError) as err:
        load(path=str(path), timestamp_col="ts")
    msg = str(err.value)
    assert "line 3" in msg and "'-5'" in msg and "(2 such values in all)" in msg
    assert "invalid_timestamps=drop" in msg


def test_invalid_timestamps_drop_keeps_exactly_the_valid_rows(tmp_path):
    rows = [(1, 1, 100), (1, 2, -5), (2, 1, 300), (2, 3, ""), (3, 2, 50)]
    path = write_csv(tmp_path / "t.csv", rows, header=("user_id", "item_id", "ts"))
    ds = load(path=str(path), timestamp_col="ts", invalid_timestamps="drop")
    kept = sorted((u, i, t) for u, i, t in rows if isinstance(t, int) and t >= 0)
    assert sorted(ds.to_frame().iter_rows()) == kept
    assert ds.info["dropped_invalid_timestamps"] == 2
    with pytest.raises(ConfigError, match="invalid_timestamps"):
        load(path=str(path), timestamp_col="ts", invalid_timestamps="skip")


def test_new_dataset_setting_keeps_the_data_hash_of_earlier_files_runs():
    cfg = OmegaConf.to_container(compose_cfg(["dataset=files", "dataset.path=x.csv"]))
    before = {**cfg, "dataset": {k: v for k, v in cfg["dataset"].items() if k != "invalid_timestamps"}}
    assert identity.data_hash(cfg) == identity.data_hash(before)
    dropping = {**cfg, "dataset": {**cfg["dataset"], "invalid_timestamps": "drop"}}
    assert identity.data_hash(dropping) != identity.data_hash(cfg)


# ---- header and separator ----------------------------------------------------------------------------------


def test_header_read_as_data_is_detected(tmp_path):
    numeric = write_csv(tmp_path / "h.csv", [(1, 10), (2, 20), (3, 10)])
    with pytest.raises(DataError, match="line 1 looks like a header"):
        load(path=str(numeric), has_header=False, user_col=0, item_col=1)
    named = write_csv(tmp_path / "n.csv", [("alice", "m1"), ("bob", "m2")], header=("user", "item"))
    with pytest.raises(DataError, match="has_header=true"):
        load(path=str(named), has_header=False, user_col=0, item_col=1)
    plain = write_csv(tmp_path / "p.csv", [(1, 10), (2, 20), (3, 10)], header=None)
    ds = load(path=str(plain), has_header=False, user_col=0, item_col=1)
    assert sorted(ds.to_frame().iter_rows()) == [(1, 10), (2, 20), (3, 10)]


def test_tab_separated_csv_says_the_separator_looks_wrong(tmp_path):
    path = write_csv(tmp_path / "tabs.csv", [(1, 10), (2, 20)], sep="\t")
    with pytest.raises(DataError) as err:
        load(path=str(path))
    msg = str(err.value)
    assert "separator looks wrong" in msg and "dataset.separator='\\t'" in msg


@pytest.mark.parametrize("given", ["\\t", "tab", "\t"])
def test_tab_separator_escape_from_the_command_line_is_accepted(tmp_path, given):
    rows = [(1, 10), (2, 20), (2, 10)]
    path = write_csv(tmp_path / "tabs.txt", rows, sep="\t")
    ds = load(path=str(path), separator=given)
    assert sorted(ds.to_frame().iter_rows()) == sorted(rows)


def test_separator_escape_through_hydra_and_a_short_message_for_a_bad_one(tmp_path):
    cfg = compose_cfg(["dataset=files", "dataset.path=x.txt", "dataset.separator='\\t'"])
    assert cfg.dataset.separator == "\\t"  # what a shell hands over: backslash and t
    assert registry.build("dataset", "files", {"path": "x.txt", "separator": cfg.dataset.separator}).separator == "\t"
    with pytest.raises(ConfigError) as err:
        registry.build("dataset", "files", {"path": "x.txt", "separator": "::"})
    msg = str(err.value)
    assert "dataset.separator='::'" in msg and "item_features_path" not in msg and "{" not in msg


# ---- trainer and model settings ------------------------------------------------------------------------------


def test_documented_trainer_max_epochs_override_works_and_keeps_the_variant_hash(tmp_path):
    cfg = OmegaConf.to_container(compose_cfg(["model=bpr", "trainer.max_epochs=1"]))
    assert cfg["trainer"]["max_epochs"] == 1
    default = OmegaConf.to_container(compose_cfg(["model=bpr"]))
    assert default["trainer"]["max_epochs"] is None
    before = {**default, "trainer": {k: v for k, v in default["trainer"].items() if k != "max_epochs"}}
    assert identity.variant_hash(default) == identity.variant_hash(before)
    results, _ = run(tmp_path, ["dataset=synthetic", "dataset.n_users=60", "dataset.n_items=40", "logger=none",
                                "model=bpr", "trainer.max_epochs=1", "trainer.enable_progress_bar=false"])
    assert results["timing"]["epochs"] == 1
    assert results["device"] == {"accelerator": "cpu", "devices": 1, "trainer_used": True}


@pytest.mark.parametrize("override", ["model.lr=-1", "model.lr=0", "model.weight_decay=-0.1", "model.reg=-1"])
def test_bad_learning_settings_are_refused_before_any_data_is_read(tmp_path, override):
    missing = tmp_path / "absent.csv"  # loading data first would fail on this file instead
    with pytest.raises(ConfigError, match=re.escape(override.split("=")[0])):
        run(tmp_path, ["dataset=files", f"dataset.path={missing}", "logger=none", "model=bpr", override])


@pytest.mark.parametrize("model", ["multvae", "sasrec", "lightgcn"])
def test_every_lightning_model_checks_its_learning_rate(model):
    with pytest.raises(ConfigError, match="model.lr=-0.5"):
        registry.build("model", model, {"lr": -0.5})


def test_gpu_trainer_without_a_gpu_is_refused_before_any_data_is_read(tmp_path):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(ConfigError, match="trainer=cpu"):
        run(tmp_path, ["dataset=files", f"dataset.path={tmp_path / 'absent.csv'}", "logger=none", "model=bpr",
                       "trainer=gpu"])


def test_unused_trainer_does_not_split_variants_and_the_device_that_ran_is_recorded(tmp_path):
    base = ["dataset=synthetic", "dataset.n_users=60", "dataset.n_items=40", "logger=none", "model=pop"]
    cpu, _ = run(tmp_path, base, "cpu")
    gpu, gpu_dir = run(tmp_path, [*base, "trainer=gpu"], "gpu")
    assert gpu["metrics"] == cpu["metrics"]
    assert gpu["variant_hash"] == cpu["variant_hash"]
    on_disk = json.loads((gpu_dir / "results.json").read_text())
    assert on_disk["device"] == {"accelerator": "cpu", "devices": 1, "trainer_used": False}
    assert on_disk["config"]["trainer"]["accelerator"] == "gpu"  # the request stays in the config


def test_trainer_settings_still_separate_lightning_variants():
    bpr = OmegaConf.to_container(compose_cfg(["model=bpr"]))
    assert identity.variant_hash(bpr) != identity.variant_hash({**bpr, "trainer": {**bpr["trainer"], "devices": 2}})


# ---- README: the dataset=files example runs as written ---------------------------------------------------------


def test_readme_files_example_runs_as_written(tmp_path):
    import shlex

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("## Your own data (`dataset=files`)", 1)[1]
    command = re.search(r"```bash\n(.*?)```", section, flags=re.S).group(1).replace("\\\n", " ")
    args = shlex.split(command)[1:]  # as a shell hands them over (dataset.separator='\t' arrives as \t)
    assert "dataset.separator=\\t" in args
    rng = np.random.default_rng(0)
    rows = [(u, int(i), int(rng.integers(1, 6)), 1000 + n) for u in range(1, 51)
            for n, i in enumerate(rng.choice(60, 30, replace=False))]
    path = tmp_path / "ratings.txt"
    write_csv(path, rows, header=("userId", "movieId", "rating", "timestamp"), sep="\t")
    args = [f"dataset.path={path}" if a.startswith("dataset.path=") else a for a in args]
    results, _ = run(tmp_path, args)
    positives = sum(r >= 4 for _, _, r, _ in rows)
    assert results["dataset"]["name"] == "my-ratings" and results["model"]["name"] == "ease"
    assert results["dataset"]["n_interactions"] == positives
    assert results["split"]["n_train"] + results["split"]["n_valid"] + results["split"]["n_test"] == positives


def test_a_first_row_with_a_missing_rating_is_data_not_a_header(tmp_path):
    path = write_csv(tmp_path / "na.csv", [(1, 10, "NA"), (2, 20, 4), (3, 10, 5)], header=None)
    with pytest.raises(DataError, match="line 1: value 'NA'"):  # reported as a bad rating, not as a header
        load(path=str(path), has_header=False, user_col=0, item_col=1, rating_col=2)
