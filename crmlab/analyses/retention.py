"""Cohort retention (留存率): of a cohort's new buyers, the share with a paid order on day N.

Day N counts calendar days from the date of the customer's first paid order (day 0).
A customer whose day N (or a bracket's last day) is not complete by the observation end
is left out of that cell: the cell's denominator counts only eligible customers, and a
cell with none is NaN (drawn blank), never 0.

"On or after day N" counts a paid order on days N to H, a fixed horizon (``horizon_days``,
default :data:`HORIZON_DAYS` = 180): every customer it counts has had the same follow-up,
so cohorts compare and the all-cohorts row mixes only comparable follow-up. A customer
whose day H is not complete is censored (left out), as for any other cell. Counting up to
the observation end instead would give each cohort a different follow-up: old cohorts'
rates rise with their age and young cohorts' fall, on a store that does not change at all.
Half a year is the default: long enough for most second orders (a repeat buyer's next
order within 90 days is the seeds' rule), short enough to leave the cohorts of the last
year but six months observable.

Customers first seen in the lead-in (:mod:`crmlab.engine.lead_in`) have no cohort: their
first order in the export is not their first order.
"""
from __future__ import annotations

from dataclasses import field
from typing import Sequence

import numpy as np
import pandas as pd

import ibis

from crmlab.engine.sources import order_table
from crmlab.engine.aggregates import paid_orders, ts
from crmlab.present import figures
from crmlab.present.formatting import MISSING, number, pct
from crmlab.present.result import Card, Result, result
from crmlab.settings import Settings, current
from crmlab.stats.proportion import wilson

__all__ = ["RetentionTable", "retention_table", "cohort_labels", "HORIZON_DAYS"]

ALL = "all cohorts"
_KINDS = ("exact", "on_or_after", "bracket")
HORIZON_DAYS = 180


_KIND_WORDS = {"exact": "a paid order on that day", "on_or_after": "a paid order on that day or later",
               "bracket": "a paid order within those days"}


@result
class RetentionTable(Result):
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
    horizon_days : int or None
        For ``kind="on_or_after"``: orders count on days N to this day (None for the others).
    settings : Settings
        The context it was computed under (the orders' engine, store time zone, currency).
    engine, timezone : str
        The engine that computed it and the store time zone (from ``settings``).

    In a notebook the table shows itself (the latest cohorts, the all-cohorts row and the
    headline); :meth:`plot` draws it.
    """

    rates: pd.DataFrame
    eligible: pd.DataFrame
    retained: pd.DataFrame
    size: pd.Series
    kind: str
    cohort: str
    observation_end: pd.Timestamp
    settings: Settings = field(default_factory=current, compare=False)
    horizon_days: int | None = None

    @property
    def engine(self) -> str:
        """The engine that computed the table."""
        return self.context.engine

    @property
    def timezone(self) -> str:
        """The store time zone of the orders."""
        return self.context.timezone

    def _key_day(self):
        """The headline day: day 30 when there is one, else the last day with eligible customers."""
        elig = self.eligible.loc[ALL]
        if 30 in self.rates.columns and elig[30] > 0:
            return 30
        ok = [c for c in self.rates.columns if elig[c] > 0]
        return ok[-1] if ok else self.rates.columns[-1]

    def _card(self, last: int = 6) -> Card:
        d = self._key_day()
        n = int(self.eligible.at[ALL, d])
        label = f"days {d}" if isinstance(d, str) else f"day-{d}"
        words = _KIND_WORDS.get(self.kind, self.kind)
        if self.kind == "on_or_after" and self.horizon_days:
            h = self.horizon_days
            words = f"a paid order from that day to day {h}; customers followed {h} days"
        finding = (f"{label} retention {pct(self.rates.at[ALL, d])} of {n:,} eligible new buyers "
                   f"(all cohorts; {words})")
        cohorts = [c for c in self.rates.index if c != ALL]
        rows = cohorts[-last:] + [ALL]
        tab = self.rates.loc[rows].apply(lambda col: col.map(pct))
        tab.columns = [f"day {c}" if not isinstance(c, str) else f"days {c}" for c in self.rates.columns]
        tab.insert(0, "new buyers", self.size.loc[rows].map(number))
        cap = (f"the latest {min(last, len(cohorts))} of {len(cohorts)} cohorts by {self.cohort}; {MISSING} : not "
               "yet observable (censored), never 0")
        return Card("RetentionTable", f"cohort retention by {self.cohort} ({self.kind})", finding, tab, cap,
                    settings=self.footer(self.observation_end),
                    hint=".plot() curves, .plot(kind='heatmap'); .to_frame(): every cell with its interval")

    def plot(self, ax=None, kind: str = "curves", **kw):
        """Draw the table: ``kind="curves"`` (:func:`crmlab.present.figures.retention_curves`) or
        ``"heatmap"`` (:func:`crmlab.present.figures.retention_heatmap`); keyword arguments go to the
        figure function. Returns the new Figure, or ``ax`` when given."""
        if kind not in ("curves", "heatmap"):
            raise ValueError(f"kind must be 'curves' or 'heatmap', not {kind!r}")
        draw = figures.retention_curves if kind == "curves" else figures.retention_heatmap
        return draw(self, ax=ax, **kw)

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

    def _as_dict(self) -> dict:
        """The CLI's JSON (:meth:`to_dict`): observation_end, kind, cohort_by,
        cohorts[{cohort, size, days{N: {rate, eligible, retained}}}]."""
        cohorts = []
        for c in self.rates.index:
            days = {}
            for d in self.rates.columns:
                r = self.rates.at[c, d]
                days[str(d)] = {"rate": r, "eligible": int(self.eligible.at[c, d]),
                                "retained": int(self.retained.at[c, d])}
            cohorts.append({"cohort": str(c), "size": int(self.size[c]), "days": days})
        return {"observation_end": str(self.observation_end), "kind": self.kind, "cohort_by": self.cohort,
                "horizon_days": self.horizon_days, "cohorts": cohorts}


def cohort_labels(keys: pd.Series, by: str) -> pd.Series:
    """Readable cohort label from the engine's cohort key (the first order's date, week
    start, month start, or first channel)."""
    if by == "day":
        return pd.to_datetime(keys).dt.strftime("%Y-%m-%d")
    if by == "week":
        return pd.to_datetime(keys).dt.strftime("%Y-%m-%d (week)")
    if by == "month":
        return pd.to_datetime(keys).dt.strftime("%Y-%m")
    return keys.astype(str)


def _cohort_key(first_time, by: str, first_channel=None):
    if by == "day":
        return first_time.date()
    if by == "week":  # weeks start on Monday (ISO), in every engine
        return first_time.truncate("W").date()
    if by == "month":
        return first_time.truncate("M").date()
    if by == "channel":
        if first_channel is None:
            raise ValueError("cohort='channel' needs a 'channel' column in the orders")
        return first_channel.fill_null("(none)")
    raise ValueError(f"cohort must be day, week, month or channel, not {by!r}")


def _first_orders(o, cohort: str) -> ibis.Table:
    """Per customer: the first paid order's time (and, for channel cohorts, its channel: the
    file's first among orders at that moment). Aggregates and joins, no window over the
    orders (a window over 10⁸ orders does not spill in DuckDB)."""
    p = paid_orders(o)
    first = p.group_by("customer_id").aggregate(first_time=p.order_time.min())
    if o.history_start is not None:  # customers first seen in the lead-in have no cohort
        first = first.filter(first.first_time >= ts(o.history_start))
    if cohort == "channel" and o.has("channel"):
        at = p.join(first, [p.customer_id == first.customer_id, p.order_time == first.first_time])
        ch = at.group_by("customer_id").aggregate(first_channel=at.channel.argmin(at.line))
        first = first.join(ch, "customer_id")
    return first


def _days_after_first(o, first: ibis.Table) -> ibis.Table:
    """Each paid order's ``day``: whole calendar days after the customer's first order's date."""
    p = paid_orders(o)
    j = p.join(first, "customer_id")
    return j.select("customer_id", day=j.order_time.date().delta(j.first_time.date(), unit="day"))


def _label(d) -> object:
    return f"{d[0]}-{d[1]}" if isinstance(d, tuple) else int(d)


def retention_table(orders: pd.DataFrame, cohort: str = "month", days: Sequence = (1, 3, 7, 14, 30, 60, 90),
                    kind: str = "exact", observation_end=None, engine=None,
                    horizon_days: int | None = None) -> RetentionTable:
    """Cohort retention with censoring.

    Parameters
    ----------
    orders : OrderTable or DataFrame
        An :class:`crmlab.engine.sources.OrderTable`, or orders from :func:`crmlab.ingest.readers.load_orders`.
    cohort : {"day", "week", "month", "channel"}
        Grouping of customers by their first paid order.
    days : sequence of int, or of (start, end) pairs for ``kind="bracket"``
    kind : {"exact", "on_or_after", "bracket"}
        ``exact``: a paid order on day N; ``on_or_after``: on a day from N to
        ``horizon_days`` (customers without that follow-up censored); ``bracket``: a paid
        order on a day inside [start, end].
    observation_end : optional
        Defaults to the loader's.
    engine : str or Engine, optional
        Where a DataFrame is scanned (default: :func:`crmlab.engine.connection.get_engine`).
    horizon_days : int, optional
        ``kind="on_or_after"`` only: the horizon H (default :data:`HORIZON_DAYS`); every day
        N must be at most H.

    Returns
    -------
    RetentionTable
    """
    days = _checked_days(days, kind)
    horizon = _checked_horizon(days, kind, horizon_days)
    o = order_table(orders, engine, observation_end)
    end = o.observation_end
    # on or after day N with a horizon H is the bracket N..H: one follow-up for every customer
    counted = [(d, horizon) for d in days] if kind == "on_or_after" else days
    small = _cohort_counts(o, cohort, counted, "bracket" if kind == "on_or_after" else kind)
    E, R, size = _tables(small, cohort, counted)
    if kind == "on_or_after":
        E.columns = R.columns = days
    rates = R / E.where(E > 0)
    return RetentionTable(rates.astype(float), E.astype(int), R.astype(int), size.astype(int), kind, cohort, end,
                          o.settings, horizon)


def _checked_horizon(days: list, kind: str, horizon_days) -> int | None:
    """The horizon of ``on_or_after`` (checked against the days), None for the other kinds."""
    if kind != "on_or_after":
        if horizon_days is not None:
            raise ValueError("horizon_days applies to kind='on_or_after' only")
        return None
    h = HORIZON_DAYS if horizon_days is None else int(horizon_days)
    if h < 1 or any(d > h for d in days):
        raise ValueError(f"horizon_days ({h}) must be at least every day N ({max(days)})")
    return h


def _checked_days(days: Sequence, kind: str) -> list:
    """``days`` as ints (or (start, end) pairs for brackets), checked."""
    if kind not in _KINDS:
        raise ValueError(f"kind must be one of {_KINDS}, not {kind!r}")
    if kind == "bracket":
        days = [tuple(int(x) for x in d) for d in days]
        if any(a > b or a < 1 for a, b in days):
            raise ValueError("brackets are (start, end) with 1 <= start <= end")
        return days
    days = [int(d) for d in days]
    if any(d < 1 for d in days):
        raise ValueError("days must be >= 1 (day 0 is the first order itself)")
    return days


def _cohort_counts(o, cohort: str, days: list, kind: str) -> pd.DataFrame:
    """Per cohort key, in the engine: ``size`` and per day i eligible ``e{i}`` and retained ``r{i}``."""
    end = o.observation_end
    # the last complete calendar day: day D is observed when end >= D 23:59:59.999999
    last_full = ((end + pd.Timedelta(microseconds=1)).normalize() - pd.Timedelta(days=1)).date()
    first = _first_orders(o, cohort)
    days_after = _days_after_first(o, first)
    per = {"max_day": days_after.day.max()}
    for i, d in enumerate(days):
        if kind == "exact":
            per[f"h{i}"] = (days_after.day == d).cast("int64").max()
        elif kind == "bracket":
            per[f"h{i}"] = days_after.day.between(d[0], d[1]).cast("int64").max()
    cust = days_after.group_by("customer_id").aggregate(**per)
    key = _cohort_key(first.first_time, cohort, first.first_channel if "first_channel" in first.columns else None)
    first = first.select("customer_id", key=key,
                         observed=ibis.literal(last_full, type="date").delta(first.first_time.date(), unit="day"))
    cust = cust.join(first, "customer_id")
    agg = {"size": cust.customer_id.count()}
    for i, d in enumerate(days):
        last_needed = d[1] if isinstance(d, tuple) else d
        eligible = cust.observed >= last_needed
        hit = (cust.max_day >= d) if kind == "on_or_after" else (cust[f"h{i}"] == 1)
        agg[f"e{i}"] = eligible.cast("int64").sum()
        agg[f"r{i}"] = (eligible & hit).cast("int64").sum()
    small = o.engine.to_pandas(cust.group_by("key").aggregate(**agg)).sort_values("key")
    if cohort == "channel":
        small = small.sort_values(["size", "key"], ascending=[False, True], kind="stable")
    return small


def _tables(small: pd.DataFrame, cohort: str, days: list) -> tuple[pd.DataFrame, pd.DataFrame, pd.Series]:
    """Eligible, retained (cohorts × days) and size per cohort, with the all-cohorts row."""
    idx = pd.Index(cohort_labels(small["key"], cohort).to_numpy(), name="cohort")
    E = pd.DataFrame({_label(d): small[f"e{i}"].to_numpy() for i, d in enumerate(days)}, index=idx)
    R = pd.DataFrame({_label(d): small[f"r{i}"].to_numpy() for i, d in enumerate(days)}, index=idx)
    size = pd.Series(small["size"].to_numpy(), index=idx)
    E.loc[ALL] = E.sum()
    R.loc[ALL] = R.sum()
    size.loc[ALL] = size.sum()
    E.index.name = R.index.name = size.index.name = "cohort"
    return E, R, size
