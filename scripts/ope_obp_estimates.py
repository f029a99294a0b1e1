"""obp's estimates on given inputs, for tests/test_ope_vs_obp.py (runs under a python that has obp >= 0.5).

Reads an .npz with reward, action, position, pscore, action_dist, q_hat; prints one JSON object: each estimator's
estimate (DM, IPW, SNIPW, DR, SNDR, Switch-DR and DRos at fixed lambdas, and Switch-DR/DRos tuned by obp's
default SLOPE and by "mse"), the tuned lambdas, and obp's bootstrap interval of IPW.

  <obp python> scripts/ope_obp_estimates.py inputs.npz LAMBDA_SWITCH LAMBDA_OS
"""

from __future__ import annotations

import json
import sys

import numpy as np


def main() -> None:
    path, lam_switch, lam_os = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
    import obp
    from obp.ope import (
        DirectMethod,
        DoublyRobust,
        DoublyRobustWithShrinkage,
        DoublyRobustWithShrinkageTuning,
        InverseProbabilityWeighting,
        SelfNormalizedDoublyRobust,
        SelfNormalizedInverseProbabilityWeighting,
        SwitchDoublyRobust,
        SwitchDoublyRobustTuning,
    )

    d = np.load(path)
    kw = {"reward": d["reward"], "action": d["action"], "position": d["position"], "pscore": d["pscore"],
          "action_dist": d["action_dist"], "estimated_rewards_by_reg_model": d["q_hat"]}
    lambdas = [10.0, 50.0, 100.0, 500.0, 1000.0, 5000.0, 10000.0, np.inf]
    out: dict = {"obp_version": obp.__version__}
    for name, est in {"dm": DirectMethod(), "ipw": InverseProbabilityWeighting(),
                      "snipw": SelfNormalizedInverseProbabilityWeighting(), "dr": DoublyRobust(),
                      "sndr": SelfNormalizedDoublyRobust(), "switch-dr": SwitchDoublyRobust(lambda_=lam_switch),
                      "dr-os": DoublyRobustWithShrinkage(lambda_=lam_os)}.items():
        out[name] = float(est.estimate_policy_value(**kw))
    for method in ("slope", "mse"):
        for name, cls in (("switch-dr", SwitchDoublyRobustTuning), ("dr-os", DoublyRobustWithShrinkageTuning)):
            est = cls(lambdas=list(lambdas), tuning_method=method)
            out[f"{name}-{method}"] = float(est.estimate_policy_value(**kw))
            out[f"{name}-{method}-lambda"] = float(est.best_hyperparam)
    ci = InverseProbabilityWeighting().estimate_interval(**kw, alpha=0.1, n_bootstrap_samples=300, random_state=3)
    out["ipw-ci"] = [float(v) for v in ci.values()]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
