"""Off-policy estimators: a hand-computed case, and an independent per-round loop on random inputs."""

from __future__ import annotations

import numpy as np
import pytest

from recux.errors import ConfigError
from recux.ope.estimators import DM, DR, IPW, SNDR, SNIPW, DRos, OPEInputs, SwitchDR
from recux.ope.evaluate import evaluate, make_estimators


def _hand_case() -> OPEInputs:
    # 3 rounds, 2 items, 2 positions.
    action = np.array([0, 1, 0])
    position = np.array([0, 1, 1])
    reward = np.array([1.0, 0.0, 1.0])
    pscore = np.array([0.5, 0.25, 0.5])
    pi = np.zeros((3, 2, 2))
    pi[0, :, 0], pi[0, :, 1] = [0.8, 0.2], [0.3, 0.7]
    pi[1, :, 0], pi[1, :, 1] = [0.5, 0.5], [0.4, 0.6]
    pi[2, :, 0], pi[2, :, 1] = [0.5, 0.5], [0.1, 0.9]
    q = np.zeros((3, 2, 2))
    q[0, :, 0], q[0, :, 1] = [0.6, 0.1], [0.5, 0.2]
    q[1, :, 0], q[1, :, 1] = [0.9, 0.9], [0.3, 0.4]
    q[2, :, 0], q[2, :, 1] = [0.2, 0.2], [0.5, 0.0]
    return OPEInputs(reward, action, position, pscore, pi, q)


# w = pi_e(a_i | k_i) / p_i = [0.8/0.5, 0.6/0.25, 0.1/0.5] = [1.6, 2.4, 0.2]; mean(w) = 4.2/3 = 1.4
# DM_i = [0.8*0.6 + 0.2*0.1, 0.4*0.3 + 0.6*0.4, 0.1*0.5 + 0.9*0.0] = [0.50, 0.36, 0.05]
# r - q(a_i, k_i) = [1 - 0.6, 0 - 0.4, 1 - 0.5] = [0.4, -0.4, 0.5]
HAND = {
    "dm": (0.50 + 0.36 + 0.05) / 3,
    "ipw": (1.6 * 1 + 2.4 * 0 + 0.2 * 1) / 3,
    "snipw": (1.6 * 1 + 2.4 * 0 + 0.2 * 1) / 3 / 1.4,
    "dr": ((0.50 + 1.6 * 0.4) + (0.36 + 2.4 * -0.4) + (0.05 + 0.2 * 0.5)) / 3,
    "sndr": ((0.50 + 1.6 * 0.4 / 1.4) + (0.36 + 2.4 * -0.4 / 1.4) + (0.05 + 0.2 * 0.5 / 1.4)) / 3,
    # lambda = 2: the correction is kept where w <= 2 (rounds 0 and 2), dropped for round 1 (w = 2.4)
    "switch-dr": ((0.50 + 1.6 * 0.4) + 0.36 + (0.05 + 0.2 * 0.5)) / 3,
    # lambda = 1: w -> w / (w^2 + 1) = [1.6/3.56, 2.4/6.76, 0.2/1.04]
    "dr-os": ((0.50 + 1.6 / 3.56 * 0.4) + (0.36 + 2.4 / 6.76 * -0.4) + (0.05 + 0.2 / 1.04 * 0.5)) / 3,
}


def test_hand_computed_case():
    inp = _hand_case()
    got = {e.name: e.estimate(inp) for e in (DM(), IPW(), SNIPW(), DR(), SNDR(), SwitchDR(lambda_=2.0),
                                             DRos(lambda_=1.0))}
    for name, want in HAND.items():
        assert got[name] == pytest.approx(want, abs=1e-12), name
    assert HAND["dr"] == pytest.approx(0.23)  # the arithmetic above, spelled out once: (1.14 - 0.60 + 0.15) / 3


def test_limits_of_the_hyper_parameters():
    inp = _hand_case()
    dr = DR().estimate(inp)
    assert SwitchDR(lambda_=np.inf).estimate(inp) == pytest.approx(dr)
    assert DRos(lambda_=np.inf).estimate(inp) == pytest.approx(dr)
    assert DRos(lambda_=0.0).estimate(inp) == pytest.approx(DM().estimate(inp))
    assert SwitchDR(lambda_=0.0).estimate(inp) == pytest.approx(DM().estimate(inp))
    assert IPW(lambda_=1.0).estimate(inp) == pytest.approx((1.0 * 1 + 1.0 * 0 + 0.2 * 1) / 3)  # min(w, 1)


def _random_case(seed: int, n: int = 200, n_actions: int = 5, len_list: int = 3) -> OPEInputs:
    rng = np.random.default_rng(seed)
    pi = rng.dirichlet(np.ones(n_actions), size=(n, len_list)).transpose(0, 2, 1)  # sums to 1 over actions
    return OPEInputs(
        reward=rng.binomial(1, 0.3, n).astype(float),
        action=rng.integers(0, n_actions, n),
        position=rng.integers(0, len_list, n),
        pscore=rng.uniform(0.05, 1.0, n),
        action_dist=pi,
        q_hat=rng.uniform(0, 1, (n, n_actions, len_list)),
    )


def _reference(inp: OPEInputs, lam_switch: float, lam_os: float) -> dict[str, float]:
    """Each estimator as a plain loop over rounds."""
    n, n_actions, _ = inp.action_dist.shape
    w, dm, res = [], [], []
    for i in range(n):
        a, k = inp.action[i], inp.position[i]
        w.append(inp.action_dist[i, a, k] / inp.pscore[i])
        dm.append(sum(inp.action_dist[i, b, k] * inp.q_hat[i, b, k] for b in range(n_actions)))
        res.append(inp.reward[i] - inp.q_hat[i, a, k])
    w_mean = sum(w) / n
    out = {
        "dm": sum(dm) / n,
        "ipw": sum(w[i] * inp.reward[i] for i in range(n)) / n,
        "dr": sum(dm[i] + w[i] * res[i] for i in range(n)) / n,
        "sndr": sum(dm[i] + w[i] * res[i] / w_mean for i in range(n)) / n,
        "switch-dr": sum(dm[i] + (w[i] * res[i] if w[i] <= lam_switch else 0.0) for i in range(n)) / n,
        "dr-os": sum(dm[i] + lam_os * w[i] / (w[i] ** 2 + lam_os) * res[i] for i in range(n)) / n,
    }
    out["snipw"] = out["ipw"] / w_mean
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_against_a_per_round_loop(seed):
    inp = _random_case(seed)
    lam_switch, lam_os = 3.0, 5.0
    want = _reference(inp, lam_switch, lam_os)
    ests = (DM(), IPW(), SNIPW(), DR(), SNDR(), SwitchDR(lambda_=lam_switch), DRos(lambda_=lam_os))
    for est in ests:
        assert est.estimate(inp) == pytest.approx(want[est.name], rel=1e-12), est.name


def test_model_based_estimators_refuse_without_a_reward_model():
    inp = _hand_case()
    bare = OPEInputs(inp.reward, inp.action, inp.position, inp.pscore, inp.action_dist, None)
    assert IPW().estimate(bare) == pytest.approx(HAND["ipw"])
    with pytest.raises(ConfigError, match="reward model"):
        DR().estimate(bare)
    with pytest.raises(ConfigError, match="reward model"):
        evaluate(make_estimators(["dm"]), bare)


def test_shape_errors_name_the_input():
    inp = _hand_case()
    with pytest.raises(ConfigError, match="action_dist"):
        OPEInputs(inp.reward, inp.action, inp.position, inp.pscore, inp.action_dist[:2], inp.q_hat)
    with pytest.raises(ConfigError, match="q_hat"):
        OPEInputs(inp.reward, inp.action, inp.position, inp.pscore, inp.action_dist, inp.q_hat[:, :1])


def test_evaluate_relative_error_and_interval():
    inp = _random_case(5)
    truth = 0.3
    out = evaluate(make_estimators(), inp, truth, ci={"n_bootstrap_samples": 200, "random_state": 0})
    assert set(out) == {"dm", "ipw", "snipw", "dr", "sndr", "switch-dr", "dr-os"}
    for name, row in out.items():
        assert row["relative_error"] == pytest.approx(abs(row["estimate"] - truth) / truth)
        assert row["ci"]["lower"] <= row["estimate"] <= row["ci"]["upper"], name
    assert out["switch-dr"]["lambda"] in (10, 50, 100, 500, 1000, 5000, 10000, np.inf)
