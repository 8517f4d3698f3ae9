"""Know the store (the seeds' first step): monthly sales, new vs returning buyers, spread.

Every table is one aggregate in the engine (per month, per status, per region/channel).
"""
from __future__ import annotations

import pandas as pd

from crmlab.engine.sources import order_table
from crmlab.engine.aggregates import order_sequence, paid_orders, ts
from crmlab.ingest.readers import STATUSES
from crmlab.present import formatting as fmt

__all__ = ["monthly_overview", "status_summary", "spread", "sales_summary", "year_verdict"]


def monthly_overview(orders, observation_end=None, engine=None) -> pd.DataFrame:
    """Per calendar month of paid orders.

    Columns: ``orders``, ``buyers``, ``sales``, ``aov`` (sales / orders), ``new_buyers``
    (first paid order in the month), ``returning_buyers`` (bought before),
    ``new_sales``, ``returning_sales``, ``returning_buyer_share``, ``returning_sales_share``.
    The last month is partial when the observation end falls before its last day
    (``partial`` column; an export that ends on the month's last day covers the month).
    Months that start inside the lead-in (before ``orders.history_start``,
    :mod:`crmlab.engine.lead_in`) are history only (``lead_in`` column): their buyers,
    orders and sales are shown, their new/returning split is missing (NaN), never a count
    that takes existing customers for new ones.
    """
    o = order_table(orders, engine, observation_end)
    s = order_sequence(o)
    month = s.order_time.truncate("M").date()
    ret = s.first_time.truncate("M").date() < month
    s = s.mutate(month=month, ret=ret)
    agg = s.group_by("month").aggregate(
        orders=s.customer_id.count(), buyers=s.customer_id.nunique(), sales=s.amount.sum(),
        new_buyers=s.customer_id.nunique(where=~s.ret), returning_buyers=s.customer_id.nunique(where=s.ret),
        new_sales=s.amount.sum(where=~s.ret).fill_null(0.0), returning_sales=s.amount.sum(where=s.ret).fill_null(0.0))
    out = o.engine.to_pandas(agg).sort_values("month")
    out.index = pd.PeriodIndex(pd.to_datetime(out.pop("month")), freq="M", name="month")
    out = out[["orders", "buyers", "sales", "new_buyers", "returning_buyers", "new_sales", "returning_sales"]]
    out.insert(3, "aov", out["sales"] / out["orders"])
    out["returning_buyer_share"] = out["returning_buyers"] / out["buyers"]
    out["returning_sales_share"] = out["returning_sales"] / out["sales"]
    end = o.observation_end
    last = pd.Period(end, "M")
    out["partial"] = (out.index == last) & (pd.Timestamp(end).normalize() < last.end_time.normalize())
    hs = o.history_start
    out["lead_in"] = (out.index.start_time < pd.Timestamp(hs)) if hs is not None else False
    split = ["new_buyers", "returning_buyers", "new_sales", "returning_sales", "returning_buyer_share",
             "returning_sales_share"]
    if out["lead_in"].any():
        out[split] = out[split].astype(float)
        out.loc[out["lead_in"], split] = float("nan")
    return out


def status_summary(orders, observation_end=None, engine=None) -> pd.DataFrame:
    """Orders and amounts by status (paid, unpaid, refunded, cancelled; 拍下/付款/未付款)."""
    o = order_table(orders, engine, observation_end)
    t = o.table.filter(o.table.order_time <= ts(o.observation_end))
    agg = t.group_by("status").aggregate(orders=t.customer_id.count(), amount=t.amount.sum(),
                                         customers=t.customer_id.nunique())
    out = o.engine.to_pandas(agg).set_index("status").reindex(list(STATUSES))
    out = out.fillna({"orders": 0, "amount": 0.0, "customers": 0}).astype({"orders": int, "customers": int})
    out.index = pd.CategoricalIndex(out.index, categories=list(STATUSES), name="status")
    out["order_share"] = out["orders"] / out["orders"].sum()
    return out


def spread(orders, by: str, observation_end=None, engine=None) -> pd.DataFrame:
    """Paid orders, buyers and sales by ``region`` or ``channel`` (largest first)."""
    o = order_table(orders, engine, observation_end)
    if not o.has(by) or by not in ("region", "channel", "product", "category"):
        raise KeyError(f"orders have no column {by!r}")
    p = paid_orders(o)
    p = p.filter(p[by].notnull())
    agg = p.group_by(by).aggregate(orders=p.customer_id.count(), buyers=p.customer_id.nunique(),
                                   sales=p.amount.sum())
    out = o.engine.to_pandas(agg).set_index(by)
    out["sales_share"] = out["sales"] / out["sales"].sum()
    return out.sort_values(["sales"], ascending=False)


def sales_summary(orders, returns: dict | None = None, observation_end=None, engine=None) -> pd.Series:
    """Gross sales, returns and net sales, with the return rate.

    ``net_sales`` are the paid orders' sales as every analysis counts them: net of the
    separate reversal documents matched to them (credit notes, ``C`` invoices:
    ``credit_notes``, from the ledger's ``returns``, ``amount_netted``); ``refunded`` are the
    orders whose own status says they were refunded (退款成功), never purchases.
    ``gross_sales`` = net sales + credit notes + refunded; ``returns`` = credit notes +
    refunded; ``return_rate`` = returns / gross sales (NaN without sales).
    ``unmatched_credits``: reversal lines matched to no purchase (kept as customer credit,
    not netted).

    Parameters
    ----------
    orders : OrderTable or DataFrame
    returns : dict, optional
        The ledger's ``returns`` entry (:class:`crmlab.ingest.ledger.Ledger`); None: none.
    """
    st = status_summary(orders, observation_end, engine)
    r = returns or {}
    net, credit = float(st.at["paid", "amount"]), float(r.get("amount_netted", 0.0) or 0.0)
    refunded = float(st.at["refunded", "amount"])
    gross = net + credit + refunded
    return pd.Series({"gross_sales": gross, "credit_notes": credit, "refunded": refunded,
                      "returns": credit + refunded, "net_sales": net,
                      "return_rate": (credit + refunded) / gross if gross > 0 else float("nan"),
                      "refunded_orders": int(st.at["refunded", "orders"]),
                      "orders_fully_reversed": int(r.get("orders_fully_reversed", 0) or 0),
                      "unmatched_credits": int(r.get("unmatched", 0) or 0)})


def year_verdict(span: str, this: dict, prev: dict | None, prev_year: int, this_lead_in: bool = False,
                 prev_lead_in: bool = False, same_months: bool = False) -> tuple[str, str]:
    """Notebook 01's banner: the latest year in one line (inline markdown) and its tone.

    ``this`` / ``prev``: ``sales`` (net paid sales), ``orders`` and ``returning`` (the returning
    buyers' share of sales) of the latest year's complete months and of the same months a year
    before (``prev`` None: the export does not cover them — nothing is compared). A year inside
    the lead-in has no first-time/returning split: its returning share is neither shown
    (``this_lead_in``) nor compared (``prev_lead_in``). The tone follows the sales change.
    """
    sales = f"net sales {fmt.money(this['sales'])}"
    if prev is not None and prev.get("sales"):
        months = " (same months)" if same_months else ""
        sales += f", {fmt.change(this['sales'], prev['sales'])} vs {prev_year}{months}"
    if this_lead_in:
        ret = "no first-time/returning split yet (the lead-in)"
    elif prev is None or prev_lead_in:
        ret = f"returning buyers brought {fmt.pct(this['returning'])} of sales" + (
            f" ({prev_year} is history only: not compared)" if prev is not None else "")
    else:
        ret = (f"returning buyers brought {fmt.pct(this['returning'])} of sales, "
               f"{fmt.pp(this['returning'] - prev['returning'])} vs {prev_year}")
    if prev is None or not prev.get("sales"):
        return f"**{span}: {sales}**; {ret}; no earlier year in the export to compare with.", "neutral"
    up = this["sales"] >= prev["sales"]
    return f"**{span}: {sales}**; {ret}.", "good" if up else "bad"
