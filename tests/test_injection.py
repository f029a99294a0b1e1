"""Training-data injection (recux.injection, plugins/injectors): validation and test are never touched; noise and
sparsity change exactly the configured number of rows; shilling attacks add exactly the configured profiles;
fake users are never evaluated; the inject setting composes from config groups and is part of the data hash only
when set; bad settings are refused naming the setting."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from omegaconf import OmegaConf

from recux import identity, stages
from recux.errors import ConfigError
from recux.injection import apply_injections
from recux.pipeline import run_experiment
from tests._compose import compose_cfg

FAST = ["dataset=synthetic", "dataset.n_users=150", "dataset.n_items=120", "logger=none", "metrics.ks=[5,10]",
        "eval.efficiency=false"]
ALL = {"noise": {"name": "noise", "rate": 0.2}, "sparsity": {"name": "sparsity", "rate": 0.3},
       "zz_attack": {"name": "bandwagon_attack", "attack_size": 0.1, "filler_size": 0.1, "n_targets": 3,
                     "n_selected": 4}}


@pytest.fixture(scope="module")
def clean():
    return stages.prepare_data(stages.RunSpec.from_config(compose_cfg(FAST)))


def rows(inter) -> pl.DataFrame:
    return pl.DataFrame({"u": inter.user, "i": inter.item, "r": inter.rating, "t": inter.timestamp}).sort(
        ["u", "i", "t"])


def pairs(inter) -> set[tuple[int, int]]:
    return set(zip(inter.user.tolist(), inter.item.tolist(), strict=True))


def test_validation_and_test_are_untouched(clean):
    out = apply_injections(ALL, clean.dataset, clean.split, seed=0)
    n_real = clean.dataset.n_users
    assert out.n_fake_users == round(0.1 * n_real) > 0
    for part in ("valid", "test"):
        before, after = getattr(clean.split, part), getattr(out.split, part)
        assert rows(after).equals(rows(before))
        assert after.n_users == n_real + out.n_fake_users  # only the code space grows
    added = pairs(out.split.train) - pairs(clean.split.train)
    held_out = pairs(clean.split.valid) | pairs(clean.split.test)
    assert added and not (added & held_out)  # no injected pair is a validation or test pair


def test_pipeline_hook_injects_training_only_and_fake_users_are_never_evaluated(tmp_path):
    inject = ["+inject=[noise,bandwagon_attack]", "inject.bandwagon_attack.attack_size=0.1"]
    base = run_experiment(compose_cfg([*FAST, "model=pop"]), tmp_path / "clean")
    hit = run_experiment(compose_cfg([*FAST, "model=pop", *inject]), tmp_path / "inj")
    for part in ("valid", "test"):
        a = pl.read_parquet(tmp_path / "clean" / "split" / f"{part}.parquet")
        b = pl.read_parquet(tmp_path / "inj" / "split" / f"{part}.parquet")
        assert a.sort(a.columns).equals(b.sort(b.columns))
    train = pl.read_parquet(tmp_path / "inj" / "split" / "train.parquet")
    info = hit["dataset"]["info"]["injection"]
    n_real = base["dataset"]["n_users"]
    assert hit["dataset"]["n_users"] == n_real + info["n_fake_users"] == n_real + round(0.1 * n_real)
    assert train["user_id"].n_unique() >= n_real  # fake users' rows are in the training file
    assert hit["users"]["evaluated"] == base["users"]["evaluated"]
    evaluated = pl.read_parquet(tmp_path / "inj" / "per_user_metrics.parquet")["user_id"]
    real = set(pl.read_parquet(tmp_path / "clean" / "split" / "test.parquet")["user_id"].to_list())
    assert set(evaluated.to_list()) <= real
    assert hit["data_hash"] != base["data_hash"]


def test_noise_adds_and_sparsity_removes_exactly_the_rate(clean):
    train = clean.split.train
    noisy = apply_injections({"n": {"name": "noise", "rate": 0.25}}, clean.dataset, clean.split, seed=3).split.train
    log = pairs(clean.split.train) | pairs(clean.split.valid) | pairs(clean.split.test)
    added = pairs(noisy) - pairs(train)
    assert len(noisy) == len(train) + round(0.25 * len(train)) and len(added) == round(0.25 * len(train))
    assert not (added & log)
    sparse = apply_injections({"s": {"name": "sparsity", "rate": 0.4}}, clean.dataset, clean.split,
                              seed=3).split.train
    assert len(sparse) == len(train) - round(0.4 * len(train))
    kept = rows(sparse).join(rows(train), on=["u", "i", "r", "t"], how="anti")
    assert kept.height == 0  # every remaining row is an original training row


@pytest.mark.parametrize("attack", ["random_attack", "average_attack", "bandwagon_attack"])
def test_attacks_add_exactly_the_configured_profiles(clean, attack):
    cfg = {"name": attack, "attack_size": 0.08, "filler_size": 0.1, "n_targets": 4, "target_quantile": 0.5}
    if attack == "bandwagon_attack":
        cfg["n_selected"] = 6
    out = apply_injections({"a": cfg}, clean.dataset, clean.split, seed=1)
    train, n_real, n_items = clean.split.train, clean.dataset.n_users, clean.dataset.n_items
    pop = np.bincount(train.item, minlength=n_items)
    targets = np.asarray(out.info["injectors"]["a"]["targets"])
    assert len(targets) == 4 and np.all(pop[targets] <= np.quantile(pop, 0.5))
    np.testing.assert_array_equal(out.targets, targets)
    selected = set(np.argsort(-pop, kind="stable")[:6].tolist()) if attack == "bandwagon_attack" else set()
    fake = out.split.train.subset(out.split.train.user >= n_real)
    assert out.n_fake_users == round(0.08 * n_real)
    assert sorted(np.unique(fake.user)) == list(range(n_real, n_real + out.n_fake_users))
    n_fill = round(0.1 * n_items)
    for u in range(n_real, n_real + out.n_fake_users):
        items = fake.item[fake.user == u]
        assert len(items) == len(set(items.tolist())) == len(targets) + len(selected) + n_fill
        assert set(targets.tolist()) <= set(items.tolist()) and selected <= set(items.tolist())
    real = out.split.train.subset(out.split.train.user < n_real)
    assert rows(real).equals(rows(train))  # real users' training rows unchanged
    assert set(np.unique(fake.rating).tolist()) <= set(np.unique(train.rating).tolist())  # on the rating scale
    assert np.all(fake.rating[np.isin(fake.item, targets)] == train.rating.max())


def test_seeded_and_independent_per_key(clean):
    one = apply_injections({"noise": {"name": "noise", "rate": 0.1}}, clean.dataset, clean.split, seed=5)
    again = apply_injections([{"name": "noise", "rate": 0.1}], clean.dataset, clean.split, seed=5)
    other = apply_injections({"noise": {"name": "noise", "rate": 0.1}}, clean.dataset, clean.split, seed=6)
    assert rows(one.split.train).equals(rows(again.split.train))  # a one-item list draws as the mapping
    assert not rows(one.split.train).equals(rows(other.split.train))


def test_config_composes_and_is_part_of_the_data_hash_only_when_set():
    cfg = compose_cfg([*FAST, "+inject=[noise,average_attack]", "inject.noise.rate=0.3"])
    inject = OmegaConf.to_container(cfg.inject)
    assert inject["noise"] == {"name": "noise", "rate": 0.3}
    assert inject["average_attack"]["name"] == "average_attack"
    plain = OmegaConf.to_container(compose_cfg(FAST), resolve=True)
    assert "inject" not in plain
    assert identity.data_hash({**plain, "inject": {}}) == identity.data_hash(plain)
    with_noise = {**plain, "inject": {"noise": {"name": "noise", "rate": 0.1}}}
    assert identity.data_hash(with_noise) != identity.data_hash(plain)
    assert identity.variant_hash(with_noise) == identity.variant_hash(plain)
    task = compose_cfg([*FAST, "task=robustness", "+task.variants.n=[{name: noise, rate: 0.2}]",
                        "~task.variants.sparsity_60"])
    variants = OmegaConf.to_container(task.task.variants)
    assert variants["n"] == [{"name": "noise", "rate": 0.2}] and "sparsity_60" not in variants
    assert variants["noise_10"] == [{"name": "noise", "rate": 0.1}]


@pytest.mark.parametrize("cfg, setting", [({"name": "noise", "rate": 1.5}, "rate"),
                                          ({"name": "sparsity", "rate": 1.0}, "rate"),
                                          ({"name": "bandwagon_attack", "filler_size": -0.1}, "filler_size"),
                                          ({"name": "average_attack", "fillers": "most"}, "fillers")])
def test_bad_settings_are_refused_naming_the_setting(clean, cfg, setting):
    with pytest.raises(ConfigError, match=setting):
        apply_injections({"x": cfg}, clean.dataset, clean.split, seed=0)


def test_unknown_injector_and_missing_name_are_refused(clean):
    with pytest.raises(Exception, match="Known injector plugins"):
        apply_injections({"x": {"name": "nosie"}}, clean.dataset, clean.split, seed=0)
    with pytest.raises(ConfigError, match="inject.x"):
        apply_injections({"x": {"rate": 0.1}}, clean.dataset, clean.split, seed=0)


def test_later_injectors_count_and_perturb_real_users_only(clean):
    n_real = clean.dataset.n_users
    cfg = {"a1": {"name": "random_attack", "attack_size": 0.1}, "a2": {"name": "average_attack", "attack_size": 0.1},
           "b": {"name": "noise", "rate": 0.2}}
    out = apply_injections(cfg, clean.dataset, clean.split, seed=0)
    assert out.n_fake_users == 2 * round(0.1 * n_real)  # the second attack counts real users, not the first's fakes
    attacked = apply_injections({k: cfg[k] for k in ("a1", "a2")}, clean.dataset, clean.split, seed=0)
    added = pairs(out.split.train) - pairs(attacked.split.train)
    assert added and max(u for u, _ in added) < n_real  # noise lands on real users only


def test_every_inject_yaml_composes_and_builds():
    from pathlib import Path

    from recux import registry
    from recux.cli.run import CONFIG_MODULE  # noqa: F401  (the packaged conf)
    from recux.injection import injector_specs

    options = sorted(p.stem for p in (Path(__file__).parents[1] / "conf" / "inject").glob("*.yaml"))
    assert len(options) == 5
    cfg = compose_cfg([f"+inject=[{','.join(options)}]"])
    inject = OmegaConf.to_container(cfg.inject)
    assert sorted(inject) == options
    for _, name, params in injector_specs(inject, "inject"):
        registry.build("injector", name, params)
    robust = compose_cfg(["task=robustness"])
    registry.build("task", "robustness", {k: v for k, v in robust.task.items() if k != "name"})  # ListConfig ok
    with pytest.raises(ConfigError, match="task.variants.x"):
        registry.build("task", "robustness", {"variants": {"x": [{"name": "noise", "rate": 7}]}})


def test_injection_is_refused_with_the_cold_start_protocol():
    """Noise and attack fillers draw over the whole catalogue, so they could put held-out cold items into
    training: the combination is refused before any data is changed."""
    spec = stages.RunSpec.from_config(compose_cfg([*FAST, "task=cold_start", "split=cold_items", "+inject=[noise]"]))
    with pytest.raises(ConfigError, match="inject is not supported with task=cold_start"):
        stages.prepare_data(spec)
