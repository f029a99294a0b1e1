"""Checks of the simulated A/B test against what its statistics promise, on a small seeded world (used by
scripts/ab_validation.py and the tests):

* A/A: over repetitions (new assignment and new clicks each time, same users and policy) the Welch test rejects
  at rate alpha; naive peeking at n_looks looks rejects more often; mSPRT at most alpha;
* planted effect: a treatment whose true average effect on per-user CTR is known exactly,
  ATE = mean_u [(1/K) sum_k e_k (a(u, t_uk) - a(u, c_uk))] (with return_gain = 0 a user's number of sessions is
  independent of the clicks, so E[ctr_u] = (1/K) sum_k e_k a(u, i_uk) for a fixed slate of K items); the
  empirical power (rejection rate) is compared with the computed power at the arm sizes, se from the per-user
  spreads of a pilot simulation of every user under each policy; CUPED's estimates are compared with the plain
  ones (same mean, narrower intervals).

Each repetition draws its ``sample`` users afresh from the world's population (new users, new assignment, new
clicks), as the power formula assumes (users sampled from a large population). With the same users in every
repetition the estimates vary less than that formula says (Neyman's finite-population variance
S_c^2/n_c + S_t^2/n_t - S_tau^2/n subtracts the spread of the users' own effects), and the empirical power
exceeds the computed one.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from recux.simulation import abstats
from recux.simulation.experiment import ABSettings, run_ab
from recux.simulation.oracle import Oracle
from recux.simulation.sessions import ClickModel, simulate


@dataclass
class World:
    oracle: Oracle
    click: ClickModel
    users: np.ndarray
    control: np.ndarray  # (n_users, K) fixed slates
    treatment: np.ndarray


def make_world(n_users: int = 2000, n_items: int = 200, dim: int = 8, target_ctr: float = 0.05,
               heterogeneity: float = 1.0, swap_share: float = 0.1, seed: int = 0,
               click: ClickModel | None = None) -> World:
    """Low-rank true preferences (as the synthetic dataset's); control = a random fixed slate per user,
    treatment = the same slate with each position swapped, with probability ``swap_share``, for one of the
    user's 20 best items (a planted, known improvement)."""
    click = click or ClickModel(n_sessions=3, return_gain=0.0, return_base=0.9)
    rng = np.random.default_rng([seed, 0x7E57])
    scores = rng.standard_normal((n_users, dim)) @ rng.standard_normal((dim, n_items)) / np.sqrt(dim)
    oracle = Oracle.calibrated(scores, target_ctr, float(click.exam.mean()), heterogeneity=heterogeneity, seed=seed)
    k = click.slate_size
    control = np.argsort(rng.random((n_users, n_items)), axis=1)[:, :k].astype(np.int32)
    best = np.argsort(-oracle.attract, axis=1)[:, :20]
    treatment = control.copy()
    swap = rng.random((n_users, k)) < swap_share
    treatment[swap] = best[np.nonzero(swap)[0], rng.integers(0, 20, int(swap.sum()))]
    return World(oracle, click, np.arange(n_users), control, treatment)


def expected_ctr(world: World, slates: np.ndarray) -> np.ndarray:
    """Each user's expected CTR under a fixed slate: (1/K) sum_k e_k a(u, i_uk)."""
    a = np.take_along_axis(world.oracle.attract, slates, axis=1).astype(np.float64)
    return (a * world.click.exam[None, : slates.shape[1]]).mean(axis=1)


def _sample(world: World, sample: int | None, seed: int) -> np.ndarray:
    n = len(world.users)
    if sample is None or sample >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng([seed, 0x5A]).choice(n, sample, replace=False))


def aa_repetitions(world: World, reps: int, settings: ABSettings, seed: int = 0,
                   sample: int | None = None) -> dict[str, np.ndarray]:
    """Per A/A repetition: the plain and CUPED p-values of the primary metric, naive-peeking and mSPRT rejection."""
    out: dict[str, list] = {"p": [], "p_cuped": [], "peeking": [], "msprt": []}
    for r in range(reps):
        rows = _sample(world, sample, seed * 100_003 + r)
        res = run_ab({"control": world.control[rows], "control_b": world.control[rows]}, world.users[rows],
                     world.oracle.attract, world.click, seed * 100_003 + r, settings)
        cmp = res.comparisons["control_b"][settings.primary]
        out["p"].append(cmp["plain"]["p"])
        out["p_cuped"].append(cmp["cuped"]["p"] if "cuped" in cmp else np.nan)
        out["peeking"].append(res.sequential["control_b"]["rejects"]["naive_any_look"])
        out["msprt"].append(res.sequential["control_b"]["rejects"]["msprt"])
    return {k: np.asarray(v) for k, v in out.items()}


def pilot_se(world: World, n_control: int, n_treatment: int, metric: str = "ctr", reps: int = 5) -> float:
    """The standard error of the difference of arm means, from the per-user spread of every user simulated
    under each policy (``reps`` seeds pooled)."""
    sds = []
    for slates in (world.control, world.treatment):
        values = np.concatenate([simulate(slates, world.users, world.oracle.attract, world.click,
                                          seed=10_000 + s).metric(metric) for s in range(reps)])
        sds.append(float(values.std(ddof=1)))
    return abstats.standard_error(sds[0], sds[1], n_control, n_treatment)


def planted_repetitions(world: World, reps: int, settings: ABSettings, seed: int = 0,
                        sample: int | None = None) -> dict[str, np.ndarray]:
    """Per repetition with the planted treatment: the plain and CUPED estimates, CI widths and rejections."""
    settings = replace(settings, metrics=(settings.primary,))
    out: dict[str, list] = {"diff": [], "diff_cuped": [], "width": [], "width_cuped": [], "reject": [],
                            "reject_cuped": []}
    for r in range(reps):
        rows = _sample(world, sample, seed * 100_003 + r)
        res = run_ab({"control": world.control[rows], "treatment": world.treatment[rows]}, world.users[rows],
                     world.oracle.attract, world.click, seed * 100_003 + r, settings)
        cmp = res.comparisons["treatment"][settings.primary]
        for key, part in (("", cmp["plain"]), ("_cuped", cmp["cuped"])):
            out["diff" + key].append(part["diff"])
            out["width" + key].append(part["ci_high"] - part["ci_low"])
            out["reject" + key].append(part["p"] < settings.alpha)
    return {k: np.asarray(v) for k, v in out.items()}
