"""The simulated A/B test's statistics keep their promises on a seeded simulated world: the A/A false-positive
rate lies in the binomial band of alpha, naive peeking exceeds it while mSPRT does not, CUPED estimates the
planted effect without bias and with narrower intervals, and the empirical power is near the computed power."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from recux.errors import ConfigError
from recux.simulation import abstats
from recux.simulation.experiment import ABSettings, assign
from recux.simulation.validation import (
    aa_repetitions,
    expected_ctr,
    make_world,
    pilot_se,
    planted_repetitions,
)

SETTINGS = ABSettings(metrics=("ctr",), n_looks=10)


@pytest.fixture(scope="module")
def world():
    return make_world(n_users=6000, seed=3)


def test_assignment_is_balanced_seeded_and_a_permutation():
    a, b = assign(101, 3, seed=1), assign(101, 3, seed=1)
    assert np.array_equal(a.arm, b.arm) and not np.array_equal(a.arm, assign(101, 3, seed=2).arm)
    assert sorted(np.bincount(a.arm).tolist()) == [33, 34, 34]
    assert sorted(a.arrival.tolist()) == list(range(101))
    with pytest.raises(ConfigError, match="cannot fill 3 arms"):
        assign(5, 3, seed=0)


def test_aa_false_positive_rate_is_in_the_binomial_band_and_peeking_is_not(world):
    reps = 200
    aa = aa_repetitions(world, reps, SETTINGS, seed=11, sample=1000)
    lo, hi = stats.binom.interval(0.999, reps, 0.05)
    assert lo <= int(np.sum(aa["p"] < 0.05)) <= hi
    assert int(np.sum(aa["msprt"])) <= hi  # always valid: at most alpha
    assert int(np.sum(aa["peeking"])) > hi  # about 0.19 at 10 looks: far above alpha


def test_cuped_is_unbiased_and_narrower_on_the_planted_effect(world):
    reps = 150
    res = planted_repetitions(world, reps, SETTINGS, seed=5, sample=1000)
    truth = float((expected_ctr(world, world.treatment) - expected_ctr(world, world.control)).mean())
    for key in ("diff", "diff_cuped"):
        d = res[key]
        assert abs(d.mean() - truth) < 4 * d.std(ddof=1) / math.sqrt(reps)
    assert res["width_cuped"].mean() < res["width"].mean()
    # power: the rejection rate is the computed power within Monte-Carlo error (4 sd)
    computed = abstats.power(truth, pilot_se(world, 500, 500), 0.05)
    assert abs(res["reject"].mean() - computed) < 4 * math.sqrt(computed * (1 - computed) / reps) + 0.02
