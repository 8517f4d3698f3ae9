"""Cohort retention (留存率): of a cohort's new buyers, the share with a paid order on day N.

Day N counts calendar days from the date of the customer's first paid order (day 0).
A customer whose day N (or a bracket's last day) is not complete by the observation end
is left out of that cell: the cell's denominator counts only eligible customers, and a
cell with none is NaN (drawn blank), never 0.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from crmlab.aggregate import observation_end_of, order_sequence
from crmlab.proportion import wilson

__all__ = ["RetentionTable", "retention_table", "cohort_of"]

ALL = "all cohorts"
_KINDS = ("exact", "on_or_after", "bracket")


@dataclass(frozen=True)
class RetentionTable:
    """Retention by cohort and day.

    Attributes
    ----------
    rates, eligible, retained : DataFrame
        Rows cohorts (the last row is ``"all cohorts"``, weighted by eligible customers),
        columns days (``1``, ``7``, ...) or brackets (``"1-7"``).
    size : Series
        New buyers per cohort.
    kind, cohort : str
    observation_end : Timestamp
    """

    rates: pd.DataFrame
    eligible: pd.DataFrame
    retained: pd.DataFrame
    size: pd.Series
    kind: str
    cohort: str
    observation_end: pd.Timestamp

    def to_frame(self) -> pd.DataFrame:
        """Long format: cohort, day, size, eligible, retained, rate, ci_low, ci_high."""
        e = self.eligible.stack().rename("eligible")
        r = self.retained.stack().rename("retained")
        df = pd.concat([e, r], axis=1)
        df.index.names = ["cohort", "day"]
        df = df.reset_index()
        df["size"] = df["cohort"].map(self.size)
        df["rate"] = np.where(df["eligible"] > 0, df["retained"] / df["eligible"].where(df["eligible"] > 0), np.nan)
        df["ci_low"], df["ci_high"] = wilson(df["retained"], df["eligible"])
        return df[["cohort", "day", "size", "eligible", "retained", "rate", "ci_low", "ci_high"]]

    def to_dict(self) -> dict:
        """The CLI's JSON: observation_end, kind, cohorts[{cohort, size, days{N: {rate, eligible, retained}}}]."""
        cohorts = []
        for c in self.rates.index:
            days = {}
            for d in self.rates.columns:
                r = self.rates.at[c, d]
                days[str(d)] = {"rate": None if pd.isna(r) else float(r), "eligible": int(self.eligible.at[c, d]),
                                "retained": int(self.retained.at[c, d])}
            cohorts.append({"cohort": str(c), "size": int(self.size[c]), "days": days})
        return {"observation_end": str(self.observation_end), "kind": self.kind, "cohort_by": self.cohort,
                "cohorts": cohorts}


def cohort_of(first_time: pd.Series, by: str, channel: pd.Series | None = None) -> pd.Series:
    """Cohort label of each customer from the first paid order: day, week, month or channel."""
    if by == "day":
        return first_time.dt.strftime("%Y-%m-%d")
    if by == "week":
        return first_time.dt.to_period("W-SUN").dt.start_time.dt.strftime("%Y-%m-%d (week)")
    if by == "month":
        return first_time.dt.strftime("%Y-%m")
    if by == "channel":
        if channel is None:
            raise ValueError("cohort='channel' needs a 'channel' column in the orders")
        return channel.astype(str)
    raise ValueError(f"cohort must be day, week, month or channel, not {by!r}")


def _label(d) -> object:
    return f"{d[0]}-{d[1]}" if isinstance(d, tuple) else int(d)


def retention_table(orders: pd.DataFrame, cohort: str = "month", days: Sequence = (1, 3, 7, 14, 30, 60, 90),
                    kind: str = "exact", observation_end=None) -> RetentionTable:
    """Cohort retention with censoring.

    Parameters
    ----------
    orders : DataFrame
        From :func:`crmlab.io.load_orders`.
    cohort : {"day", "week", "month", "channel"}
        Grouping of customers by their first paid order.
    days : sequence of int, or of (start, end) pairs for ``kind="bracket"``
    kind : {"exact", "on_or_after", "bracket"}
        ``exact``: a paid order on day N; ``on_or_after``: on day N or later (observed up
        to the observation end); ``bracket``: a paid order on a day inside [start, end].
    observation_end : optional
        Defaults to the loader's.

    Returns
    -------
    RetentionTable
    """
    if kind not in _KINDS:
        raise ValueError(f"kind must be one of {_KINDS}, not {kind!r}")
    if kind == "bracket":
        days = [tuple(int(x) for x in d) for d in days]
        if any(a > b or a < 1 for a, b in days):
            raise ValueError("brackets are (start, end) with 1 <= start <= end")
    else:
        days = [int(d) for d in days]
        if any(d < 1 for d in days):
            raise ValueError("days must be >= 1 (day 0 is the first order itself)")
    end = observation_end_of(orders, observation_end)
    seq = order_sequence(orders, end)
    codes = seq["customer_id"].cat.codes.to_numpy()
    ncust = len(seq["customer_id"].cat.categories)
    first_rows = seq["k"].to_numpy() == 1
    first_code = codes[first_rows]
    first_date = seq["first_time"].to_numpy()[first_rows].astype("datetime64[D]")
    # the last complete calendar day: day D is observed when end >= D 23:59:59.999999
    last_full = (np.datetime64(end + pd.Timedelta(microseconds=1), "us").astype("datetime64[D]")
                 - np.timedelta64(1, "D"))
    observed_days = (last_full - first_date).astype(np.int64)  # per first-row customer
    obs_by_code = np.full(ncust, -1, dtype=np.int64)
    obs_by_code[first_code] = observed_days
    day = seq["day"].to_numpy()
    labels = cohort_of(pd.Series(seq["first_time"].to_numpy()[first_rows]), cohort,
                       None if "channel" not in seq else pd.Series(seq["channel"].to_numpy()[first_rows]))
    cohort_by_code = pd.Series(labels.to_numpy(), index=first_code)

    max_day = np.full(ncust, -1, dtype=np.int64)
    np.maximum.at(max_day, codes, day)
    elig_cols, ret_cols = {}, {}
    for d in days:
        last_needed = d[1] if isinstance(d, tuple) else d
        eligible = obs_by_code[first_code] >= last_needed
        if kind == "exact":
            hit = np.zeros(ncust, bool)
            hit[codes[day == d]] = True
        elif kind == "on_or_after":
            hit = max_day >= d
        else:
            hit = np.zeros(ncust, bool)
            hit[codes[(day >= d[0]) & (day <= d[1])]] = True
        elig_cols[_label(d)] = eligible
        ret_cols[_label(d)] = hit[first_code] & eligible
    E = pd.DataFrame(elig_cols, index=cohort_by_code.index).groupby(cohort_by_code.to_numpy()).sum()
    R = pd.DataFrame(ret_cols, index=cohort_by_code.index).groupby(cohort_by_code.to_numpy()).sum()
    size = cohort_by_code.groupby(cohort_by_code.to_numpy()).size()
    if cohort == "channel":
        order = size.sort_values(ascending=False).index
        E, R, size = E.loc[order], R.loc[order], size.loc[order]
    E.loc[ALL] = E.sum()
    R.loc[ALL] = R.sum()
    size.loc[ALL] = size.sum()
    E.index.name = R.index.name = size.index.name = "cohort"
    rates = R / E.where(E > 0)
    return RetentionTable(rates.astype(float), E.astype(int), R.astype(int), size.astype(int), kind, cohort, end)
