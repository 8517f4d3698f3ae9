"""Know the store (the seeds' first step): monthly sales, new vs returning buyers, spread."""
from __future__ import annotations

import pandas as pd

from crmlab.aggregate import observation_end_of, order_sequence

__all__ = ["monthly_overview", "status_summary", "spread"]


def monthly_overview(orders: pd.DataFrame, observation_end=None) -> pd.DataFrame:
    """Per calendar month of paid orders.

    Columns: ``orders``, ``buyers``, ``sales``, ``aov`` (sales / orders), ``new_buyers``
    (first paid order in the month), ``returning_buyers`` (bought before),
    ``new_sales``, ``returning_sales``, ``returning_buyer_share``, ``returning_sales_share``.
    The last month is partial when the observation end falls inside it
    (``partial`` column).
    """
    seq = order_sequence(orders, observation_end)
    end = observation_end_of(orders, observation_end)
    month = seq["order_time"].dt.to_period("M")
    returning = seq["first_time"].dt.to_period("M") < month
    df = pd.DataFrame({"month": month, "customer_id": seq["customer_id"].cat.codes, "amount": seq["amount"],
                       "returning": returning})
    g = df.groupby("month")
    out = pd.DataFrame({"orders": g.size(), "buyers": g["customer_id"].nunique(), "sales": g["amount"].sum()})
    out["aov"] = out["sales"] / out["orders"]
    r = df[df["returning"]].groupby("month")
    nw = df[~df["returning"]].groupby("month")
    out["new_buyers"] = nw["customer_id"].nunique().reindex(out.index, fill_value=0)
    out["returning_buyers"] = r["customer_id"].nunique().reindex(out.index, fill_value=0)
    out["new_sales"] = nw["amount"].sum().reindex(out.index, fill_value=0.0)
    out["returning_sales"] = r["amount"].sum().reindex(out.index, fill_value=0.0)
    out["returning_buyer_share"] = out["returning_buyers"] / out["buyers"]
    out["returning_sales_share"] = out["returning_sales"] / out["sales"]
    last = pd.Period(end, "M")
    out["partial"] = (out.index == last) & (end < (last + 1).start_time - pd.Timedelta(seconds=1))
    out.index.name = "month"
    return out


def status_summary(orders: pd.DataFrame, observation_end=None) -> pd.DataFrame:
    """Orders and amounts by status (paid, unpaid, refunded, cancelled; 拍下/付款/未付款)."""
    end = observation_end_of(orders, observation_end)
    o = orders[orders["order_time"] <= end]
    g = o.groupby("status", observed=False)
    out = pd.DataFrame({"orders": g.size(), "amount": g["amount"].sum(), "customers": g["customer_id"].nunique()})
    out["order_share"] = out["orders"] / out["orders"].sum()
    return out


def spread(orders: pd.DataFrame, by: str, observation_end=None) -> pd.DataFrame:
    """Paid orders, buyers and sales by ``region`` or ``channel`` (largest first)."""
    if by not in orders.columns:
        raise KeyError(f"orders have no column {by!r}")
    seq = order_sequence(orders, observation_end)
    g = seq.groupby(by, observed=True)
    out = pd.DataFrame({"orders": g.size(), "buyers": g["customer_id"].nunique(), "sales": g["amount"].sum()})
    out["sales_share"] = out["sales"] / out["sales"].sum()
    return out.sort_values("sales", ascending=False)
