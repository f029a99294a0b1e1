"""The OBD off-policy-estimation benchmark run with ``obp`` itself, for timing (and values) beside recux's.

Runs under an environment that has obp (obp 0.4.1 needs pandas<2 and numpy<2, so give it its own virtual
environment); scripts/ope_speed.py starts it with that environment's python. Not importable from recux.
Protocol as scripts/ope_validation.py (random -> BTS, campaign all): BernoulliTS(is_zozotown_prior) action
distribution from ``n_sim`` simulations (seed 12345), ``n_runs`` bootstrap resamples, RegressionModel with
LogisticRegression(C=100, max_iter=10000, random_state=12345) and 3-fold cross-fitting, then DM, IPW, SNIPW, DR,
SNDR and Switch-DR and DRos: SLOPE-tuned with obp >= 0.5; with obp 0.4.1, which has no tuning, at each of the 8
candidate lambdas (the work a tuner does). Under obp >= 0.5 the values are those of OBP's example. Prints one JSON object: phase times and the relative errors' mean/std.

  /tmp/obpenv/bin/python scripts/ope_obp_reference.py [--n-runs 30] [--n-sim 1000000]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n-runs", type=int, default=30)
    ap.add_argument("--n-sim", type=int, default=1_000_000)
    args = ap.parse_args()
    t_start = time.perf_counter()
    import obp
    from obp.dataset import OpenBanditDataset
    from obp.ope import (
        DirectMethod,
        DoublyRobust,
        DoublyRobustWithShrinkage,
        InverseProbabilityWeighting,
        OffPolicyEvaluation,
        RegressionModel,
        SelfNormalizedDoublyRobust,
        SelfNormalizedInverseProbabilityWeighting,
        SwitchDoublyRobust,
    )
    from obp.policy import BernoulliTS
    from sklearn.linear_model import LogisticRegression

    lambdas = [10, 50, 100, 500, 1000, 5000, 10000, np.inf]
    base = [DirectMethod(), InverseProbabilityWeighting(), SelfNormalizedInverseProbabilityWeighting(),
            DoublyRobust(), SelfNormalizedDoublyRobust()]
    try:  # obp >= 0.5: SLOPE-tuned Switch-DR and DRos, built per run as OBP's example does in each worker
        from obp.ope import DoublyRobustWithShrinkageTuning, SwitchDoublyRobustTuning

        def make_estimators() -> list:
            return [*base, SwitchDoublyRobustTuning(lambdas=list(lambdas)),
                    DoublyRobustWithShrinkageTuning(lambdas=list(lambdas))]
    except ImportError:  # obp 0.4: no tuning; every candidate lambda (the work a tuner does)
        fixed = [*base]
        for lam in lambdas:
            fixed.append(SwitchDoublyRobust(tau=lam, estimator_name=f"switch-dr-{lam}"))
            fixed.append(DoublyRobustWithShrinkage(lambda_=lam, estimator_name=f"dr-os-{lam}"))

        def make_estimators() -> list:
            return fixed
    times = {"import_s": time.perf_counter() - t_start}
    t0 = time.perf_counter()
    obd = OpenBanditDataset(behavior_policy="random", campaign="all")
    truth = OpenBanditDataset.calc_on_policy_policy_value_estimate(behavior_policy="bts", campaign="all")
    times["load_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    policy = BernoulliTS(n_actions=obd.n_actions, len_list=obd.len_list, random_state=12345,
                         is_zozotown_prior=True, campaign="all")
    dist = policy.compute_batch_action_dist(n_sim=args.n_sim)[0]
    times["action_dist_s"] = time.perf_counter() - t0
    times["reward_model_s"] = times["estimators_s"] = 0.0
    errors: dict[str, list[float]] = {}
    for b in range(args.n_runs):
        fb = obd.sample_bootstrap_bandit_feedback(random_state=b)
        t0 = time.perf_counter()
        reg = RegressionModel(n_actions=obd.n_actions, len_list=obd.len_list, action_context=obd.action_context,
                              base_model=LogisticRegression(max_iter=10000, C=100, random_state=12345))
        q_hat = reg.fit_predict(context=fb["context"], action=fb["action"], reward=fb["reward"],
                                position=fb["position"], pscore=fb["pscore"], n_folds=3, random_state=12345)
        t1 = time.perf_counter()
        ope = OffPolicyEvaluation(bandit_feedback=fb, ope_estimators=make_estimators())
        rel = ope.evaluate_performance_of_estimators(
            ground_truth_policy_value=truth, action_dist=np.tile(dist, (fb["n_rounds"], 1, 1)),
            estimated_rewards_by_reg_model=q_hat, metric="relative-ee")
        times["reward_model_s"] += t1 - t0
        times["estimators_s"] += time.perf_counter() - t1
        for name, v in rel.items():
            errors.setdefault(name, []).append(float(v))
    times["total_s"] = time.perf_counter() - t_start
    summary = {k: {"mean": float(np.mean(v)), "std": float(np.std(v, ddof=1))} for k, v in errors.items()}
    print(json.dumps({"obp_version": obp.__version__, "n_runs": args.n_runs, "n_sim": args.n_sim,
                      "times": times, "summary": summary}))


if __name__ == "__main__":
    main()
