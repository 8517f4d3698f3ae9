"""Making a payment-reminder experiment, and checking that an export can read one.

:func:`design_reminders` randomises the orders still unpaid and open to no reminder or a
delay (equal arms, a seeded permutation; the same orders and seed give the same arms): the
CSV the SMS tool imports (``order_id, customer_id, arm, send_time``; no send time for
``none``). :func:`reminder_inputs` reads the orders and the reminder sends for the notebook,
or says in one line why there is nothing to read.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from crmlab.experiments.reminders import DEFAULT_ARMS, parse_delay
from crmlab.ingest.payments import load_payment_orders, load_reminder_sends
from crmlab.schema import CrmlabInputError

__all__ = ["design_reminders", "reminder_inputs", "parse_arms"]


def parse_arms(spec) -> list[str]:
    """``"none,1h,6h"`` (or a list) as arm names, each a delay or ``none``; distinct."""
    arms = [a.strip() for a in (spec.split(",") if isinstance(spec, str) else spec or DEFAULT_ARMS) if str(a).strip()]
    bad = [a for a in arms if parse_delay(a) is None]
    if bad:
        raise CrmlabInputError(f"--arms: {', '.join(map(repr, bad))} not a delay (6h, 30min, 1d) or none")
    if len({parse_delay(a) for a in arms}) < len(arms):
        raise CrmlabInputError("--arms: two arms with the same delay")
    if len(arms) < 2:
        raise CrmlabInputError("--arms: give at least two arms to compare, e.g. none,1h,6h,12h,24h")
    return arms


def design_reminders(orders: pd.DataFrame, arms=DEFAULT_ARMS, seed: int = 0, since=None,
                     open_hours: float = 72.0) -> dict:
    """Randomise the unpaid, open orders to the arms.

    Parameters
    ----------
    orders : DataFrame
        :func:`crmlab.ingest.payments.load_payment_orders`'s frame.
    arms : sequence of str or str
        ``none`` and delays (default ``none,1h,6h,12h,24h``), equal shares.
    seed : int
    since : str or Timestamp, optional
        Only orders created at or after it.
    open_hours : float
        The platform closes an unpaid order this many hours after it was placed (default 72):
        older unpaid orders are closed already and are not randomised.

    Returns
    -------
    dict
        ``assignment`` (DataFrame: ``order_id, customer_id, arm, created_time, send_time``),
        ``arms`` {arm: orders}, ``orders``, ``seed``, ``already_due`` (orders whose send time
        has passed at the observation end: their reminder is late).
    """
    names = parse_arms(arms)
    o = orders[orders["paid_time"].isna() & (orders["status"] == "unpaid") & orders["closed_time"].isna()]
    end = orders.attrs.get("observation_end")
    if end is not None:
        o = o[o["created_time"] > pd.Timestamp(end) - pd.Timedelta(hours=open_hours)]
    if since is not None:
        o = o[o["created_time"] >= pd.Timestamp(since)]
    o = o.sort_values(["created_time", "order_id"], kind="stable").reset_index(drop=True)
    if o.empty:
        raise CrmlabInputError(f"no unpaid open order to randomise (status unpaid, no paid or closed time, placed "
                               f"within {open_hours:g} h of the observation end)")
    rng = np.random.default_rng(seed)
    arm = np.array(names)[rng.permutation(np.arange(len(o)) % len(names))]
    delay = pd.to_timedelta([parse_delay(a) for a in arm], unit="h")
    send = (o["created_time"] + delay).where(delay > pd.Timedelta(0))
    table = pd.DataFrame({"order_id": o["order_id"], "customer_id": o["customer_id"], "arm": arm,
                          "created_time": o["created_time"], "send_time": send})
    due = int((send < pd.Timestamp(end)).sum()) if end is not None else 0
    return {"assignment": table, "arms": {a: int((arm == a).sum()) for a in names}, "orders": len(table),
            "seed": seed, "already_due": due}


def reminder_inputs(orders_source, sends_source, **read) -> tuple[pd.DataFrame | None, pd.DataFrame | None, str | None]:
    """``(orders, sends, None)`` when the export has unpaid orders with a created time and the
    send log reminders with an order id; else ``(None, None, reason)`` (one line)."""
    if not sends_source:
        return None, None, "no send log: payment reminders need the reminder sends with their order id"
    try:
        orders = load_payment_orders(orders_source, **{k: v for k, v in read.items() if k != "sends_columns"})
    except CrmlabInputError as e:
        return None, None, f"the orders carry no created time for payment reminders ({e})"
    if not (orders["paid_time"].isna() | (orders["paid_time"] > orders["created_time"])).any():
        return None, None, "no order was unpaid after it was placed (every paid time equals the created time)"
    kw = {k: v for k, v in read.items() if k in ("timezone", "decimal", "dayfirst")}
    try:
        sends = load_reminder_sends(sends_source, read.get("sends_columns"), **kw)
    except CrmlabInputError as e:
        return None, None, f"the send log has no payment reminder with an order id ({e})"
    return orders, sends, None
