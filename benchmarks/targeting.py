"""Benchmark: ``crmlab target`` on a 1M-customer campaign (250k customers per arm: three messaged
arms and the holdout), the feature snapshot computed in the engine (DuckDB), against the obvious
alternatives in the same run.

Not run by the tests. The store is simulated (crmlab.simulate.uplift), validated once into a clean
Parquet file (not timed, as `crmlab validate --clean-out` is run once in practice), then each
configuration is run as its own process, end to end (loading, outcomes, snapshot, cross-fitted
learners, bootstrap intervals, the send list):

* ``auto`` — ``crmlab target`` as shipped (learner auto: the X-learner here);
* ``t`` — ``crmlab target --learner t`` (the T-learner: one model per arm, no effect regressions);
* ``previous-boosting`` — the X-learner with the previous boosting (100 rounds at learning rate
  0.05 instead of 50 at 0.1), everything else as shipped.

Each line gives the wall time, the process's CPU time (user + system: what the run costs, the
same on a busy machine) and its peak RSS, and the ratios to ``auto``. The machine's load average
is printed before and after: on a shared machine the wall time is the CPU time stretched by the
other jobs.

Usage: python benchmarks/targeting.py [--customers 1000000] [--runs auto,t,previous-boosting]
                                      [--dir /tmp/crmlab_target_bench] [--reuse]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

from crmlab.simulate.uplift import simulate_uplift_campaign

_PREVIOUS = ("import sys; import crmlab.targeting.learners as L; "
             "L._HGB.update(max_iter=100, learning_rate=0.05); "
             "from crmlab.cli.main import main; sys.exit(main(sys.argv[1:]))")


def setup(d: str, customers: int, reuse: bool) -> tuple[str, str]:
    """The campaign's send log and its validated orders in ``d`` (made unless reused)."""
    os.makedirs(d, exist_ok=True)
    orders_csv, sends_csv, clean = (os.path.join(d, f) for f in ("orders.csv", "sends.csv", "clean.parquet"))
    if reuse and os.path.exists(clean) and os.path.exists(sends_csv):
        print(f"reusing {clean} and {sends_csv}", flush=True)
        return clean, sends_csv
    t0 = time.perf_counter()
    o, s, _ = simulate_uplift_campaign(customers, seed=0, arms=("A@10:00", "A@17:00", "B@17:00"), holdout_share=0.25)
    o.to_csv(orders_csv, index=False)
    s.to_csv(sends_csv, index=False)
    exe = os.path.join(os.path.dirname(sys.executable), "crmlab")
    subprocess.run([exe, "validate", "--orders", orders_csv, "--clean-out", clean, "--no-cache"], check=True,
                   stdout=subprocess.DEVNULL)
    print(f"setup (simulate, write, validate once): {time.perf_counter() - t0:.0f} s; {len(o):,} order lines, "
          f"{len(s):,} sends", flush=True)
    return clean, sends_csv


def run(name: str, args: list) -> dict:
    """One configuration as its own process: wall, CPU (user + system) and peak RSS."""
    exe = os.path.join(os.path.dirname(sys.executable), "crmlab")
    cmd = {"auto": [exe, *args], "t": [exe, *args, "--learner", "t"],
           "previous-boosting": [sys.executable, "-c", _PREVIOUS, *args]}[name]
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{name}: exit {os.waitstatus_to_exitcode(status)}")
    return {"run": name, "wall_s": wall, "cpu_s": ru.ru_utime + ru.ru_stime, "peak_rss_mb": ru.ru_maxrss / 1024}


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument("--runs", default="auto,t,previous-boosting")
    ap.add_argument("--dir", default="/tmp/crmlab_target_bench")
    ap.add_argument("--reuse", action="store_true", help="reuse the store already written in --dir")
    a = ap.parse_args()
    clean, sends = setup(a.dir, a.customers, a.reuse)
    args = ["target", "--orders", clean, "--sends", sends, "--out", os.path.join(a.dir, "send_list.csv"),
            "--observation-end", "2025-11-11"]
    print(f"load average before: {', '.join(f'{x:.1f}' for x in os.getloadavg())} ({os.cpu_count()} cores)",
          flush=True)
    rows = []
    for name in a.runs.split(","):
        rows.append(run(name.strip(), args))
        r = rows[-1]
        print(f"{r['run']:>18}: {r['wall_s']:6.0f} s wall, {r['cpu_s']:6.0f} s CPU, "
              f"peak RSS {r['peak_rss_mb']:,.0f} MB", flush=True)
    print(f"load average after: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    base = next((r for r in rows if r["run"] == "auto"), rows[0])
    print(f"\ncrmlab target, {a.customers:,} customers (ratios to {base['run']}):")
    for r in rows:
        print(f"{r['run']:>18}: wall {r['wall_s']:6.0f} s (x{r['wall_s'] / base['wall_s']:.2f}), "
              f"CPU {r['cpu_s']:6.0f} s (x{r['cpu_s'] / base['cpu_s']:.2f}), peak RSS {r['peak_rss_mb']:,.0f} MB "
              f"(x{r['peak_rss_mb'] / base['peak_rss_mb']:.2f})")
