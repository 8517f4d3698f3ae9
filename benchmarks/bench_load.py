"""Load time and peak memory of crmlab.ingest.readers.load_orders vs plain pandas, 1M and 5M order lines.

    .venv/bin/python benchmarks/bench_load.py [--sizes 1000000,5000000]

The alternative is the obvious one: ``pandas.read_csv`` (or ``read_parquet``) then a
groupby on ``order_id`` to roll lines up to orders, measured in the same run, each in a
fresh process. crmlab does more (validation, the ledger, status mapping, a categorical
customer code), so the ratio shows what that costs.
"""
from __future__ import annotations

import argparse
import os

from _common import measure, synthetic_lines, tmpdir


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1000000,5000000")
    a = ap.parse_args()
    d = tmpdir()
    print(f"{'lines':>9} {'format':>7} {'crmlab s':>9} {'pandas s':>9} {'ratio':>6} {'crmlab MiB':>10} {'pandas MiB':>10}")
    for n in map(int, a.sizes.split(",")):
        df = synthetic_lines(n)
        csv, pq = os.path.join(d, f"o{n}.csv"), os.path.join(d, f"o{n}.parquet")
        df.to_csv(csv, index=False)
        df.to_parquet(pq)
        del df
        for fmt, path, reader in (("csv", csv, "pd.read_csv(p)"), ("parquet", pq, "pd.read_parquet(p)")):
            ours = measure(f"o, led = load_orders({path!r})", "from crmlab.ingest.readers import load_orders")
            base = measure(f"p = {path!r}\nd = {reader}\nd['order_time'] = pd.to_datetime(d['order_time'])\n"
                           "o = d.groupby('order_id').agg(customer_id=('customer_id','first'), "
                           "order_time=('order_time','min'), amount=('amount','sum'))",
                           "import pandas as pd")
            print(f"{n:>9} {fmt:>7} {ours['seconds']:>9.2f} {base['seconds']:>9.2f} "
                  f"{ours['seconds'] / base['seconds']:>6.2f} {ours['peak_mib']:>10.0f} {base['peak_mib']:>10.0f}")


if __name__ == "__main__":
    main()
