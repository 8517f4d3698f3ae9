"""Repurchase rates (复购率) as the seeds define them, each with a Wilson 95% interval.

* :func:`period_repurchase_rate`: of customers who bought in a period (week, month,
  quarter), the share with two or more paid orders in it.
* :func:`next_period_repurchase`: 次月复购率 (of last month's buyers, the share who buy
  this month), 次两月复购率 (of the buyers of the two months before this one, the share
  who buy this month) and 次季度复购率 (of last quarter's buyers, the share who buy this
  quarter).
* The X-order repurchase rate (of customers with X orders, the share who place order
  X+1) is :func:`crmlab.analyses.curve.repurchase_curve`: one implementation, censoring-aware.

A period that the observation end cuts short is censored: its rate is NaN (its buyers
have not had the whole period), never a low number.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

import ibis

from crmlab.engine.sources import order_table
from crmlab.engine.aggregates import paid_orders
from crmlab.stats.proportion import rate_frame

__all__ = ["period_repurchase_rate", "next_period_repurchase", "NEXT_PERIOD_KINDS"]

#: name -> (period frequency, number of earlier periods whose buyers form the base)
NEXT_PERIOD_KINDS = {"next_month": ("M", 1), "next_two_months": ("M", 2), "next_quarter": ("Q", 1)}
_FREQ = {"week": "W-SUN", "month": "M", "quarter": "Q", "W": "W-SUN", "M": "M", "Q": "Q"}
_TRUNC = {"W-SUN": "W", "M": "M", "Q": "Q"}  # pandas' W-SUN weeks start on Monday, as ISO weeks do


def _complete(periods: pd.PeriodIndex, end: pd.Timestamp) -> np.ndarray:
    return np.asarray(periods.end_time <= end + pd.Timedelta(microseconds=1))


def _buyer_periods(orders, freq: str, observation_end, engine):
    """Distinct (customer, period start) of paid orders, as an expression, and the orders."""
    if _FREQ.get(freq, freq) not in _TRUNC:
        raise ValueError(f"freq must be week, month or quarter, not {freq!r}")
    o = order_table(orders, engine, observation_end)
    p = paid_orders(o)
    start = p.order_time.truncate(_TRUNC[_FREQ.get(freq, freq)]).date().name("start")
    return p.select("customer_id", start), o


def _periods(starts: pd.Series, freq: str) -> pd.PeriodIndex:
    return pd.PeriodIndex(pd.to_datetime(starts), freq=_FREQ.get(freq, freq), name="period")


def period_repurchase_rate(orders, freq: str = "month", observation_end=None, engine=None) -> pd.DataFrame:
    """Of each period's buyers, the share with 2+ paid orders in that period.

    Returns
    -------
    DataFrame indexed by period: ``buyers``, ``repeat_buyers``, ``rate``, ``ci_low``,
    ``ci_high``, ``complete`` (False for the censored last period, whose rate is NaN).
    """
    pairs, o = _buyer_periods(orders, freq, observation_end, engine)
    n = pairs.group_by(["start", "customer_id"]).aggregate(n=pairs.customer_id.count())
    small = o.engine.to_pandas(n.group_by("start").aggregate(buyers=n.n.count(),
                                                             repeat=(n.n >= 2).cast("int64").sum()))
    small = small.sort_values("start")
    idx = _periods(small["start"], freq)
    buyers, repeat = small["buyers"].to_numpy(), small["repeat"].to_numpy()
    complete = _complete(idx, o.observation_end)
    out = rate_frame(np.where(complete, repeat, 0), np.where(complete, buyers, 0), index=idx,
                     names=("repeat_buyers", "buyers"))
    out["repeat_buyers"], out["buyers"] = repeat, buyers  # rate NaN when censored
    out["complete"] = complete
    return out


def next_period_repurchase(orders, kind: str = "next_month", observation_end=None, engine=None) -> pd.DataFrame:
    """次月 / 次两月 / 次季度复购率 per period.

    For period P: ``base`` = customers who bought in the ``lookback`` periods before P
    (P-1 for next month and next quarter; P-2 and P-1 for next two months);
    ``repurchased`` = those of them who buy in P. P must be complete (else NaN) and its
    base periods observed from the start of the data.

    Returns
    -------
    DataFrame indexed by period P: ``repurchased``, ``base``, ``rate``, ``ci_low``,
    ``ci_high``, ``complete``.
    """
    if kind not in NEXT_PERIOD_KINDS:
        raise ValueError(f"kind must be one of {list(NEXT_PERIOD_KINDS)}, not {kind!r}")
    freq, lookback = NEXT_PERIOD_KINDS[kind]
    pairs, o = _buyer_periods(orders, freq, observation_end, engine)
    months = 1 if freq == "M" else 3
    idx = (pairs.start.year() * 12 + pairs.start.month() - 1) // months
    bought = pairs.select("customer_id", p=idx).distinct()
    base = ibis.union(*[bought.select("customer_id", p=bought.p + j) for j in range(1, lookback + 1)],
                      distinct=True)
    hits = bought.select("customer_id", bought.p, hit=ibis.literal(1))
    j = base.left_join(hits, ["customer_id", "p"])
    per = j.group_by("p").aggregate(base=j.customer_id.count(), repurchased=j.hit.count())
    rng = bought.aggregate(lo=bought.p.min(), hi=bought.p.max())
    small, r = o.engine.to_pandas(per), o.engine.to_pandas(rng)
    cols = ["repurchased", "base", "rate", "ci_low", "ci_high", "complete"]
    if r["lo"].isna().all():
        return pd.DataFrame(columns=cols)
    lo, hi = int(r["lo"].iloc[0]), int(r["hi"].iloc[0])
    ps = np.arange(lo + lookback, hi + 1)
    if not len(ps):
        return pd.DataFrame(columns=cols)
    small = small.set_index("p").reindex(ps, fill_value=0)
    index = pd.PeriodIndex([pd.Period(year=int(p * months // 12), month=int(p * months % 12) + 1, freq=freq)
                            for p in ps], name="period")
    complete = _complete(index, o.observation_end)
    num, den = small["repurchased"].to_numpy(), small["base"].to_numpy()
    out = rate_frame(np.where(complete, num, 0), np.where(complete, den, 0), index=index,
                     names=("repurchased", "base"))
    out["repurchased"], out["base"] = num, den  # observed so far; the rate stays NaN when censored
    out["complete"] = complete
    return out
