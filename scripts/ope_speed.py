"""Time the OBD off-policy-estimation benchmark (random -> BTS, campaign all) in recux and in obp itself.

recux runs in this process twice: ``recux`` simulates the BTS action distribution (imports included; two numba
threads) while a lower-priority thread fits the bootstrap runs' reward models, then evaluates the runs on
``--workers`` threads (action_dist_and_runs_s: the wall time of both; reward_model_s and estimators_s: summed
over runs, overlapping),
``recux_cached`` reads it from $RECUX_DATA/ope as task=ope does by default (filled in between; imports already
done). Protocol as scripts/ope_validation.py: load, BTS action distribution from 1,000,000 simulations, ``n_runs`` bootstrap runs each with a cross-fitted logistic reward model and the seven estimators,
Switch-DR/DRos tuned by SLOPE over 8 lambdas). obp runs scripts/ope_obp_reference.py under ``--obp-python``
(an environment with obp, e.g. obp 0.4.1 with pandas<2 and numpy<2), one after the other, never concurrently.

  .venv/bin/python scripts/ope_speed.py --obp-python /tmp/obpenv/bin/python [--n-runs 30] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path


def time_recux(n_runs: int, n_sim: int, cache: bool, workers: int) -> dict:
    t_start = time.perf_counter()
    from recux.ope.evaluate import make_estimators
    from recux.ope.protocol import bootstrap_runs, start_action_dist
    from recux.ope.reward_model import LogisticRewardModel
    from recux.plugins.datasets.obd import OpenBanditDataset

    times = {"import_s": time.perf_counter() - t_start}
    t0 = time.perf_counter()
    logs = OpenBanditDataset(campaign="all").load()
    data, truth = logs["random"], logs["bts"].on_policy_value
    times["load_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    dist = start_action_dist("bts", logs, data.n_actions, data.len_list, n_sim=n_sim, random_state=12345,
                             cache=cache)  # on a worker thread; the runs fit their reward models meanwhile
    res = bootstrap_runs(data, dist, truth, n_runs, LogisticRewardModel(), make_estimators, workers)
    times["action_dist_and_runs_s"] = time.perf_counter() - t0
    times.update(dist.seconds)
    times.update(res.times)
    times["total_s"] = time.perf_counter() - t_start
    return {"times": times, "summary": res.summary()}


def _fill_cache(n_sim: int) -> None:
    from recux.ope.protocol import policy_action_dist
    from recux.plugins.datasets.obd import OpenBanditDataset

    logs = OpenBanditDataset(campaign="all").load()
    policy_action_dist("bts", logs, logs["random"].n_actions, logs["random"].len_list, n_sim, 12345, cache=True)


def time_obp(python: str, n_runs: int, n_sim: int) -> dict:
    script = Path(__file__).with_name("ope_obp_reference.py")
    t0 = time.perf_counter()
    proc = subprocess.run([python, str(script), "--n-runs", str(n_runs), "--n-sim", str(n_sim)],
                          capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"obp run failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["times"]["process_wall_s"] = wall
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--obp-python", default=None, help="python of an environment with obp; omit to time recux only")
    ap.add_argument("--n-runs", type=int, default=30)
    ap.add_argument("--n-sim", type=int, default=1_000_000)
    ap.add_argument("--workers", type=int, default=2, help="threads for the bootstrap runs (recux)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    result = {"recux": time_recux(args.n_runs, args.n_sim, cache=False, workers=args.workers)}
    _fill_cache(args.n_sim)
    result["recux_cached"] = time_recux(args.n_runs, args.n_sim, cache=True, workers=args.workers)
    if args.obp_python:
        result["obp"] = time_obp(args.obp_python, args.n_runs, args.n_sim)
    phases = ("import_s", "load_s", "action_dist_s", "action_dist_and_runs_s", "reward_model_s", "estimators_s",
              "total_s")
    print(f"{'phase':<16}" + "".join(f"{k:>14}" for k in result))
    for phase in phases:
        print(f"{phase:<16}" + "".join(f"{result[k]['times'].get(phase, float('nan')):14.2f}" for k in result))
    if "obp" in result:
        for key in ("recux", "recux_cached"):
            speedup = result["obp"]["times"]["total_s"] / result[key]["times"]["total_s"]
            print(f"speed-up of {key} (total): {speedup:.1f}x  (obp {result['obp'].get('obp_version')})")
            result[f"speedup_{key}"] = speedup
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    sys.exit(main())
