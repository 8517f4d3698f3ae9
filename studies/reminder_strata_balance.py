"""Payment-reminder designs (``crmlab design --reminders``): how balanced are the arms, with and
without ``--strata``?

A small store of unpaid open orders (default 120, 30% from returning customers whose orders are
~4x larger, hour placed uniform; the store of tests/test_h2_reminder_strata.py, rebuilt here)
is randomised to ``none,6h`` over many seeds, without strata and with ``--strata customer``,
``value`` and ``value,customer,hour``. Printed per design: the median and 95th percentile of
|SMD| per covariate over seeds, and the share of seeds whose max |SMD| over the four covariates
is below 0.1 (a common "balanced" line).

Run: ``.venv/bin/python studies/reminder_strata_balance.py [--seeds 500] [--orders 120]``
"""
from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

from crmlab.experiments.reminder_design import REMINDER_COVARIATES, design_reminders

END = pd.Timestamp("2025-06-10 00:00")


def store(n_open: int, returning: float = 0.3, seed: int = 0) -> pd.DataFrame:
    """Unpaid open orders of distinct customers plus the returning customers' past paid orders."""
    rng = np.random.default_rng(1000 + seed)
    ret = rng.random(n_open) < returning
    past = np.where(ret, rng.integers(1, 5, n_open), 0)
    created = (END - pd.Timedelta(hours=48) + pd.to_timedelta(rng.integers(0, 24, n_open), unit="h")
               + pd.to_timedelta(rng.integers(0, 59, n_open), unit="min"))
    amount = np.round(rng.lognormal(4, 0.3, n_open) * np.where(ret, 4, 1), 2)
    rows = [{"order_id": f"U{i}", "customer_id": f"c{i}", "created_time": created[i], "paid_time": pd.NaT,
             "closed_time": pd.NaT, "status": "unpaid", "amount": amount[i]} for i in range(n_open)]
    rows += [{"order_id": f"P{i}-{j}", "customer_id": f"c{i}", "created_time": created[i] - pd.Timedelta(days=30 * (j + 1)),
              "paid_time": created[i] - pd.Timedelta(days=30 * (j + 1)), "closed_time": pd.NaT, "status": "paid",
              "amount": 50.0} for i in np.flatnonzero(past) for j in range(past[i])]
    o = pd.DataFrame(rows)
    o.attrs["observation_end"] = END
    return o


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=500)
    ap.add_argument("--orders", type=int, default=120)
    a = ap.parse_args()
    orders = store(a.orders)
    print(f"{a.orders} unpaid orders, arms none,6h, {a.seeds} seeds")
    print("strata                  " + "  ".join(f"{c:>20s}" for c in REMINDER_COVARIATES) + "  max|SMD|<0.1")
    for strata in (None, "customer", "value", "value,customer,hour"):
        smd = {c: [] for c in REMINDER_COVARIATES}
        for s in range(a.seeds):
            d = design_reminders(orders, "none,6h", seed=s, strata=strata)
            for b in d["balance"]:
                smd[b["covariate"]].append(abs(b["smd"]["6h"]))
        worst = np.max(np.array([smd[c] for c in REMINDER_COVARIATES]), axis=0)
        cells = "  ".join(f"{np.median(smd[c]):8.3f} / {np.quantile(smd[c], 0.95):.3f}  " for c in REMINDER_COVARIATES)
        print(f"{str(strata or 'none'):22s}  {cells}  {np.mean(worst < 0.1):8.1%}")
    print("cells: median / 95th percentile of |SMD| over seeds")


if __name__ == "__main__":
    main()
