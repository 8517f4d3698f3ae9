"""lifetimes' RFM summary (frequency, recency, T, monetary value) as an engine expression.

The unit is the calendar day, as in ``lifetimes.utils.summary_data_from_transaction_data
(..., freq="D")``: ``frequency`` = distinct purchase days after the first, ``recency`` =
first to last purchase day, ``T`` = first purchase day to the observation end's day,
``monetary_value`` = mean of the repeat purchase days' totals (0 when frequency is 0).
With a calibration end, the columns of ``lifetimes.utils.calibration_and_holdout_data``.
``time_unit="W"`` divides durations by 7 (the CDNOW papers' weeks).

:func:`summary_table` builds the expression (one row per customer, computed where the
orders live); :func:`rfm_rows` compresses it to distinct rows with customer counts as
weights, which is all a buy-till-you-die fit needs.
"""
from __future__ import annotations

import ibis
import pandas as pd

from crmlab.engine.sources import OrderTable, order_table
from crmlab.engine.aggregates import day_number, paid_orders, purchase_days, ts
from crmlab.ingest.values import parse_observation_end

__all__ = ["summary_table", "rfm_rows", "TIME_UNITS"]

TIME_UNITS = {"D": 1.0, "W": 7.0}


def _per_customer(days: ibis.Table, end_day, unit: float) -> ibis.Table:
    # one row per customer and day, so the first day's total is the amount at the least day
    # (an aggregate: a window over 10⁸ purchase days is a sort DuckDB struggles to spill)
    d = days
    g = d.group_by("customer_id").aggregate(n=d.day.count(), first_day=d.day.min(), last_day=d.day.max(),
                                            total=d.amount.sum(), first_amt=d.amount.argmin(d.day))
    freq = g.n - 1
    return g.select(
        "customer_id", frequency=freq.cast("float64"),
        recency=g.last_day.delta(g.first_day, unit="day").cast("float64") / unit,
        T=end_day.delta(g.first_day, unit="day").cast("float64") / unit,
        monetary_value=ibis.ifelse(freq > 0, (g.total - g.first_amt) / freq.cast("float64"), 0.0))


def summary_table(orders, time_unit: str = "D", observation_end=None, calibration_end=None,
                  engine=None) -> tuple[ibis.Table, OrderTable]:
    """The per-customer RFM summary as an expression, and the orders it was built on.

    Raises
    ------
    ValueError
        An unknown time unit, or a calibration end at or after the observation end.
    """
    if time_unit not in TIME_UNITS:
        raise ValueError(f"time_unit must be 'D' or 'W', not {time_unit!r}")
    unit = TIME_UNITS[time_unit]
    o = order_table(orders, engine, observation_end)
    end = o.observation_end
    if calibration_end is None:
        return _per_customer(purchase_days(o), day_number(end), unit), o
    # store-local: a time with an offset is read in the orders' own time zone; a Timestamp stays itself
    cal = parse_observation_end(calibration_end, o.settings.timezone, "calibration_end")
    if cal >= end:
        raise ValueError(f"calibration_end {cal} must be before the observation end {end}")
    s = _per_customer(purchase_days(o, cal), day_number(cal), unit)
    s = s.rename({f"{c}_cal": c for c in ("frequency", "recency", "T", "monetary_value")})
    p = paid_orders(o)
    p = p.filter(p.order_time > ts(cal))
    h = p.group_by("customer_id").aggregate(frequency_holdout=p.order_time.date().nunique().cast("float64"),
                                            monetary_value_holdout=p.amount.mean())
    duration = (pd.Timestamp(end).normalize() - pd.Timestamp(cal).normalize()).days / unit
    s = s.left_join(h, "customer_id").drop("customer_id_right")
    return s.mutate(frequency_holdout=s.frequency_holdout.fill_null(0.0),
                    monetary_value_holdout=s.monetary_value_holdout.fill_null(0.0),
                    duration_holdout=ibis.literal(duration, type="float64")), o


def rfm_rows(summary: ibis.Table, o: OrderTable, suffix: str = "") -> pd.DataFrame:
    """Distinct (frequency, recency, T[, monetary_value]) rows with ``customers`` as weights."""
    cols = [f"{c}{suffix}" for c in ("frequency", "recency", "T", "monetary_value")]
    g = summary.group_by(cols).aggregate(customers=summary.customer_id.count())
    return o.engine.to_pandas(g).sort_values(cols).reset_index(drop=True)
