"""The lead-in: the first part of an export kept as history only.

Most exports start in the middle of the store's life (:mod:`crmlab.engine.truncation`): a
customer whose first paid order in the export falls in its first months has, as likely as
not, bought before the export begins. The lead-in marks that first part as history only:

* customers first seen in it are *existing* (history unknown): never new or first-time;
* cohorts, first-time/returning splits and X-order counts start after it
  (:func:`crmlab.engine.aggregates.cohort_sequence`); months inside it are not reported as
  first-time/returning months;
* lifecycle, RFM and CLV use the whole history (they need no first order).

Given as ``history_start`` (a date: the lead-in ends at its start) or ``lead_in_days`` (``N``:
the lead-in is the ``N`` days from the date of the export's first paid order), never both.
Neither given and the export looks truncated: the default, :func:`default_lead_in`.

The default. A customer who bought before the export shows up in a lead-in of ``L`` days
when they buy within it; one who does not is counted new later. A year covers every
customer who buys at least once a year, and a year also covers a yearly season (Double 11,
Christmas): :data:`DEFAULT_DAYS` = 365. An export of less than two years would keep less
than a year after it: the lead-in is then half the export (at least :data:`MIN_DAYS`), so
half remains for cohorts. The lead-in is extended to the next first of a month, so that
monthly cohorts start with a whole month. The choice is shown (``ledger.truncation``'s
``lead_in_days``, 01's first screen, a note on the command line's stderr) and
``lead_in_days=0`` turns it off.
"""
from __future__ import annotations

from dataclasses import replace

import pandas as pd

from crmlab.engine.aggregates import paid_orders
from crmlab.engine.sources import OrderTable
from crmlab.engine.truncation import detect
from crmlab.ingest.ledger import lead_in_sentence  # the ledger's sentence; re-exported here
from crmlab.schema import CrmlabInputError

__all__ = ["DEFAULT_DAYS", "MIN_DAYS", "default_lead_in", "apply_lead_in", "lead_in_sentence", "first_paid_day"]

DEFAULT_DAYS = 365
MIN_DAYS = 90


def first_paid_day(orders: OrderTable) -> pd.Timestamp | None:
    """The date (midnight) of the export's first paid order up to the observation end."""
    p = paid_orders(orders)
    t = orders.engine.to_pandas(p.order_time.min().name("t").as_table())["t"].iloc[0]
    return None if pd.isna(t) else pd.Timestamp(t).normalize()


def default_lead_in(first_day: pd.Timestamp, observation_end) -> int:
    """The default lead-in in days for an export from ``first_day`` to ``observation_end``
    (see the module doc): 365 days, or half the export when it covers less than two years
    (at least 90 days), extended to the next first of a month."""
    span = (pd.Timestamp(observation_end).normalize() - first_day).days + 1
    days = DEFAULT_DAYS if span >= 2 * DEFAULT_DAYS else max(MIN_DAYS, span // 2)
    start = first_day + pd.Timedelta(days=days)
    if start.day != 1:
        start = start + pd.offsets.MonthBegin(1)
    return int((start - first_day).days)


def _start_of(value, settings_tz: str | None) -> pd.Timestamp:
    ts = pd.Timestamp(value)
    if ts.tzinfo is not None:
        ts = ts.tz_convert(settings_tz or "UTC").tz_localize(None)
    return ts


def apply_lead_in(orders: OrderTable, truncation: dict, history_start=None,
                  lead_in_days: int | None = None) -> tuple[OrderTable, dict]:
    """``orders`` with their ``history_start`` set, and the ledger's ``truncation`` entry with
    ``lead_in_days`` (0: none), ``history_start`` (date text or None) and ``lead_in`` (how it
    was chosen: ``"given"``, ``"default"`` or ``"none"``).

    Parameters
    ----------
    truncation : dict
        The ledger's entry (from :func:`crmlab.engine.truncation.detect`); empty: judged here.
    history_start : date, optional
        Customers first seen before it are existing; a bare date is the start of that day.
    lead_in_days : int, optional
        The lead-in from the date of the first paid order (0: none, even on a truncated export).
    """
    if history_start is not None and lead_in_days is not None:
        raise CrmlabInputError("give history_start (--history-start) or lead_in_days (--lead-in-days), not both")
    if lead_in_days is not None and (int(lead_in_days) != lead_in_days or lead_in_days < 0):
        raise CrmlabInputError(f"lead_in_days must be a whole number of days >= 0, not {lead_in_days!r}")
    trunc = dict(truncation) if truncation and "left_truncated" in truncation else detect(orders)
    how = "given"
    if history_start is None and lead_in_days is None:
        if not trunc.get("left_truncated"):
            return _with(orders, trunc, None, 0, "none")
        how = "default"
    first = first_paid_day(orders)
    if first is None:
        return _with(orders, trunc, None, 0, "none")
    if history_start is not None:
        start = _start_of(history_start, orders.settings.timezone).normalize()
        days = max(0, (start - first).days)
    else:
        days = default_lead_in(first, orders.observation_end) if how == "default" else int(lead_in_days)
        start = first + pd.Timedelta(days=days)
    if days == 0:
        return _with(orders, trunc, None, 0, "none")
    if start > pd.Timestamp(orders.observation_end):
        raise CrmlabInputError(f"the lead-in ends on {start:%Y-%m-%d}, after the observation end "
                               f"{pd.Timestamp(orders.observation_end):%Y-%m-%d}: no customer would be new")
    return _with(orders, trunc, start, days, how)


def _with(orders: OrderTable, trunc: dict, start, days: int, how: str) -> tuple[OrderTable, dict]:
    trunc.update(lead_in_days=int(days), history_start=None if start is None else f"{start:%Y-%m-%d}", lead_in=how)
    return replace(orders, history_start=start), trunc
