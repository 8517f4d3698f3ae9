"""Customer response history (营销次数 / 响应次数 / 响应率) from the SMS log and the orders.

The seeds keep, for every customer, how many marketing messages they received, how many they
responded to and the response rate, feed it into the next campaign's targeting, and drop
customers who never respond (剔除低响应、无法激活的客户).

* a **message** is a delivered row of the send log (any campaign); one whose window is not
  over at the observation end is left out of ``messages`` and ``responses`` (its response
  may still come) but counts for ``last_message``;
* a **response** is a message followed by a paid order within ``window_hours`` (inclusive);
* ``response_rate`` = responses / messages; ``last_message`` is the latest delivered send,
  ``last_response`` the latest paid order that answered a message.

The join of messages with orders runs in the engine; one row per customer comes back.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from crmlab.engine.sources import order_table
from crmlab.engine.aggregates import ts

__all__ = ["response_history", "unresponsive", "exclude_unresponsive", "RESPONSE_COLUMNS"]

RESPONSE_COLUMNS = ("messages", "responses", "response_rate", "last_message", "last_response")


def response_history(sends: pd.DataFrame, orders, window_hours: float = 72, observation_end=None,
                     engine=None) -> pd.DataFrame:
    """Per customer with a delivered message: ``messages``, ``responses``, ``response_rate``,
    ``last_message``, ``last_response`` (index ``customer_id``, sorted). ``attrs``:
    ``open_messages`` (delivered messages whose window is not over), ``window_hours``."""
    o = order_table(orders, engine, observation_end)
    s = sends[sends["delivered"].astype(bool)] if "delivered" in sends.columns else sends
    W = int(pd.Timedelta(hours=window_hours).total_seconds())
    end = o.observation_end
    send_time = pd.to_datetime(s["send_time"])
    closed = (send_time + pd.Timedelta(seconds=W) <= end).to_numpy()
    msgs = pd.DataFrame({"customer_id": s["customer_id"].astype(str).to_numpy(dtype=object),
                         "send_time": send_time.to_numpy(dtype="datetime64[ns]"), "msg": np.arange(len(s)),
                         "closed": closed})
    cols = ["customer_id", *RESPONSE_COLUMNS]
    if msgs.empty:
        out = pd.DataFrame(columns=cols).set_index("customer_id")
        out.attrs.update(open_messages=0, window_hours=window_hours)
        return out
    m = o.engine.register(msgs, "crmlab_messages")
    t = o.table
    paid = t.filter((t.status == "paid") & (t.order_time <= ts(end))).select("customer_id", "order_time")
    j = m.join(paid, "customer_id")
    lag = j.order_time.epoch_seconds() - j.send_time.epoch_seconds()
    j = j.filter((lag >= 0) & (lag <= W))
    per_msg = j.group_by("msg").aggregate(answer=j.order_time.max())
    mm = m.left_join(per_msg, "msg")
    answered = mm.answer.notnull()
    agg = mm.group_by("customer_id").aggregate(
        messages=mm.msg.count(where=mm.closed), responses=mm.msg.count(where=mm.closed & answered),
        last_message=mm.send_time.max(), last_response=mm.answer.max())
    out = o.engine.to_pandas(agg).set_index("customer_id").sort_index()
    out["messages"] = out["messages"].fillna(0).astype(int)
    out["responses"] = out["responses"].fillna(0).astype(int)
    out["response_rate"] = out["responses"] / out["messages"].where(out["messages"] > 0)
    for c in ("last_message", "last_response"):  # Spark returns microseconds
        out[c] = pd.to_datetime(out[c]).astype("datetime64[ns]")
    out = out[list(RESPONSE_COLUMNS)]
    out.attrs.update(open_messages=int((~closed).sum()), window_hours=window_hours)
    return out


def unresponsive(history: pd.DataFrame, min_messages: int = 3) -> pd.Index:
    """Customers with at least ``min_messages`` messages and no response (ids, sorted)."""
    m = (history["messages"] >= min_messages) & (history["responses"] == 0)
    return history.index[m]


def exclude_unresponsive(targets, history: pd.DataFrame, min_messages: int = 3):
    """``targets`` (ids, or a frame indexed by or with a ``customer_id`` column, e.g. a wake-up
    list) without the customers :func:`unresponsive` names."""
    drop = set(map(str, unresponsive(history, min_messages)))
    if isinstance(targets, pd.DataFrame):
        ids = targets["customer_id"] if "customer_id" in targets.columns else targets.index.to_series()
        return targets[~ids.astype(str).isin(drop).to_numpy()]
    kept = [t for t in targets if str(t) not in drop]
    return type(targets)(kept) if isinstance(targets, (pd.Index, pd.Series)) else kept
