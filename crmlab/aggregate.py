"""Per-customer and per-order-sequence aggregation: the one place that scans the order table.

Every analysis in crmlab starts from the small frames made here, so a faster backend
(an embedded DuckDB, Spark) plugs in by reimplementing these few functions. The pandas
implementation works on the integer codes of the categorical ``customer_id`` made once by
:func:`crmlab.io.load_orders`, sorting with NumPy instead of grouping Python objects.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from crmlab.io import parse_observation_end

__all__ = ["observation_end_of", "paid_orders", "order_sequence", "customer_table", "purchase_days",
           "customer_codes"]

_DAY = np.timedelta64(1, "D")


def observation_end_of(orders: pd.DataFrame, observation_end=None) -> pd.Timestamp:
    """The observation end: the argument, else the loader's, else the latest order time."""
    if observation_end is not None:
        return parse_observation_end(observation_end)
    ts = orders.attrs.get("observation_end")
    if ts is not None:
        return pd.Timestamp(ts)
    return pd.Timestamp(orders["order_time"].max())


def customer_codes(orders: pd.DataFrame) -> tuple[np.ndarray, pd.Index]:
    """Integer code per row and the customer ids they index (categorical or not)."""
    c = orders["customer_id"]
    if not isinstance(c.dtype, pd.CategoricalDtype):
        c = c.astype("category")
    return c.cat.codes.to_numpy(), c.cat.categories


def paid_orders(orders: pd.DataFrame, observation_end=None) -> pd.DataFrame:
    """Paid orders up to the observation end (the only orders that count as purchases)."""
    end = observation_end_of(orders, observation_end)
    m = (orders["status"] == "paid").to_numpy() & (orders["order_time"] <= end).to_numpy()
    out = orders.loc[m]
    out.attrs["observation_end"] = end
    return out


def order_sequence(orders: pd.DataFrame, observation_end=None) -> pd.DataFrame:
    """Paid orders in each customer's sequence.

    Returns
    -------
    DataFrame
        One row per paid order, sorted by customer then time, with ``customer_id``,
        ``order_time``, ``amount``, ``k`` (1 = first order), ``n_orders`` (the customer's
        paid orders), ``first_time``, ``next_time`` (NaT for the last) and ``day`` (whole
        calendar days since the first order's date).
    """
    p = paid_orders(orders, observation_end)
    codes, cats = customer_codes(p)
    t = p["order_time"].to_numpy()
    order = np.lexsort((t, codes))  # stable: equal times keep the loader's (time, order_id) order
    codes, t = codes[order], t[order]
    n = len(codes)
    start = np.r_[True, codes[1:] != codes[:-1]] if n else np.zeros(0, bool)
    grp = np.cumsum(start) - 1
    starts = np.flatnonzero(start)
    k = np.arange(n) - starts[grp] + 1
    sizes = np.diff(np.r_[starts, n])
    nxt = np.full(n, np.datetime64("NaT"), dtype="datetime64[ns]")
    same_next = np.r_[codes[1:] == codes[:-1], False] if n else np.zeros(0, bool)
    nxt[:-1][same_next[:-1]] = t[1:][same_next[:-1]]
    first = t[starts][grp]
    day = ((t.astype("datetime64[D]") - first.astype("datetime64[D]")) / _DAY).astype(np.int64)
    out = pd.DataFrame({
        "customer_id": pd.Categorical.from_codes(codes, categories=cats),
        "order_time": t, "amount": p["amount"].to_numpy()[order], "k": k,
        "n_orders": sizes[grp], "first_time": first, "next_time": nxt, "day": day,
    })
    for c in ("channel", "region", "product", "category", "quantity"):
        if c in p.columns:
            out[c] = p[c].to_numpy()[order]
    out.attrs["observation_end"] = p.attrs["observation_end"]
    return out


def customer_table(orders: pd.DataFrame, observation_end=None) -> pd.DataFrame:
    """One row per customer (buyers and potentials) as of the observation end.

    Columns: ``paid_orders``, ``sales`` (paid), ``first_time``, ``last_time`` (paid; NaT
    for potentials), ``recency_days`` (calendar days from the last paid order's date to the
    observation end's date; NaN for potentials),
    ``unpaid_orders``, ``first_channel`` / ``first_region`` where present.
    """
    end = observation_end_of(orders, observation_end)
    o = orders.loc[(orders["order_time"] <= end).to_numpy()]
    codes, cats = customer_codes(o)
    ncat = len(cats)
    paid = (o["status"] == "paid").to_numpy()
    t = o["order_time"].to_numpy()
    amt = o["amount"].to_numpy()
    n_paid = np.bincount(codes[paid], minlength=ncat)
    sales = np.bincount(codes[paid], weights=amt[paid], minlength=ncat)
    unpaid = np.bincount(codes[(o["status"] == "unpaid").to_numpy()], minlength=ncat)
    ti = t.astype("datetime64[ns]").view(np.int64)
    big = np.iinfo(np.int64).max
    first = np.full(ncat, big)
    np.minimum.at(first, codes[paid], ti[paid])
    last = np.full(ncat, np.iinfo(np.int64).min)
    np.maximum.at(last, codes[paid], ti[paid])
    first_t = np.where(n_paid > 0, first, np.iinfo(np.int64).min).view("datetime64[ns]")
    last_t = np.where(n_paid > 0, last, np.iinfo(np.int64).min).view("datetime64[ns]")
    out = pd.DataFrame({"paid_orders": n_paid, "sales": sales, "first_time": first_t, "last_time": last_t,
                        "unpaid_orders": unpaid}, index=pd.Index(cats, name="customer_id"))
    # whole calendar days from the last paid order's date to the observation end's date
    out["recency_days"] = ((np.datetime64(end, "D") - out["last_time"].to_numpy().astype("datetime64[D]"))
                           / _DAY).astype(float)
    for c in ("channel", "region"):
        if c in o.columns:
            # attribute of the first paid order
            idx = np.flatnonzero(paid)
            idx = idx[np.lexsort((ti[idx], codes[idx]))]
            firsts = idx[np.r_[True, codes[idx][1:] != codes[idx][:-1]]] if len(idx) else idx
            col = pd.Series(pd.NA, index=out.index, dtype=object)
            col.iloc[codes[firsts]] = o[c].astype(object).to_numpy()[firsts]
            out[f"first_{c}"] = col
    out = out[np.bincount(codes, minlength=ncat) > 0]
    out.attrs["observation_end"] = end
    return out


def purchase_days(orders: pd.DataFrame, observation_end=None) -> pd.DataFrame:
    """Paid sales per customer per calendar day (the unit of lifetimes' RFM summary).

    Returns ``code`` (customer code), ``day`` (datetime64[D]) and ``amount`` sorted by
    code and day, with ``categories`` of the codes in ``attrs``.
    """
    p = paid_orders(orders, observation_end)
    codes, cats = customer_codes(p)
    d = p["order_time"].to_numpy().astype("datetime64[D]").view(np.int64)
    key_order = np.lexsort((d, codes))
    c, dd, a = codes[key_order], d[key_order], p["amount"].to_numpy()[key_order]
    new = np.r_[True, (c[1:] != c[:-1]) | (dd[1:] != dd[:-1])] if len(c) else np.zeros(0, bool)
    gid = np.cumsum(new) - 1
    amt = np.bincount(gid, weights=a) if len(c) else np.zeros(0)
    out = pd.DataFrame({"code": c[new], "day": dd[new], "amount": amt})
    out.attrs["categories"] = cats
    out.attrs["observation_end"] = p.attrs["observation_end"]
    return out
