"""crmlab.clv.models.rfm_summary vs lifetimes.utils.summary_data_from_transaction_data, 1M and 5M orders.

    .venv/bin/python benchmarks/bench_clv_summary.py [--sizes 1000000,5000000]

Each side runs in a fresh process on the same synthetic orders (string customer ids,
two years, one row per order). Setup (reading the Parquet file; for crmlab, load_orders,
which makes the categorical customer code once) is not timed; the summary is. Prints
both times, the ratio, peak memory (VmHWM) and checks the two summaries are equal (same
customers; frequency, recency, T and monetary value to 1e-9), stopping with an error if not.
"""
from __future__ import annotations

import argparse
import os

import numpy as np

from _common import measure, synthetic_lines, tmpdir


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1000000,5000000")
    a = ap.parse_args()
    d = tmpdir()
    print(f"{'orders':>9} {'lifetimes s':>11} {'crmlab s':>9} {'speed-up':>8} {'lifetimes MiB':>13} {'crmlab MiB':>10}"
          "  equal")
    for n in map(int, a.sizes.split(",")):
        df = synthetic_lines(n, lines_per_order=1.0)
        df = df[df["status"] == "paid"]
        path = os.path.join(d, f"orders{n}.parquet")
        df.to_parquet(path)
        del df
        cols = "s[['frequency', 'recency', 'T', 'monetary_value']].sort_index()"
        ours = measure("s = rfm_summary(o, observation_end='2025-12-31')",
                       f"from crmlab.ingest.readers import load_orders\nfrom crmlab.clv.models import rfm_summary\n"
                       f"o, _ = load_orders({path!r})", result=cols)
        theirs = measure("s = summary_data_from_transaction_data(t, 'customer_id', 'order_time', "
                         "observation_period_end='2025-12-31', freq='D', monetary_value_col='amount')",
                         "import pandas as pd\nfrom lifetimes.utils import summary_data_from_transaction_data\n"
                         f"t = pd.read_parquet({path!r})\nt['order_time'] = pd.to_datetime(t['order_time'])",
                         result=cols)
        a_, b_ = ours["result"], theirs["result"]
        a_.index, b_.index = a_.index.astype(str), b_.index.astype(str)
        same = a_.index.equals(b_.index) and np.allclose(a_.to_numpy(float), b_.to_numpy(float), rtol=1e-9, atol=1e-9)
        print(f"{n:>9} {theirs['seconds']:>11.2f} {ours['seconds']:>9.2f} {theirs['seconds'] / ours['seconds']:>7.1f}x "
              f"{theirs['peak_mib']:>13.0f} {ours['peak_mib']:>10.0f}  {'yes' if same else 'NO'}")
        if not same:
            raise SystemExit(f"{n} orders: crmlab's summary differs from lifetimes'")


if __name__ == "__main__":
    main()
