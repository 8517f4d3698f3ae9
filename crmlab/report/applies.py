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
  absent), and so is ``07_targeting``.
* ``07_targeting`` learns whom a message moves from a randomised campaign's no-message holdout:
  the send log (or the campaign named by its ``campaign`` parameter) must hold a campaign with
  a holdout — an arm named as one (:data:`~crmlab.experiments.metrics.HOLDOUT_NAMES`), or the
  arm the comparison would take as its control with no message delivered — and at least one
  other arm, as :func:`crmlab.targeting.pipeline.target` requires.
* ``08_payment_reminders`` needs what its notebook reads
  (:func:`crmlab.experiments.reminder_design.reminder_inputs`): orders with a created time
  (订单创建时间), some unpaid after they were placed, and reminder sends that name their order
  (``order_id``); and at least one reminder naming one of those orders.

The send-log checks need the runner's :class:`RunInputs` (the validated send log, the files
and how to read them); without it they say nothing and the notebook speaks for itself.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping

import pandas as pd

from crmlab.clv.gamma_gamma import MIN_REPEAT_CUSTOMERS
from crmlab.clv.summary import summary_table
from crmlab.engine.aggregates import paid_orders, ts
from crmlab.engine.sources import OrderTable
from crmlab.experiments.metrics import HOLDOUT_NAMES
from crmlab.experiments.reminder_design import reminder_inputs
from crmlab.promotion.calendar import default_date, parse_date, parse_phases, span
from crmlab.schema import CrmlabInputError

__all__ = ["CHECKS", "INPUT_CHECKS", "RunInputs", "skip_reason", "promotion_reason", "clv_reason",
           "targeting_reason", "reminders_reason"]


@dataclass(frozen=True)
class RunInputs:
    """What a check may read besides the validated orders (the runner fills it).

    ``sends``: the validated send log as the notebooks read it
    (:func:`crmlab.ingest.readers.load_sends`), None without one; ``orders_file`` /
    ``sends_file``: the inputs' paths, for checks that read an export their own way (08);
    ``columns``: the run's column mapping; ``reading``: ``timezone``, ``decimal``, ``dayfirst``.
    """

    sends: pd.DataFrame | None = None
    orders_file: str | None = None
    sends_file: str | None = None
    columns: str | None = None
    reading: Mapping[str, object] = field(default_factory=dict)


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


def _has_holdout(campaign: pd.DataFrame) -> bool:
    """A no-message holdout and another arm, as :func:`crmlab.targeting.pipeline.target` asks:
    the control is an arm named as a holdout, else the first arm by name (the comparison's
    default), which must then have had no message delivered."""
    arms = sorted(campaign["variant"].astype(str).unique())
    named = [a for a in arms if a.lower() in HOLDOUT_NAMES]
    control = named[0] if named else arms[0]
    if len(arms) < 2:
        return False
    return bool(named) or not campaign.loc[campaign["variant"].astype(str) == control, "delivered"].astype(bool).any()


def targeting_reason(orders: OrderTable, params: Mapping[str, object], inputs: RunInputs | None) -> str | None:
    """Why 07 does not apply (no campaign of the send log has a no-message holdout), or None."""
    s = None if inputs is None else inputs.sends
    if s is None or s.empty or not {"campaign_id", "variant", "delivered"} <= set(s.columns):
        return None  # no send log: the runner skips 07 for its missing input
    camp = _given(params, "campaign")
    if camp is not None:
        s = s[s["campaign_id"].astype(str) == str(camp)]
        if s.empty:  # a campaign the log does not hold: the notebook names those it has
            return None
    groups = [g for _, g in s.groupby(s["campaign_id"].astype(str), sort=False)]
    if any(_has_holdout(g) for g in groups):
        return None
    where = (f"campaign {camp} of the send log has none" if camp is not None
             else "the send log's campaign has none" if len(groups) == 1
             else f"none of the send log's {len(groups):,} campaigns has one")
    return (f"Targeting learns whom a message moves by comparing messaged customers with a randomised no-message "
            f"holdout, and {where} (an arm named holdout or control, or an arm with no message delivered, beside a "
            "messaged arm).")


def reminders_reason(orders: OrderTable, params: Mapping[str, object], inputs: RunInputs | None) -> str | None:
    """Why 08 does not apply, or None: the notebook's own reading
    (:func:`crmlab.experiments.reminder_design.reminder_inputs`: orders with a created time, some
    unpaid after they were placed, and reminder sends with an order id), and at least one
    reminder naming one of those orders."""
    if inputs is None or not inputs.orders_file or not inputs.sends_file:
        return None
    reading = {k: v for k, v in inputs.reading.items() if k in ("timezone", "decimal", "dayfirst") and v is not None}
    o, sends, why = reminder_inputs(inputs.orders_file, inputs.sends_file, columns=inputs.columns or None,
                                    observation_end=_given(params, "observation_end"), **reading)
    if why is None and not sends["order_id"].isin(o["order_id"]).any():
        why = "none of the send log's reminders names an order of this export"
    if why is None:
        return None
    return f"Payment reminders (催付) cannot be read from this data: {why}."


#: notebook stem -> its check: ``(orders, parameters) -> reason or None``
CHECKS: dict[str, Callable[[OrderTable, Mapping[str, object]], str | None]] = {
    "06_big_promotion": promotion_reason,
    "04_clv": clv_reason,
}

#: notebook stem -> its check that reads the other inputs: ``(orders, parameters, inputs) -> reason or None``
INPUT_CHECKS: dict[str, Callable[[OrderTable, Mapping[str, object], RunInputs | None], str | None]] = {
    "07_targeting": targeting_reason,
    "08_payment_reminders": reminders_reason,
}


def skip_reason(name: str, orders: OrderTable, params: Mapping[str, object],
                inputs: RunInputs | None = None) -> str | None:
    """The one-sentence reason notebook ``name`` does not apply to the data, or None (it applies,
    or it has no check). ``inputs``: the send log and the files (:class:`RunInputs`), for the
    checks that read them (without it they say nothing)."""
    try:
        if name in INPUT_CHECKS:
            return INPUT_CHECKS[name](orders, params, inputs)
        check = CHECKS.get(name)
        if check is None or orders is None:
            return None
        return check(orders, params)
    except Exception:  # a check that cannot say (a backend's limit): the report runs and speaks for itself
        return None
