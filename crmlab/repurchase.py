"""Repurchase rates (复购率) as the seeds define them, each with a Wilson 95% interval.

* :func:`period_repurchase_rate`: of customers who bought in a period (week, month,
  quarter), the share with two or more paid orders in it.
* :func:`next_period_repurchase`: 次月复购率 (of last month's buyers, the share who buy
  this month), 次两月复购率 (of the buyers of the two months before this one, the share
  who buy this month) and 次季度复购率 (of last quarter's buyers, the share who buy this
  quarter).
* The X-order repurchase rate (of customers with X orders, the share who place order
  X+1) is :func:`crmlab.magic.repurchase_curve`: one implementation, censoring-aware.

A period that the observation end cuts short is censored: its rate is NaN (its buyers
have not had the whole period), never a low number.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from crmlab.aggregate import observation_end_of, order_sequence
from crmlab.proportion import rate_frame

__all__ = ["period_repurchase_rate", "next_period_repurchase", "NEXT_PERIOD_KINDS"]

#: name -> (period frequency, number of earlier periods whose buyers form the base)
NEXT_PERIOD_KINDS = {"next_month": ("M", 1), "next_two_months": ("M", 2), "next_quarter": ("Q", 1)}
_FREQ = {"week": "W-SUN", "month": "M", "quarter": "Q", "W": "W-SUN", "M": "M", "Q": "Q"}


def _complete(periods: pd.PeriodIndex, end: pd.Timestamp) -> np.ndarray:
    return np.asarray(periods.end_time <= end + pd.Timedelta(microseconds=1))


def _buyer_periods(orders: pd.DataFrame, freq: str, observation_end=None) -> tuple[pd.DataFrame, pd.Timestamp]:
    end = observation_end_of(orders, observation_end)
    seq = order_sequence(orders, end)
    per = seq["order_time"].dt.to_period(_FREQ.get(freq, freq))
    df = pd.DataFrame({"code": seq["customer_id"].cat.codes.to_numpy(), "period": per})
    return df, end


def period_repurchase_rate(orders: pd.DataFrame, freq: str = "month", observation_end=None) -> pd.DataFrame:
    """Of each period's buyers, the share with 2+ paid orders in that period.

    Returns
    -------
    DataFrame indexed by period: ``buyers``, ``repeat_buyers``, ``rate``, ``ci_low``,
    ``ci_high``, ``complete`` (False for the censored last period, whose rate is NaN).
    """
    df, end = _buyer_periods(orders, freq, observation_end)
    n = df.groupby(["period", "code"], observed=True).size()
    buyers = n.groupby(level="period").size()
    repeat = (n >= 2).groupby(level="period").sum()
    complete = _complete(buyers.index, end)
    out = rate_frame(np.where(complete, repeat, 0), np.where(complete, buyers, 0), index=buyers.index,
                     names=("repeat_buyers", "buyers"))
    out["repeat_buyers"], out["buyers"] = repeat.to_numpy(), buyers.to_numpy()  # rate NaN when censored
    out["complete"] = complete
    return out


def next_period_repurchase(orders: pd.DataFrame, kind: str = "next_month", observation_end=None) -> pd.DataFrame:
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
    df, end = _buyer_periods(orders, freq, observation_end)
    pairs = df.drop_duplicates()
    periods = pd.period_range(pairs["period"].min(), pairs["period"].max(), freq=pairs["period"].dt.freq)
    by_period = {p: set() for p in periods}
    for p, codes in pairs.groupby("period", observed=True)["code"]:
        by_period[p] = set(codes.to_numpy().tolist())
    rows = []
    for i, p in enumerate(periods):
        if i < lookback:
            continue
        base = set().union(*(by_period[periods[j]] for j in range(i - lookback, i)))
        rows.append((p, len(base & by_period[p]), len(base)))
    if not rows:
        return pd.DataFrame(columns=["repurchased", "base", "rate", "ci_low", "ci_high", "complete"])
    idx = pd.PeriodIndex([r[0] for r in rows], name="period")
    complete = _complete(idx, end)
    num = np.array([r[1] for r in rows])
    den = np.array([r[2] for r in rows])
    out = rate_frame(np.where(complete, num, 0), np.where(complete, den, 0), index=idx,
                     names=("repurchased", "base"))
    out["repurchased"], out["base"] = num, den  # observed so far; the rate stays NaN when censored
    out["complete"] = complete
    return out
