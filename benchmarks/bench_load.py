"""load_orders: this checkout vs the last commit vs plain pandas, 1M order lines (in memory, CSV, Parquet).

    .venv/bin/python benchmarks/bench_load.py [--sizes 1000000,5000000] [--base HEAD] [--crmlab DIR]
                                              [--formats frame,csv,parquet]

``frame``: 1M order lines already in memory (a DataFrame, as a notebook holds them after
``pd.read_sql`` or a read of its own; read from a pickle in the untimed setup) handed to
``crmlab.load_orders``; ``csv``/``parquet``: the same lines as a file. Each side runs in a
fresh process: crmlab as checked out here (or ``--crmlab DIR``), crmlab at ``--base``
(``git archive``), and the obvious alternative — ``pandas.read_csv`` (or ``read_parquet``) and a
groupby on ``order_id`` rolling lines up to orders. crmlab does more (validation, the ledger,
status mapping, a categorical customer code), so that ratio shows what it costs. Prints
times, ratios, peak memory, and whether this checkout's orders equal ``--base``'s.
"""
from __future__ import annotations

import argparse
import os
import subprocess

import numpy as np

from _common import measure, synthetic_lines, tmpdir

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: what is compared: the orders, their customers and times in order, and the amounts (an order's
#: lines are summed in the engine, in no fixed order: equal to 1e-12)
SUMMARY = ("(o['order_id'].astype(str).tolist(), o['customer_id'].astype(str).tolist(), o['order_time'].to_numpy(), "
           "o['amount'].to_numpy(), o['status'].astype(str).tolist(), led.to_dict())")


def checkout(rev: str) -> str:
    """``crmlab/`` at ``rev`` in a temporary folder (for sys.path)."""
    d = tmpdir("crmlab-base-")
    subprocess.run(f"git -C {ROOT} archive {rev} crmlab | tar -x -C {d}", shell=True, check=True)
    return d


def equal(a: tuple, b: tuple) -> bool:
    ids, cust, times, amount, status, ledger = a
    return (ids == b[0] and cust == b[1] and np.array_equal(times, b[2]) and status == b[4] and ledger == b[5]
            and np.allclose(amount, b[3], rtol=1e-12, atol=0))


def ours(where: str, fmt: str, path: str) -> dict:
    read = f"src = pd.read_pickle({path!r})" if fmt == "frame" else f"src = {path!r}"
    setup = f"import sys; sys.path.insert(0, {where!r})\nimport pandas as pd\nfrom crmlab.api import load_orders\n{read}"
    return measure("o, led = load_orders(src)", setup, result=SUMMARY)


def plain(fmt: str, path: str) -> dict:
    read = {"frame": "d = pd.read_pickle(p).copy()", "csv": "d = pd.read_csv(p)", "parquet": "d = pd.read_parquet(p)"}[fmt]
    timed = ("d['order_time'] = pd.to_datetime(d['order_time'])\n"
             "o = d.groupby('order_id').agg(customer_id=('customer_id','first'), "
             "order_time=('order_time','min'), amount=('amount','sum'))")
    if fmt == "frame":  # the frame is in memory before the clock starts
        return measure(timed, f"import pandas as pd\np = {path!r}\n{read}")
    return measure(f"{read}\n{timed}", f"import pandas as pd\np = {path!r}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1000000")
    ap.add_argument("--formats", default="frame,csv,parquet")
    ap.add_argument("--base", default="HEAD", help="the commit to compare with (default: the last one)")
    ap.add_argument("--crmlab", default=ROOT, help="the folder holding the crmlab to measure (default: this checkout)")
    a = ap.parse_args()
    d, base = tmpdir(), checkout(a.base)
    print(f"{'lines':>9} {'input':>7} {a.base + ' s':>9} {'now s':>7} {'faster':>7} {'pandas s':>9} {'vs pandas':>9} "
          f"{a.base + ' MiB':>10} {'now MiB':>8}  same orders")
    for n in map(int, a.sizes.split(",")):
        df = synthetic_lines(n)
        paths = {"frame": os.path.join(d, f"o{n}.pkl"), "csv": os.path.join(d, f"o{n}.csv"),
                 "parquet": os.path.join(d, f"o{n}.parquet")}
        df.to_pickle(paths["frame"])
        df.to_csv(paths["csv"], index=False)
        df.to_parquet(paths["parquet"])
        del df
        for fmt in a.formats.split(","):
            before, now, alt = ours(base, fmt, paths[fmt]), ours(a.crmlab, fmt, paths[fmt]), plain(fmt, paths[fmt])
            same = equal(before["result"], now["result"])
            print(f"{n:>9} {fmt:>7} {before['seconds']:>9.2f} {now['seconds']:>7.2f} "
                  f"{before['seconds'] / now['seconds']:>6.2f}x {alt['seconds']:>9.2f} "
                  f"{now['seconds'] / alt['seconds']:>8.2f}x {before['peak_mib']:>10.0f} {now['peak_mib']:>8.0f}  "
                  f"{'yes' if same else 'NO'}")


if __name__ == "__main__":
    main()
