"""Benchmark: ``crmlab target`` on a 1M-customer campaign (250k customers per arm: three messaged
arms and the holdout), the feature snapshot computed in the engine (DuckDB).

Not run by the tests. The store is simulated (crmlab.simulate.uplift), validated once into a clean
Parquet file (not timed, as `crmlab validate --clean-out` is run once in practice), then the
command is timed end to end (loading, outcomes, snapshot, cross-fitted learners, bootstrap
intervals, the send list).

Usage: python benchmarks/targeting.py [--customers 1000000] [--learner auto] [--dir /tmp/crmlab_target_bench]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

from crmlab.simulate.uplift import simulate_uplift_campaign

if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument("--learner", default="auto")
    ap.add_argument("--dir", default="/tmp/crmlab_target_bench")
    a = ap.parse_args()
    os.makedirs(a.dir, exist_ok=True)
    orders_csv, sends_csv = os.path.join(a.dir, "orders.csv"), os.path.join(a.dir, "sends.csv")
    clean = os.path.join(a.dir, "clean.parquet")
    t0 = time.perf_counter()
    o, s, _ = simulate_uplift_campaign(a.customers, seed=0, arms=("A@10:00", "A@17:00", "B@17:00"),
                                       holdout_share=0.25)
    o.to_csv(orders_csv, index=False)
    s.to_csv(sends_csv, index=False)
    exe = os.path.join(os.path.dirname(sys.executable), "crmlab")
    subprocess.run([exe, "validate", "--orders", orders_csv, "--clean-out", clean], check=True,
                   stdout=subprocess.DEVNULL)
    print(f"setup (simulate, write, validate once): {time.perf_counter() - t0:.0f} s; "
          f"{len(o):,} order lines, {len(s):,} sends", flush=True)
    t1 = time.perf_counter()
    subprocess.run([exe, "target", "--orders", clean, "--sends", sends_csv, "--out", os.path.join(a.dir, "send_list.csv"),
                    "--observation-end", "2025-11-11", "--learner", a.learner], check=True)
    print(f"crmlab target, {a.customers:,} customers, learner {a.learner}: {time.perf_counter() - t1:.0f} s")
