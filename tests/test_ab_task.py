"""The ab_test task end to end on a small synthetic world: arms balanced over the users with training data, the
record's metrics equal the per-arm block they summarise, an A/A run compares the control with itself, a
semi-synthetic oracle is fitted on every interaction, and bad settings are refused before any fitting."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from recux import registry
from recux.errors import ConfigError
from recux.pipeline import run_experiment
from tests._compose import compose_cfg

WORLD = ["dataset=synthetic", "dataset.n_users=200", "dataset.n_items=80", "logger=none", "task=ab_test",
         "task.n_looks=4"]


def test_ab_task_is_registered_and_builds_from_its_yaml():
    assert "ab_test" in registry.names("task")
    task = registry.build("task", "ab_test", {k: v for k, v in compose_cfg(WORLD)["task"].items() if k != "name"})
    assert task.control == "pop" and not task.aa


def test_treatment_run_writes_arms_lifts_and_plots(tmp_path):
    rec = run_experiment(compose_cfg(WORLD + ["model=ease", "task.treatments=[ease,itemknn]"]), tmp_path / "r")
    ab = rec["ab_test"]
    assert ab["arms"] == ["control", "ease", "itemknn"]
    n = rec["users"]["evaluated"]
    assert sum(ab["sizes"]) == n and max(ab["sizes"]) - min(ab["sizes"]) <= 1  # balanced assignment
    cmp = ab["comparisons"]["ease"]["ctr"]
    assert rec["metrics"]["ctr"] == ab["arm_means"]["ease"]["ctr"] == cmp["plain"]["treatment"]
    assert rec["metrics"]["ctr_control"] == ab["arm_means"]["control"]["ctr"]
    assert cmp["plain"]["diff"] == pytest.approx(cmp["plain"]["treatment"] - cmp["plain"]["control"])
    assert cmp["plain"]["ci_low"] <= cmp["plain"]["diff"] <= cmp["plain"]["ci_high"]
    assert ab["sequential"]["ease"]["users"][-1] == ab["sizes"][0] + ab["sizes"][1]
    assert ab["oracle"]["source"] == "true_scores"
    saved = json.loads((tmp_path / "r" / "results.json").read_text())
    assert saved["ab_test"]["arm_means"] == ab["arm_means"]
    assert (tmp_path / "r" / "ab_lifts.png").stat().st_size > 0 and (tmp_path / "r" / "ab_looks.png").exists()


def test_arms_are_the_variant_and_the_world_is_the_data_section():
    from recux import identity

    base = compose_cfg(WORLD + ["task.treatments=[ease]"])
    other_arms = compose_cfg(WORLD + ["task.treatments=[itemknn]"])
    other_world = compose_cfg(WORLD + ["task.treatments=[ease]", "task.target_ctr=0.03"])
    assert identity.data_hash(base) == identity.data_hash(other_arms) != identity.data_hash(other_world)
    assert identity.variant_hash(base) != identity.variant_hash(other_arms)


def test_same_seed_same_result_other_sim_seed_differs(tmp_path):
    cfg = WORLD + ["model=pop", "task.aa=true"]
    a = run_experiment(compose_cfg(cfg), tmp_path / "a")["ab_test"]
    b = run_experiment(compose_cfg(cfg), tmp_path / "b")["ab_test"]
    c = run_experiment(compose_cfg(cfg + ["task.sim_seed=5"]), tmp_path / "c")["ab_test"]
    assert a["arm_means"] == b["arm_means"] and a["comparisons"] == b["comparisons"]
    assert a["arm_means"] != c["arm_means"]
    assert a["arms"] == ["control", "control_b"] and a["arm_models"]["control_b"] == a["arm_models"]["control"]


def test_semi_synthetic_oracle_is_the_model_fitted_on_every_interaction(tmp_path):
    rec = run_experiment(compose_cfg(WORLD + ["model=pop", "task.oracle=ease", "task.target_ctr=0.04"]),
                         tmp_path / "s")
    oracle = rec["ab_test"]["oracle"]
    assert oracle["source"].startswith("model:ease")
    assert oracle["mean_attractiveness"] * np.mean(1 / np.arange(1, 11)) == pytest.approx(0.04, rel=1e-4)
    # another ridge penalty is another world: same calibration target, other preferences (hence another shift)
    other = run_experiment(compose_cfg(WORLD + ["model=pop", "task.oracle=ease", "task.target_ctr=0.04",
                                                "task.oracle_params={l2: 1.0}"]), tmp_path / "t")["ab_test"]
    assert other["settings"]["oracle_params"] == {"l2": 1.0}
    assert other["oracle"]["shift"] != oracle["shift"]


@pytest.mark.parametrize("override,setting", [
    ("task.target_ctr=0.9", "task.target_ctr"), ("task.slate_size=0", "task.slate_size"),
    ("task.alpha=2", "task.alpha"), ("task.n_looks=0", "task.n_looks"), ("task.primary=ndcg", "task.primary"),
    ("task.msprt_tau=-1", "task.msprt_tau"), ("task.user_heterogeneity=-1", "task.user_heterogeneity"),
    ("task.return_base=1.5", "task.return_base")])
def test_bad_settings_are_refused(tmp_path, override, setting):
    with pytest.raises(ConfigError, match=setting):
        run_experiment(compose_cfg(WORLD + [override]), tmp_path / "bad")
    assert not (tmp_path / "bad" / "results.json").exists()


def test_aa_with_treatments_and_oversized_slates_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="task.aa=true"):
        run_experiment(compose_cfg(WORLD + ["task.aa=true", "task.treatments=[ease]"]), tmp_path / "x")
    with pytest.raises(ConfigError, match="task.slate_size=80"):
        run_experiment(compose_cfg(WORLD + ["model=pop", "task.slate_size=80"]), tmp_path / "y")


def test_true_scores_oracle_needs_a_synthetic_dataset(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "log.csv"
    pl.DataFrame({"user_id": rng.integers(0, 60, 1500), "item_id": rng.integers(0, 50, 1500)}).unique().write_csv(path)
    with pytest.raises(ConfigError, match="task.oracle=true_scores needs a dataset with true preferences"):
        run_experiment(compose_cfg(["dataset=files", f"dataset.path={path}", "logger=none", "model=pop",
                                    "task=ab_test", "task.oracle=true_scores"]), tmp_path / "z")


def test_the_ab_board_corrects_each_runs_treatments_with_holm(tmp_path):
    """scripts/ab_board.py: the Holm column of each treatment equals a plain step-down over the run's raw CTR
    p-values (p_(i) * (m - i), running maximum, capped at 1), and the lift cell is the run's relative lift."""
    from tests._scripts import load_script

    rec = run_experiment(compose_cfg(WORLD + ["model=ease", "task.treatments=[ease,itemknn,pop]"]),
                         tmp_path / "r")
    board = load_script("ab_board")
    assert board.main([str(tmp_path / "r"), "--out", str(tmp_path / "lb")]) == 0
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:]]
            for line in (tmp_path / "lb" / "ab.md").read_text().splitlines() if line.startswith("| ")}
    arms = [a for a in rec["ab_test"]["arms"] if a != "control"]
    raw = [rec["ab_test"]["comparisons"][a]["ctr"]["plain"]["p"] for a in arms]
    adjusted = holm_step_down(raw)
    for arm, p in zip(arms, adjusted, strict=True):
        assert rows[arm][6] == f"{board._p(raw[arms.index(arm)])} ({board._p(p)})"
        assert rows[arm][5].startswith(f"{rec['ab_test']['comparisons'][arm]['ctr']['plain']['relative']:+.1%}")


def test_with_wandb_the_run_logs_its_metrics_and_one_table_row_per_arm(recorder, tmp_path):
    """logger=wandb (a recording stand-in for the wandb module, as in test_wandb_logging): the summary holds the
    run's metrics and the arms table equals results.json's arm means and CTR comparisons."""
    from recux.plugins.tasks.ab_test import ARM_COLUMNS

    WITH_LOGGER = [o for o in WORLD if o != "logger=none"] + ["logger=wandb"]
    result = run_experiment(compose_cfg(WITH_LOGGER + ["model=ease", "task.treatments=[ease,itemknn]"]),
                            tmp_path / "r")
    (wb,) = recorder.runs
    (table,) = [x["ab_test/arms"] for x in wb.logged if "ab_test/arms" in x]
    ab = result["ab_test"]
    assert table.columns == ARM_COLUMNS and [r[0] for r in table.data] == ab["arms"]
    for row in table.data:
        assert row[2] == ab["arm_means"][row[0]]["ctr"] and row[5] == ab["arm_means"][row[0]]["retention"]
        if row[0] != "control":
            assert row[6] == ab["comparisons"][row[0]]["ctr"]["plain"]["relative"]
    assert wb.summary["test/ctr"] == result["metrics"]["ctr"]


def test_p_values_are_holm_corrected_across_treatments_in_the_record(tmp_path):
    """Each comparison carries p_holm: Holm across the run's treatments per metric and test, equal to a plain
    step-down (p_(i) * (m - i), running maximum, capped at 1); with one treatment p_holm == p."""
    rec = run_experiment(compose_cfg(WORLD + ["model=ease", "task.treatments=[ease,itemknn,pop]"]), tmp_path / "r")
    cmp = rec["ab_test"]["comparisons"]
    for metric in cmp["ease"]:
        for test in ("plain", "cuped"):
            expect = holm_step_down([cmp[a][metric][test]["p"] for a in cmp])
            assert [cmp[a][metric][test]["p_holm"] for a in cmp] == pytest.approx(expect, rel=1e-12, abs=0)
    assert rec["metrics"]["ctr_p_holm"] == cmp["ease"]["ctr"]["plain"]["p_holm"]
    one = run_experiment(compose_cfg(WORLD + ["model=ease", "task.treatments=[ease]"]), tmp_path / "one")
    c = one["ab_test"]["comparisons"]["ease"]["ctr"]["plain"]
    assert c["p_holm"] == c["p"]


def holm_step_down(raw: list[float]) -> list[float]:
    """Holm's adjusted p-values written plainly: p_(i) * (m - i) in ascending order, running maximum, capped at 1."""
    order = sorted(range(len(raw)), key=lambda i: raw[i])
    adjusted, running = [0.0] * len(raw), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(raw) - rank) * raw[i]))
        adjusted[i] = running
    return adjusted
