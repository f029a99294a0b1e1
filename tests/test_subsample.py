"""data.train_fraction (recux.subsample): per-user kept counts follow the stated rounding rule (checked against
exact decimal arithmetic), samples are nested across fractions, `recent` keeps each user's latest rows, validation,
test and the test-time mask are unchanged, fraction 1.0 is bit-identical to a run without the setting, the
setting is part of the data hash (not the variant or the label) except at 1.0, and bad values are refused."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import numpy as np
import polars as pl
import pytest

from recux import identity, stages, subsample
from recux.data import Interactions
from recux.errors import ConfigError
from recux.pipeline import run_experiment
from tests._compose import compose_cfg

FAST = ["dataset=synthetic", "dataset.n_users=120", "dataset.n_items=80", "logger=none", "metrics.ks=[5,10]"]
FRACTIONS = (0.05, 0.1, 0.25, 0.5, 1.0)


def _train(seed: int = 0, n_users: int = 60, n_items: int = 50) -> Interactions:
    """Interactions with user sizes from 1 to ~40, random items and timestamps with ties."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 41, n_users)
    user = np.repeat(np.arange(n_users), sizes)
    perm = rng.permutation(len(user))  # rows not grouped by user
    return Interactions(user[perm], rng.integers(0, n_items, len(user))[perm], n_users, n_items,
                        timestamp=rng.integers(0, 30, len(user))[perm])


def expected_kept(n: int, fraction: float) -> int:
    """The documented rule with exact decimals: max(1, n * fraction rounded half up), at most n (0 for n = 0)."""
    if n == 0:
        return 0
    return min(n, max(1, int((Decimal(n) * Decimal(str(fraction))).quantize(Decimal(1), ROUND_HALF_UP))))


@pytest.mark.parametrize("keep", subsample.KEEP_RULES)
@pytest.mark.parametrize("fraction", FRACTIONS + (0.3, 0.7))
def test_kept_counts_follow_the_rounding_rule(keep, fraction):
    train = _train()
    rows = subsample.kept_rows(train, fraction, keep, seed=3)
    assert len(np.unique(rows)) == len(rows)
    got = np.bincount(train.user[rows], minlength=train.n_users)
    want = [expected_kept(int(n), fraction) for n in train.user_counts()]
    assert got.tolist() == want


@pytest.mark.parametrize("keep", subsample.KEEP_RULES)
def test_samples_are_nested_across_fractions(keep):
    train = _train(1)
    samples = [set(subsample.kept_rows(train, f, keep, seed=5).tolist()) for f in FRACTIONS]
    for small, large in zip(samples, samples[1:], strict=False):
        assert small < large or small == large
    assert samples[-1] == set(range(len(train)))


def test_recent_keeps_each_users_latest_rows():
    train = _train(2)
    kept = np.zeros(len(train), bool)
    kept[subsample.kept_rows(train, 0.25, "recent", seed=0)] = True
    for u in range(train.n_users):
        mine = train.user == u
        dropped = train.timestamp[mine & ~kept]
        if dropped.size:
            assert dropped.max() <= train.timestamp[mine & kept].min()


def test_random_sample_depends_on_the_seed_and_is_repeatable():
    train = _train(3)
    a, b = (subsample.kept_rows(train, 0.25, "random", seed=s) for s in (0, 1))
    assert not np.array_equal(a, b)
    assert np.array_equal(a, subsample.kept_rows(train, 0.25, "random", seed=0))


@pytest.mark.parametrize("split", ["random", "loo", "cold_items"])
def test_valid_test_and_mask_unchanged_training_is_a_subset(split):
    full = stages.prepare_data(stages.RunSpec.from_config(compose_cfg([*FAST, f"split={split}"])))
    part = stages.prepare_data(stages.RunSpec.from_config(
        compose_cfg([*FAST, f"split={split}", "data.train_fraction=0.25"])))
    for name in ("valid_csr", "test_csr", "train_csr"):  # train_csr is the "seen" mask: the full history
        assert (getattr(full, name) != getattr(part, name)).nnz == 0, name
    pairs = lambda i: set(zip(i.user.tolist(), i.item.tolist(), i.timestamp.tolist(), strict=True))  # noqa: E731
    assert pairs(part.split.train) < pairs(full.split.train)
    for p in ("valid", "test"):
        assert pairs(getattr(part.split, p)) == pairs(getattr(full.split, p))
    n_full = full.split.train.user_counts()
    assert part.split.train.user_counts().tolist() == [expected_kept(int(n), 0.25) for n in n_full]
    assert part.split.settings["n_train"] == len(part.split.train)
    assert part.split.settings["n_train_full"] == len(full.split.train)


def test_fraction_one_is_bit_identical_to_no_setting(tmp_path):
    base = [*FAST, "model=bpr", "model.max_epochs=2", "trainer.enable_progress_bar=false"]
    cfg_none = compose_cfg([*base, "~data"])
    assert "data" not in cfg_none
    a = run_experiment(cfg_none, tmp_path / "none")
    b = run_experiment(compose_cfg([*base, "data.train_fraction=1.0"]), tmp_path / "one")
    assert a["metrics"] == b["metrics"] and a["data_hash"] == b["data_hash"]
    assert a["variant_hash"] == b["variant_hash"] and a["label"] == b["label"]
    for name in ("per_user_metrics.parquet", "recommendations.parquet"):
        assert pl.read_parquet(tmp_path / "none" / name).equals(pl.read_parquet(tmp_path / "one" / name))
    c = run_experiment(compose_cfg([*base, "data.train_fraction=0.5"]), tmp_path / "half")
    assert c["metrics"] != a["metrics"] and c["split"]["n_train"] < a["split"]["n_train"]


def test_fraction_is_data_identity_not_variant():
    plain = stages.RunSpec.from_config(compose_cfg([*FAST, "~data"])).resolved
    runs = {f: stages.RunSpec.from_config(compose_cfg([*FAST, f"data.train_fraction={f}"]),
                                          [f"data.train_fraction={f}"]) for f in (0.25, 1.0)}
    assert identity.data_hash(runs[1.0].resolved) == identity.data_hash(plain)
    assert identity.data_hash(runs[0.25].resolved) != identity.data_hash(runs[1.0].resolved)
    recent = stages.RunSpec.from_config(compose_cfg([*FAST, "data.train_fraction=0.25", "data.train_keep=recent"]))
    assert identity.data_hash(recent.resolved) != identity.data_hash(runs[0.25].resolved)
    assert identity.variant_hash(runs[0.25].resolved) == identity.variant_hash(runs[1.0].resolved)
    assert stages.RunIdentity.of(runs[0.25]).label == stages.RunIdentity.of(runs[1.0]).label


@pytest.mark.parametrize("override, setting", [("data.train_fraction=0", "data.train_fraction"),
                                               ("data.train_fraction=1.5", "data.train_fraction"),
                                               ("data.train_fraction=half", "data.train_fraction"),
                                               ("data.train_keep=oldest", "data.train_keep")])
def test_bad_settings_are_refused_with_the_setting_named(override, setting):
    spec = stages.RunSpec.from_config(compose_cfg([*FAST, override]))
    with pytest.raises(ConfigError, match=setting):
        stages.prepare_data(spec)
    hashed = identity.data_hash(spec.resolved)  # a failed run's record with the refused value still gets a hash
    assert (hashed != identity.data_hash({**spec.resolved, "data": {}})) == (setting == "data.train_fraction")


def test_continual_task_refuses_a_fraction(tmp_path):
    """task=continual builds its own training periods: the setting is refused, not silently ignored."""
    cfg = compose_cfg([*FAST, "task=continual", "task.n_periods=3", "task.mode=retrain", "model=pop",
                       "data.train_fraction=0.5"])
    with pytest.raises(ConfigError, match="data.train_fraction=0.5 is not supported by task=continual"):
        run_experiment(cfg, tmp_path / "c")
