"""Study: does crmlab's netting of credit notes find exactly what the simulator planted?

For each seed, a store with ``returns`` (a share of the paid orders reversed by credit notes,
some partial, a few unmatched credits) is written as CSV, with and without a truncated start,
and loaded with ``load_orders`` (default ``returns`` mode: the ``C`` ids say so). The
ledger's ``orders.returns`` is compared with truth.json's ``returns`` key by key; the
mismatches are counted. A store cut at ``truncate_before`` turns the credits of orders
before the cut into unmatched credits: the truth counts them so.

Run: ``.venv/bin/python studies/returns_truth.py [n_seeds] [n_customers] [share]``
(defaults 20, 3,000 and 0.08; about 3 s a store on one core). Prints one row per store and
the number of stores whose ledger differs from the truth.
"""
from __future__ import annotations

import sys
import tempfile

import pandas as pd

from crmlab.ingest.readers import load_orders
from crmlab.simulate.store import write_sample

KEYS = ("reversal_lines", "matched", "unmatched", "orders_fully_reversed", "amount_netted")


def one_store(seed: int, n_customers: int, share: float, cut: str | None) -> dict:
    """The ledger's and the truth's returns for one store."""
    kw = {"start": "2023-01-01", "truncate_before": cut} if cut else {}
    with tempfile.TemporaryDirectory() as d:
        truth = write_sample(d, n_customers=n_customers, seed=seed, returns=share, **kw)
        _, led = load_orders(f"{d}/orders.csv")
    t = truth["returns"]
    row = {"seed": seed, "cut": cut or "-", **{k: led.returns[k] for k in KEYS},
           "partly": t["orders_partly_reversed"]}
    row["equal"] = all(led.returns[k] == t[k] for k in KEYS)
    return row


def main(n_seeds: int = 20, n_customers: int = 3000, share: float = 0.08) -> pd.DataFrame:
    rows = [one_store(s, n_customers, share, cut) for s in range(n_seeds) for cut in (None, "2024-01-01")]
    out = pd.DataFrame(rows)
    print(out.to_string(index=False))
    print(f"\n{int((~out['equal']).sum())} of {len(out)} stores: ledger differs from the planted truth")
    return out


if __name__ == "__main__":
    args = sys.argv[1:]
    main(int(args[0]) if args else 20, int(args[1]) if len(args) > 1 else 3000,
         float(args[2]) if len(args) > 2 else 0.08)
