"""Retention table and repurchase curve on 5M orders vs the obvious per-customer Python loops.

    .venv/bin/python benchmarks/bench_analyses.py [--orders 5000000]

Same synthetic orders for both sides, each in a fresh process; the loaded order table is
set-up (not timed). The loops are what an analyst writes first: a groupby over customers
with a Python function per customer. Both sides' results are compared for equality (the
all-cohort retained and eligible counts per day; at-risk and repurchased counts per k) and
the script stops with an error if they differ.
"""
from __future__ import annotations

import argparse
import os

from _common import measure, synthetic_lines, tmpdir

NAIVE_RETENTION = """
days = (1, 7, 30)
paid = o[o['status'] == 'paid']
last_full = pd.Timestamp('2025-12-31').normalize()
rows = []
for cust, g in paid.groupby('customer_id', observed=True):
    d = g['order_time'].dt.normalize()
    first = d.min()
    offs = set((d - first).dt.days)
    for n in days:
        if first + pd.Timedelta(days=n) <= last_full:
            rows.append((first.strftime('%Y-%m'), n, n in offs))
res = pd.DataFrame(rows, columns=['cohort', 'day', 'hit']).groupby('day')['hit'].agg(['sum', 'size'])
"""

NAIVE_CURVE = """
paid = o[o['status'] == 'paid']
end = pd.Timestamp('2025-12-31 23:59:59')
W = pd.Timedelta(days=90)
at_risk = [0] * 10
rep = [0] * 10
for cust, g in paid.groupby('customer_id', observed=True):
    t = sorted(g['order_time'])
    for k in range(1, min(len(t), 10) + 1):
        if t[k - 1] <= end - W:
            at_risk[k - 1] += 1
            if k < len(t) and t[k] - t[k - 1] <= W:
                rep[k - 1] += 1
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--orders", type=int, default=5_000_000)
    a = ap.parse_args()
    d = tmpdir()
    path = os.path.join(d, "orders.parquet")
    synthetic_lines(a.orders, lines_per_order=1.0).to_parquet(path)
    setup = (f"import pandas as pd\nfrom crmlab.ingest.readers import load_orders\nfrom crmlab.analyses.retention import retention_table\n"
             f"from crmlab.analyses.magic import repurchase_curve\no, _ = load_orders({path!r}, observation_end='2025-12-31')")
    print(f"{'analysis':>18} {'orders':>9} {'crmlab s':>9} {'loop s':>8} {'speed-up':>8}  equal")
    for name, ours, mine, loop, theirs in (
        ("retention table", "r = retention_table(o, days=(1, 7, 30))",
         "[[int(r.retained.at['all cohorts', d]), int(r.eligible.at['all cohorts', d])] for d in (1, 7, 30)]",
         NAIVE_RETENTION, "[[int(res.at[d, 'sum']), int(res.at[d, 'size'])] for d in (1, 7, 30)]"),
        ("repurchase curve", "c = repurchase_curve(o)",
         "[c.table['at_risk'].astype(int).tolist(), c.table['repurchased'].astype(int).tolist()]",
         NAIVE_CURVE, "[at_risk, rep]"),
    ):
        x = measure(ours, setup, result=mine)
        y = measure(loop, setup, result=theirs)
        same = x["result"] == y["result"]
        ratio = y["seconds"] / x["seconds"]
        print(f"{name:>18} {a.orders:>9} {x['seconds']:>9.2f} {y['seconds']:>8.1f} {ratio:>7.0f}x  "
              f"{'yes' if same else 'NO'}")
        if not same:
            raise SystemExit(f"{name}: crmlab {x['result']} != loop {y['result']}")


if __name__ == "__main__":
    main()
