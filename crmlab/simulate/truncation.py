"""Exports that start mid-life (issue 24): the simulated store cut at ``truncate_before``.

The store is simulated from ``StoreSpec.start`` as always; its export then keeps only the
lines (orders and credit notes) at or after the cut, and the send log only the sends at or
after it. Nothing else changes: the same seed with and without the cut gives the same
store, so the cut export's months equal the full export's same months line for line.
truth.json's ``truncation`` records the cut and the whole store's truth for the months the
export shows (no random draw here).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from crmlab.simulate.customers import Customers
from crmlab.simulate.spec import StoreSpec

__all__ = ["cut_export", "cut_text", "truncation_truth", "first_paid"]

_TIME = "%Y-%m-%d %H:%M:%S"


def cut_text(spec: StoreSpec) -> str:
    """The cut as the export's time text (``YYYY-MM-DD HH:MM:SS``)."""
    return pd.Timestamp(spec.truncate_before).strftime(_TIME)


def cut_export(spec: StoreSpec, orders: pd.DataFrame, sends: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The order lines and sends at or after the cut (the times are ``YYYY-MM-DD HH:MM:SS`` text)."""
    cut = cut_text(spec)
    return (orders[orders["order_time"] >= cut].reset_index(drop=True),
            sends[sends["send_time"] >= cut].reset_index(drop=True))


def first_paid(cu: Customers, allo: pd.DataFrame, gone: set) -> pd.Series:
    """Each customer's first paid order time over the whole simulated history (orders fully
    reversed by a credit note in ``gone`` do not count); NaT for customers with none."""
    p = allo[(allo["status"] == "paid") & ~allo["order_id"].isin(gone)]
    return p.groupby("cust")["order_time"].min().reindex(range(cu.n))


def truncation_truth(spec: StoreSpec, cu: Customers, allo: pd.DataFrame, gone: set, full: pd.DataFrame,
                     cut_orders: pd.DataFrame, sends: pd.DataFrame, cut_sends: pd.DataFrame) -> dict:
    """truth.json's ``truncation``: the cut, what it dropped, and per month from the cut the
    whole store's new buyers (first paid order ever in that month, net of fully reversed
    orders) beside the export's buyers whose history starts before the cut."""
    cut = pd.Timestamp(spec.truncate_before)
    first = first_paid(cu, allo, gone)
    p = allo[(allo["status"] == "paid") & ~allo["order_id"].isin(gone) & (allo["order_time"] >= cut)]
    seen = np.unique(p["cust"].to_numpy())
    existing = seen[(first.to_numpy()[seen] < np.datetime64(cut))]
    months = first[first >= cut].dt.strftime("%Y-%m").value_counts().sort_index()
    return {
        "truncate_before": f"{cut:%Y-%m-%d %H:%M:%S}",
        "simulated_from": spec.start,
        "lines_dropped": int(len(full) - len(cut_orders)),
        "orders_dropped": int(full["order_id"].nunique() - cut_orders["order_id"].nunique()),
        "sends_dropped": int(len(sends) - len(cut_sends)),
        "buyers_in_export": int(len(seen)),
        "existing_buyers_in_export": int(len(existing)),
        "new_buyers_by_month": {m: int(n) for m, n in months.items()},
        "note": "buyers_in_export: customers with a paid order (not fully reversed) at or after the cut; "
                "existing_buyers_in_export: those of them whose first paid order ever is before the cut "
                "(a complete export would not count them as new); new_buyers_by_month: first paid order "
                "ever in that month. Every other figure of truth.json is the whole simulated store's",
    }
