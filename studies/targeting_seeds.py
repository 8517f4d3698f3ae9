"""Seed study of uplift targeting (issue 27's must-show items), on simulated campaigns with planted
per-customer uplift (crmlab.simulate.uplift). Prints the numbers docs/methods/targeting.md quotes.

* heterogeneous stores: the policy's TRUE expected incremental profit (from the planted truth) as a
  share of the oracle policy's, against sending everyone the best arm and sending no one, and
  whether the Qini interval excludes 0;
* stores with no heterogeneity (every customer the same uplift): the share of seeds whose Qini
  interval includes 0 and where the fallback is taken.

``--boosting previous`` runs the boosting configuration before the 1M speed-up (100 rounds at
learning rate 0.05 instead of 50 at 0.1) for the before/after comparison docs/methods/targeting.md
gives.

Usage: python studies/targeting_seeds.py [--het-seeds 5] [--null-seeds 20] [--n 40000] [--null-n 10000]
                                         [--boosting shipped|previous]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from crmlab.simulate.uplift import oracle_arms, simulate_uplift_campaign, true_profit
from crmlab.targeting import learners
from crmlab.targeting.pipeline import target


def heterogeneous(seeds: int, n: int, learner: str) -> pd.DataFrame:
    rows = []
    for seed in range(seeds):
        o, s, truth = simulate_uplift_campaign(n, seed=seed)
        t0 = time.perf_counter()
        r = target(s, o, learner=learner, seed=seed, n_boot=100, observation_end="2025-11-11")
        ids = truth["customers"].index
        mine = true_profit(truth, r.send_list.set_index("customer_id")["arm"])
        oracle = true_profit(truth, oracle_arms(truth))
        best_all = max(true_profit(truth, pd.Series(a, index=ids)) for a in truth["arms"])
        rows.append({"seed": seed, "learner": r.learner, "share_of_oracle": mine / oracle,
                     "beats_best_arm_for_all": mine > best_all, "beats_no_one": mine > 0,
                     "qini_excludes_0": r.qini["ci_low"] > 0, "fallback": r.fallback is not None,
                     "seconds": time.perf_counter() - t0})
        print(rows[-1], flush=True)
    return pd.DataFrame(rows)


def null(seeds: int, n: int, learner: str) -> pd.DataFrame:
    rows = []
    for seed in range(seeds):
        o, s, _ = simulate_uplift_campaign(n, seed=1000 + seed, heterogeneous=False, flat_uplift=0.02)
        r = target(s, o, learner=learner, seed=seed, n_boot=100, observation_end="2025-11-11")
        rows.append({"seed": 1000 + seed, "qini_includes_0": r.qini["ci_low"] <= 0 <= r.qini["ci_high"],
                     "fallback": r.fallback is not None, "arms_in_list": len(set(r.send_list["arm"]))})
        print(rows[-1], flush=True)
    return pd.DataFrame(rows)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--het-seeds", type=int, default=5)
    ap.add_argument("--null-seeds", type=int, default=20)
    ap.add_argument("--n", type=int, default=40_000)
    ap.add_argument("--null-n", type=int, default=10_000)
    ap.add_argument("--learner", default="x")
    ap.add_argument("--only", choices=["het", "null"])
    ap.add_argument("--boosting", choices=["shipped", "previous"], default="shipped")
    a = ap.parse_args()
    if a.boosting == "previous":
        learners._HGB.update(max_iter=100, learning_rate=0.05)
    print(f"boosting: {learners._HGB}", flush=True)
    if a.only != "null":
        h = heterogeneous(a.het_seeds, a.n, a.learner)
        print(f"heterogeneous ({a.n:,} customers, learner {a.learner}, {len(h)} seeds): share of oracle "
              f"min {h.share_of_oracle.min():.3f} mean {h.share_of_oracle.mean():.3f}; beats best arm for all "
              f"{h.beats_best_arm_for_all.mean():.0%}; beats no one {h.beats_no_one.mean():.0%}; Qini excludes 0 "
              f"{h.qini_excludes_0.mean():.0%}; mean {h.seconds.mean():.1f} s")
    if a.only != "het":
        z = null(a.null_seeds, a.null_n, a.learner)
        print(f"no heterogeneity ({a.null_n:,} customers, learner {a.learner}, {len(z)} seeds): Qini interval "
              f"includes 0 in {z.qini_includes_0.mean():.0%}; fallback taken in {z.fallback.mean():.0%}; "
              f"one arm (or none) for all in {(z.arms_in_list == 1).mean():.0%}")
