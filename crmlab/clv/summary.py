"""lifetimes' RFM summary (frequency, recency, T, monetary value) as an engine expression.

The unit is the calendar day, as in ``lifetimes.utils.summary_data_from_transaction_data
(..., freq="D")``: ``frequency`` = distinct purchase days after the first, ``recency`` =
first to last purchase day, ``T`` = first purchase day to the observation end's day,
``monetary_value`` = mean of the repeat purchase days' totals (0 when frequency is 0).
With a calibration end, the columns of ``lifetimes.utils.calibration_and_holdout_data``.
``time_unit="W"`` divides durations by 7 (the CDNOW papers' weeks).

:func:`summary_table` builds the expression (one row per customer, computed where the
orders live); :func:`summary_frame` brings it back (sorted by customer in the engine, one
fetch); :func:`rfm_rows` compresses it to distinct rows with customer counts as weights,
which is all a buy-till-you-die fit needs.

A frame from :func:`crmlab.ingest.readers.load_orders` lives in pandas: its categorical
customer codes are the per-customer key already, so :func:`frame_summary` computes the same
columns there, in NumPy over the frame's own arrays (one stable sort of the codes, no copy
of the frame into an engine) — at 10⁶ orders several times faster than a round trip
through any engine. Both are tested against lifetimes and against each other.
"""
from __future__ import annotations

import ibis
import numpy as np
import pandas as pd

from crmlab.engine.connection import default_engine_name
from crmlab.engine.frames import fetch_frame
from crmlab.engine.sources import OrderTable, order_table
from crmlab.engine.aggregates import day_number, paid_orders, purchase_days, ts
from crmlab.ingest.values import parse_observation_end
from crmlab.settings import current

__all__ = ["summary_table", "summary_frame", "frame_summary", "rfm_rows", "TIME_UNITS"]

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


def summary_frame(summary: ibis.Table, o: OrderTable) -> pd.DataFrame:
    """:func:`summary_table`'s expression in pandas, indexed by ``customer_id`` (sorted in the
    engine, fetched once: :func:`crmlab.engine.frames.fetch_frame`), with ``attrs``
    ``observation_end`` and ``settings``."""
    out = fetch_frame(o.engine, summary.order_by("customer_id")).set_index("customer_id")
    out.attrs.update(observation_end=o.observation_end, settings=o.settings)
    return out


def _paid_codes(status: pd.Series) -> np.ndarray:
    if isinstance(status.dtype, pd.CategoricalDtype):
        cats = list(status.cat.categories)
        return status.array.codes == cats.index("paid") if "paid" in cats else np.zeros(len(status), bool)
    return (status == "paid").to_numpy(dtype=bool, na_value=False)


def _stable_order(keys: np.ndarray) -> np.ndarray:
    """The stable sorting order of non-negative integer keys below 2**32: a radix sort of 16 bits
    at a time (NumPy's stable sort of 16-bit keys is a counting sort: O(n), no comparisons)."""
    u = keys.view(np.uint32) if keys.dtype == np.int32 else keys.astype(np.uint32, copy=False)
    order = np.argsort((u & 0xFFFF).astype(np.uint16), kind="stable")
    if len(u) and int(u.max()) > 0xFFFF:
        order = order[np.argsort((u[order] >> 16).astype(np.uint16), kind="stable")]
    return order


def _customer_days(codes: np.ndarray, days: np.ndarray, amount: np.ndarray) -> tuple[np.ndarray, ...]:
    """Per customer and purchase day (sorted by customer, then day): code, day, day total."""
    if len(days) and not (days[1:] >= days[:-1]).all():  # not in time order (the loader's is): days first
        by_day = _stable_order(days - days.min())
        codes, days, amount = codes[by_day], days[by_day], amount[by_day]
    order = _stable_order(codes)
    c, d, a = codes[order], days[order], amount[order]
    start = np.flatnonzero(np.r_[True, (c[1:] != c[:-1]) | (d[1:] != d[:-1])]) if len(c) else np.zeros(0, int)
    return c[start], d[start], np.add.reduceat(a, start) if len(start) else a[:0]


def frame_summary(orders: pd.DataFrame, observation_end=None, time_unit: str = "D") -> pd.DataFrame | None:
    """The RFM summary of a loader's frame, in NumPy over its categorical customer codes: the
    same columns, index and ``attrs`` as :func:`crmlab.clv.models.rfm_summary` (sorted by
    customer id; ``monetary_value`` the mean of the repeat purchase days' totals, as in
    lifetimes).

    Returns
    -------
    DataFrame, or None
        None when the frame is not one this applies to (customer ids not categorical, or
        with missing ids): the engine computes it then.
    """
    if time_unit not in TIME_UNITS:
        raise ValueError(f"time_unit must be 'D' or 'W', not {time_unit!r}")
    ids = orders["customer_id"] if "customer_id" in orders.columns else None
    if ids is None or not isinstance(ids.dtype, pd.CategoricalDtype) or (ids.array.codes < 0).any() or \
            not pd.api.types.is_datetime64_dtype(orders["order_time"].dtype):
        return None
    tz = orders.attrs.get("timezone")
    settings = current().replace(engine=default_engine_name(), timezone=tz)
    end = orders.attrs.get("observation_end")
    end = pd.Timestamp(orders["order_time"].max() if end is None else end)
    if observation_end is not None:
        end = parse_observation_end(observation_end, settings.timezone)
    times = orders["order_time"].to_numpy(dtype="datetime64[ns]")
    keep = _paid_codes(orders["status"]) & (times <= np.datetime64(end.as_unit("ns").to_datetime64()))
    amount = orders["amount"].to_numpy(dtype=np.float64)
    if not keep.all():
        codes, times, amount = ids.array.codes[keep], times[keep], amount[keep]
    else:
        codes = ids.array.codes
    c, d, a = _customer_days(codes, times.astype("datetime64[D]").view(np.int64), amount)
    first = np.flatnonzero(np.r_[True, c[1:] != c[:-1]]) if len(c) else np.zeros(0, int)
    last = np.r_[first[1:], len(c)] - 1 if len(c) else first
    freq = (last - first).astype(np.float64)
    repeat = a.copy()
    repeat[first] = 0.0  # the first purchase day is not a repeat
    repeat_total = np.add.reduceat(repeat, first) if len(first) else repeat[:0]
    unit = TIME_UNITS[time_unit]
    end_day = np.datetime64(end.date(), "D").astype(np.int64)
    cats = ids.cat.categories
    text = cats.dtype == object and pd.api.types.infer_dtype(cats, skipna=False) == "string"
    names = cats.to_numpy(dtype=object) if text else cats.astype(str).to_numpy(dtype=object)
    sorted_names = text and cats.is_monotonic_increasing
    out = pd.DataFrame({"frequency": freq, "recency": (d[last] - d[first]).astype(np.float64) / unit,
                        "T": (end_day - d[first]).astype(np.float64) / unit,
                        "monetary_value": np.divide(repeat_total, freq, out=np.zeros(len(first)), where=freq > 0)},
                       index=pd.Index(names[c[first]], name="customer_id"))
    if not sorted_names:
        out = out.sort_index()
    out.attrs.update(observation_end=end, time_unit=time_unit, settings=settings)
    return out
