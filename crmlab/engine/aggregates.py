"""The few aggregate builders every analysis uses, as Ibis expressions.

One implementation each, for every engine. They take an :class:`OrderTable` and return
expressions; analyses narrow them further and execute only small results (per cohort x
day, per k, per month, distinct RFM rows).

* :func:`paid_orders`: paid orders up to the observation end (the only purchases);
* :func:`order_sequence`: each paid order's place in its customer's sequence (``k``),
  the customer's first order time, the next order's time and the day number;
* :func:`customer_table`: one row per customer (buyers and potentials);
* :func:`purchase_days`: paid sales per customer per calendar day (lifetimes' unit);
* :func:`km_log_factors`: Kaplan–Meier of the time to the next order after order k,
  as per-(k, day) sums of log(1 − d/n), so a KM curve comes back as a few hundred rows.
"""
from __future__ import annotations

import datetime as _dt

import ibis
import pandas as pd

from crmlab.engine.sources import OrderTable

__all__ = ["ts", "paid_orders", "order_sequence", "customer_table", "customer_frame", "purchase_days", "km_log_factors",
           "day_number"]


def ts(value) -> ibis.Expr:
    """A timestamp literal (store-local, naive)."""
    v = pd.Timestamp(value)
    return ibis.literal(_dt.datetime(v.year, v.month, v.day, v.hour, v.minute, v.second, v.microsecond),
                        type="timestamp")


def day_number(value) -> ibis.Expr:
    return ibis.literal(pd.Timestamp(value).date(), type="date")


def paid_orders(orders: OrderTable) -> ibis.Table:
    """Paid orders up to the observation end."""
    t = orders.table
    return t.filter((t.status == "paid") & (t.order_time <= ts(orders.observation_end)))


def order_sequence(orders: OrderTable) -> ibis.Table:
    """Paid orders with ``k`` (1 = first), ``n_orders``, ``first_time``, ``next_time`` (null
    for the last) and ``day`` (whole calendar days since the first order's date).

    Orders at the same moment are ordered by ``line`` (the loader's order)."""
    p = paid_orders(orders)
    seq = ibis.window(group_by=p.customer_id, order_by=[p.order_time, p.line])
    whole = ibis.window(group_by=p.customer_id)
    s = p.mutate(k=ibis.row_number().over(seq) + 1, next_time=p.order_time.lead().over(seq),
                 first_time=p.order_time.min().over(whole), n_orders=p.line.count().over(whole))
    return s.mutate(day=s.order_time.date().delta(s.first_time.date(), unit="day"))


def customer_table(orders: OrderTable) -> ibis.Table:
    """One row per customer with any order up to the observation end.

    Columns: ``customer_id``, ``paid_orders``, ``sales`` (paid), ``first_time``,
    ``last_time`` (paid; null for potentials), ``unpaid_orders``, ``recency_days``
    (calendar days from the last paid order's date to the observation end's date), and
    ``first_channel`` / ``first_region`` (of the first paid order) where present.
    """
    t = orders.table
    t = t.filter(t.order_time <= ts(orders.observation_end))
    paid = t.status == "paid"
    c = t.group_by("customer_id").aggregate(
        paid_orders=t.line.count(where=paid), sales=t.amount.sum(where=paid).fill_null(0.0),
        first_time=t.order_time.min(where=paid), last_time=t.order_time.max(where=paid),
        unpaid_orders=t.line.count(where=t.status == "unpaid"))
    c = c.mutate(recency_days=day_number(orders.observation_end).delta(c.last_time.date(), unit="day")
                 .cast("float64"))
    extra = [x for x in ("channel", "region") if orders.has(x)]
    if extra:
        s = order_sequence(orders)
        firsts = s.filter(s.k == 1).select("customer_id", *[s[x].name(f"first_{x}") for x in extra])
        c = c.left_join(firsts, "customer_id").drop("customer_id_right")
    return c


def purchase_days(orders: OrderTable, end=None) -> ibis.Table:
    """Paid sales per customer per calendar day: ``customer_id``, ``day`` (date), ``amount``."""
    o = orders if end is None else orders.until(end)
    p = paid_orders(o)
    return p.group_by(["customer_id", p.order_time.date().name("day")]).aggregate(amount=p.amount.sum())


def km_log_factors(orders: OrderTable, max_k: int, horizon_days: int) -> ibis.Table:
    """Kaplan–Meier pieces of the time to order k+1 after order k, censored at the observation end.

    Each paid order k <= ``max_k`` is a subject: its duration is the gap to the next order
    (an event) or to the observation end (censored), in days. At each distinct duration t
    with d events among the n subjects whose duration is >= t, the survival falls by the
    factor (1 − d/n) — exactly statsmodels' ``SurvfuncRight``. Returned per ``k`` and
    ``day`` = ceil(t) (at least 1; t <= g iff ceil(t) <= g for whole days g) up to
    ``horizon_days``: ``log_factor`` (sum of log(1 − d/n) over the day's event times) and
    ``all_failed`` (some factor is 0, so survival is 0 from that day on). S(g) is
    exp(cumulative sum of log_factor over days <= g).
    """
    s = order_sequence(orders)
    s = s.filter(s.k <= max_k)
    end_s = ts(orders.observation_end).epoch_seconds()
    event = s.next_time.notnull()
    secs = ibis.ifelse(event, s.next_time.epoch_seconds(), end_s) - s.order_time.epoch_seconds()
    subj = s.select("k", dur=secs.cast("float64") / 86400.0, event=event.cast("int64"))
    g = subj.group_by(["k", "dur"]).aggregate(d=subj.event.sum(), m=subj.k.count())
    back = ibis.window(group_by=g.k, order_by=ibis.desc(g.dur), preceding=None, following=0)
    g = g.mutate(n=g.m.sum().over(back))
    g = g.filter((g.d > 0) & (g.dur <= horizon_days))
    day = ibis.greatest(g.dur.ceil().cast("int64"), 1)
    failed = g.d >= g.n
    frac = ibis.ifelse(failed, 0.5, 1.0 - g.d.cast("float64") / g.n.cast("float64"))
    g = g.mutate(day=day, lf=frac.ln(), failed=failed.cast("int64"))
    return g.group_by(["k", "day"]).aggregate(log_factor=g.lf.sum(), all_failed=g.failed.max())


def customer_frame(orders: OrderTable) -> pd.DataFrame:
    """:func:`customer_table` in pandas, indexed by ``customer_id`` (sorted): per-customer
    outputs (lifecycle stages, RFM scores, target lists) start here."""
    df = orders.engine.to_pandas(customer_table(orders))
    df = df.sort_values("customer_id").set_index("customer_id")
    df["paid_orders"] = df["paid_orders"].astype(int)
    df["unpaid_orders"] = df["unpaid_orders"].astype(int)
    df.attrs["observation_end"] = orders.observation_end
    return df
