"""The repurchase magic number (复购魔法数字), computed honestly, and what a store does with it.

One import for notebook 03 and the API: the censoring-aware X-order repurchase curve and
the Kaplan-Meier time to the next order (:mod:`crmlab.analyses.curve`), the magic number
and its four rules (:mod:`crmlab.analyses.magic_rules`; its plateau shown or indicated,
:mod:`crmlab.analyses.magic_indicated`), the equivalence test and the KM
estimator (:mod:`crmlab.stats.equivalence`, :mod:`crmlab.stats.survival`), and, here, the
magic number across windows and groups and the customers it points to
(:func:`magic_sensitivity`, :func:`magic_by_group`, :func:`magic_shares`, :func:`magic_targets`).

The curve is an association: customers who reach k orders are a selected group (the
ones inclined to buy again get there), so the rate at k is not what an extra order would
do to a customer who has fewer.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Sequence

import ibis
import numpy as np
import pandas as pd

from crmlab.analyses.curve import RepurchaseCurve, kaplan_meier, repurchase_curve, time_to_next_order
from crmlab.analyses.magic_rules import RULES, MagicNumber, magic_number
from crmlab.engine.sources import order_table
from crmlab.engine.aggregates import customer_table
from crmlab.stats.equivalence import (departs, judged_alone, pair_size, pairwise_rise, pairwise_tost, plateau_tost,
                                      rise_size)
from crmlab.stats.survival import km_factors, km_survival

__all__ = ["RepurchaseCurve", "MagicNumber", "repurchase_curve", "magic_number", "time_to_next_order",
           "magic_sensitivity", "magic_by_group", "magic_shares", "magic_targets", "kaplan_meier", "km_factors",
           "km_survival", "plateau_tost", "judged_alone", "pairwise_tost", "pair_size", "departs", "pairwise_rise",
           "rise_size", "RULES"]


def magic_sensitivity(orders, windows: Sequence[int] = (30, 60, 90, 180), max_k: int = 10,
                      observation_end=None, engine=None, **kw) -> pd.DataFrame:
    """The magic number (every rule) for several repurchase windows."""
    o = order_table(orders, engine, observation_end)
    rows = []
    for w in windows:
        c = repurchase_curve(o, w, max_k)
        m = magic_number(c, **kw)
        rows.append({"window_days": w, "magic_number": m.magic_number, "plateau_level": m.level,
                     **{f"rule_{k}": v for k, v in m.rules.items()},
                     "k1_rate": c.table["rate"].iloc[0], "reason": m.reason or ""})
    return pd.DataFrame(rows).set_index("window_days")


def magic_by_group(orders, by: str = "cohort_year", window_days: int = 90, max_k: int = 10,
                   observation_end=None, min_customers: int = 1000, engine=None, **kw) -> pd.DataFrame:
    """The magic number per first-order cohort year (``by="cohort_year"``) or first channel.

    Groups with fewer than ``min_customers`` buyers are listed with no magic number.
    """
    o = order_table(orders, engine, observation_end)
    c = customer_table(o)
    c = c.filter(c.paid_orders > 0)
    if by == "cohort_year":
        c = c.mutate(group=c.first_time.year().cast("string"))
    elif by == "channel":
        if not o.has("channel"):
            raise ValueError("orders have no 'channel' column")
        c = c.mutate(group=c.first_channel.cast("string").fill_null("(none)"))
    else:
        raise ValueError("by must be 'cohort_year' or 'channel'")
    sizes = o.engine.to_pandas(c.group_by("group").aggregate(customers=c.customer_id.count())).sort_values("group")
    rows = []
    for name, n in zip(sizes["group"], sizes["customers"]):
        row = {"group": name, "customers": int(n)}
        if n >= min_customers:
            members = c.filter(c.group == name).select("customer_id")
            sub = replace(o, table=o.table.semi_join(members, "customer_id"))
            m = magic_number(repurchase_curve(sub, window_days, max_k), **kw)
            row.update(magic_number=m.magic_number, plateau_level=m.level,
                       **{f"rule_{k}": v for k, v in m.rules.items()},
                       reason=m.reason or "")
        else:
            row.update(magic_number=None, plateau_level="none", reason=f"fewer than {min_customers} customers")
        rows.append(row)
    return pd.DataFrame(rows).set_index("group")


def magic_shares(orders, magic: int, observation_end=None, engine=None) -> pd.DataFrame:
    """Customers below the magic number vs at or above it: counts and share of sales."""
    o = order_table(orders, engine, observation_end)
    c = customer_table(o)
    c = c.filter(c.paid_orders > 0)
    c = c.mutate(group=ibis.ifelse(c.paid_orders < magic, f"below {magic} orders", f"{magic}+ orders"))
    out = o.engine.to_pandas(c.group_by("group").aggregate(customers=c.customer_id.count(), sales=c.sales.sum()))
    out = out.set_index("group").sort_index()
    out.index.name = None
    out["customer_share"] = out["customers"] / out["customers"].sum()
    out["sales_share"] = out["sales"] / out["sales"].sum()
    out["sales_per_customer"] = out["sales"] / out["customers"]
    return out


def magic_targets(orders, magic: int, window_days: int = 90, observation_end=None, engine=None) -> pd.DataFrame:
    """Active customers (last paid order within the window) with fewer orders than the magic number.

    Ranked by how close they are (most orders first), then most recent. Ids and numbers only.
    """
    o = order_table(orders, engine, observation_end)
    c = customer_table(o)
    c = c.filter((c.paid_orders > 0) & (c.paid_orders < magic) & (c.recency_days <= window_days))
    t = o.engine.to_pandas(c.select("customer_id", "paid_orders", "recency_days", "sales")).set_index("customer_id")
    t = t.sort_index()
    t["orders_to_magic"] = magic - t["paid_orders"]
    t["days_left_in_window"] = window_days - t["recency_days"]
    t = t.sort_values(["orders_to_magic", "recency_days"], ascending=[True, True])
    t.insert(0, "rank", np.arange(1, len(t) + 1))
    return t
