"""Does a report apply to this store? One cheap check per notebook, run before it.

A report whose question the data cannot answer is **skipped with a one-sentence reason**
(``status: skipped`` in ``run.json``, on the index and on its page) instead of showing a page
of zeros or an exception's name. The runner asks :func:`skip_reason` for every selected
notebook once the orders are validated, before anything runs; each check is a few engine
aggregates on the validated orders (no model is fitted, nothing is collected but counts).

* ``06_big_promotion`` compares the promotion's season (``date``, default this year's 11-11)
  with the one a year before (``last_year_date``): last year's season must lie fully inside
  the export (its first row on or before the season's first day, the observation end on or
  after its last day) and hold a paid order — without it there are no figures to plan from
  and nothing to compare with. This year's season may be after the export (the page is the plan) or in progress
  (the review is marked partial): both are answers.
* ``04_clv`` needs at least :data:`~crmlab.clv.gamma_gamma.MIN_REPEAT_CUSTOMERS` repeat
  customers (a paid purchase on a second day, with positive spend): Gamma-Gamma's own
  minimum, below which no CLV in money can be computed (and with none, no purchase model
  can be fitted at all: ``crmlab clv`` stops with "no repeat customers").
* ``05_sms_ab_test`` without a send log is skipped by the runner before this (its input is
  absent).
"""
from __future__ import annotations

from typing import Callable, Mapping

import pandas as pd

from crmlab.clv.gamma_gamma import MIN_REPEAT_CUSTOMERS
from crmlab.clv.summary import summary_table
from crmlab.engine.aggregates import paid_orders, ts
from crmlab.engine.sources import OrderTable
from crmlab.promotion.calendar import default_date, parse_date, parse_phases, span
from crmlab.schema import CrmlabInputError

__all__ = ["CHECKS", "skip_reason", "promotion_reason", "clv_reason"]


def _given(params: Mapping[str, object], key: str):
    v = params.get(key)
    return None if v is None or not str(v).strip() else v


def promotion_reason(orders: OrderTable, params: Mapping[str, object], today=None) -> str | None:
    """Why 06 does not apply (last year's season not fully in the export), or None."""
    t = orders.table
    first = t.order_time.min().execute()
    if first is None or pd.isna(first):
        return "The export has no orders, so there is no promotion season to plan from."
    end = pd.Timestamp(orders.observation_end)
    try:
        dflt = default_date(end, today)
        day = parse_date(_given(params, "date"), "--date", dflt.year) if _given(params, "date") else dflt
        last = (parse_date(_given(params, "last_year_date"), "--last-year-date", day.year - 1)
                if _given(params, "last_year_date") else day - pd.DateOffset(years=1))
        ph = parse_phases(_given(params, "phases"))
    except CrmlabInputError:  # a bad argument: the notebook says so
        return None
    (s0, e0), first_day = span(last, ph), pd.Timestamp(first).normalize()
    if first_day > s0:
        where = f"the export starts on {first_day:%Y-%m-%d}, after that season began"
    elif end.normalize() < e0:
        where = f"the export ends on {end:%Y-%m-%d}, before that season ended"
    else:
        p = paid_orders(orders)
        n = int(p.filter((p.order_time >= ts(s0)) & (p.order_time < ts(e0 + pd.Timedelta(days=1)))).count().execute())
        if n:
            return None
        where = "the export has no paid order in that season"
    return (f"This report compares the {day:%Y-%m-%d} promotion season with the one a year before "
            f"({s0:%Y-%m-%d} to {e0:%Y-%m-%d}), but {where}, so there is no last year to plan from or "
            "compare with (set the date parameter to a promotion whose previous season is in the export).")


def clv_reason(orders: OrderTable, params: Mapping[str, object]) -> str | None:
    """Why 04 does not apply (fewer repeat customers than CLV needs), or None."""
    s, _ = summary_table(orders, time_unit="D")
    n_customers = int(s.count().execute())
    repeat = int(s.filter((s.frequency > 0) & (s.monetary_value > 0)).count().execute())
    if repeat >= MIN_REPEAT_CUSTOMERS:
        return None
    found = "no customer" if repeat == 0 else f"only {repeat:,} of {n_customers:,} customers"
    return (f"Customer lifetime value needs at least {MIN_REPEAT_CUSTOMERS} repeat customers (a paid purchase on a "
            f"second day) to estimate purchase rates and spend, and {found} in this export bought again.")


#: notebook stem -> its check: ``(orders, parameters) -> reason or None``
CHECKS: dict[str, Callable[[OrderTable, Mapping[str, object]], str | None]] = {
    "06_big_promotion": promotion_reason,
    "04_clv": clv_reason,
}


def skip_reason(name: str, orders: OrderTable, params: Mapping[str, object]) -> str | None:
    """The one-sentence reason notebook ``name`` does not apply to ``orders``, or None (it applies,
    or it has no check)."""
    check = CHECKS.get(name)
    if check is None or orders is None:
        return None
    try:
        return check(orders, params)
    except Exception:  # a check that cannot say (a backend's limit): the report runs and speaks for itself
        return None
