"""rfm_summary on a pandas frame: this checkout vs the last commit vs lifetimes, at 1M orders.

    .venv/bin/python benchmarks/bench_clv_summary.py [--sizes 1000000,5000000] [--base HEAD] [--crmlab DIR]

Each side runs in a fresh process on the same synthetic orders (one row per order, string
customer ids, about four orders per customer over two years, a tenth of them unpaid). The
frame is what a notebook holds: ``load_orders`` of the Parquet file, not timed; for lifetimes
the paid orders with parsed times, not timed. Timed: ``rfm_summary(orders)`` (crmlab, here
and at ``--base``, checked out of git history with ``git archive``) and a second call on the
same frame; ``summary_data_from_transaction_data(..., freq="D")`` (lifetimes). Prints the
times, the ratios and peak memory (VmHWM), and checks the summaries are identical: the same
customers in the same order, frequency, recency and T exactly, monetary value to 1e-12
(day totals summed in another order), stopping with an error if not.
"""
from __future__ import annotations

import argparse
import os
import subprocess

import numpy as np
import pandas as pd

from _common import measure, tmpdir

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
END = "2025-12-31"
COLS = "s[['frequency', 'recency', 'T', 'monetary_value']]"


def synthetic_orders(n: int, seed: int = 0) -> pd.DataFrame:
    """``n`` orders (one row each), ``n / 4`` customers with string ids, two years, 10% unpaid."""
    rng = np.random.default_rng(seed)
    t0 = np.datetime64("2024-01-01T00:00:00")
    return pd.DataFrame({
        "customer_id": np.char.add("C", rng.integers(0, max(n // 4, 1), n).astype(str)),
        "order_id": np.char.add("O", np.arange(n).astype(str)),
        "order_time": (t0 + rng.integers(0, 730 * 86400, n).astype("timedelta64[s]")).astype(str),
        "amount": np.round(rng.gamma(5, 20, n), 2),
        "status": rng.choice(["paid"] * 9 + ["unpaid"], n),
    })


def checkout(rev: str) -> str:
    """``crmlab/`` at ``rev`` in a temporary folder (for sys.path)."""
    d = tmpdir("crmlab-base-")
    subprocess.run(f"git -C {ROOT} archive {rev} crmlab | tar -x -C {d}", shell=True, check=True)
    return d


def crmlab_side(where: str, path: str) -> dict:
    setup = (f"import sys; sys.path.insert(0, {where!r})\nfrom crmlab.ingest.readers import load_orders\n"
             f"from crmlab.clv.models import rfm_summary\no, _ = load_orders({path!r})")
    # the clock covers the first call only; the second (the same frame again) is timed after it
    again = f"__import__('timeit').timeit(lambda: rfm_summary(o, observation_end={END!r}), number=1)"
    return measure(f"s = rfm_summary(o, observation_end={END!r})", setup, result=f"({COLS}, {again})")


def identical(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    a, b = a.sort_index(), b.sort_index()
    a.index, b.index = a.index.astype(str), b.index.astype(str)
    exact = all(np.array_equal(a[c].to_numpy(float), b[c].to_numpy(float)) for c in ("frequency", "recency", "T"))
    money = np.allclose(a["monetary_value"].to_numpy(float), b["monetary_value"].to_numpy(float), rtol=1e-12, atol=0)
    return a.index.equals(b.index) and exact and money


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1000000")
    ap.add_argument("--base", default="HEAD", help="the commit to compare with (default: the last one)")
    ap.add_argument("--crmlab", default=ROOT, help="the folder holding the crmlab to measure (default: this checkout)")
    a = ap.parse_args()
    d, base = tmpdir(), checkout(a.base)
    print(f"{'orders':>9} {'lifetimes s':>11} {a.base + ' s':>9} {'now s':>7} {'again s':>8} {'vs lifetimes':>12} "
          f"{'vs ' + a.base:>9} {'lifetimes MiB':>13} {'now MiB':>8}  identical")
    for n in map(int, a.sizes.split(",")):
        path = os.path.join(d, f"orders{n}.parquet")
        synthetic_orders(n).to_parquet(path)
        theirs = measure("s = summary_data_from_transaction_data(t, 'customer_id', 'order_time', "
                         f"observation_period_end={END!r}, freq='D', monetary_value_col='amount')",
                         "import pandas as pd\nfrom lifetimes.utils import summary_data_from_transaction_data\n"
                         f"t = pd.read_parquet({path!r})\nt = t[t['status'] == 'paid']\n"
                         "t['order_time'] = pd.to_datetime(t['order_time'])", result=COLS)
        before = crmlab_side(base, path)
        now = crmlab_side(a.crmlab, path)
        ok = identical(now["result"][0], theirs["result"]) and identical(before["result"][0], theirs["result"])
        print(f"{n:>9} {theirs['seconds']:>11.2f} {before['seconds']:>9.2f} {now['seconds']:>7.2f} "
              f"{now['result'][1]:>8.2f} {theirs['seconds'] / now['seconds']:>11.1f}x "
              f"{before['seconds'] / now['seconds']:>8.1f}x {theirs['peak_mib']:>13.0f} {now['peak_mib']:>8.0f}  "
              f"{'yes' if ok else 'NO'}")
        if not ok:
            raise SystemExit(f"{n} orders: a summary differs from lifetimes'")


if __name__ == "__main__":
    main()
