"""Customer response history (营销次数 / 响应次数 / 响应率) from the SMS log and the orders,
and the customers who are credibly unresponsive.

The seeds keep, for every customer, how many marketing messages they received, how many they
responded to and the response rate, feed it into the next campaign's targeting, and drop
customers who do not respond (剔除低响应、无法激活的客户).

* a **message** is a delivered row of the send log (any campaign); one whose window is not
  over at the observation end is left out of ``messages`` and ``responses`` (its response
  may still come) but counts for ``last_message``;
* a **window order** is a paid order within ``window_hours`` after a message (inclusive);
  ``responses`` counts the messages with one, ``response_rate`` = responses / messages;
* not every window order answers the message: the **organic rate** is the share of the
  log's undelivered rows (the holdout) with a paid order in the same window after their
  logged send time (``attrs["organic_rate"]``, None without holdout rows). A customer's
  ``attributable`` responses are ``responses - messages x organic rate``.

**Unresponsive by evidence** (:func:`response_evidence`, :func:`unresponsive`): a customer's
per-message window-order probability θ has a Beta prior centred on the store's response rate
p̄ (Σ responses / Σ messages) worth ``prior_strength`` messages, Beta(κ p̄, κ (1 - p̄)); after
y responses to m messages the posterior is Beta(κ p̄ + y, κ (1 - p̄) + m - y). The customer is
flagged when P(θ < organic rate + threshold) >= ``credibility`` (default 0.95), the threshold
being an attributable response rate (default half the store's, (p̄ - organic) / 2). Zero
responses to 3 messages is what a 5% responder shows 86% of the time (0.95³): it flags
nobody; with the defaults and no organic orders a customer needs 0 responses to 100 messages.

The join of messages with orders runs in the engine; one row per customer comes back.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from crmlab.engine.sources import order_table
from crmlab.engine.aggregates import ts

__all__ = ["response_history", "response_evidence", "unresponsive", "exclude_unresponsive", "RESPONSE_COLUMNS"]

RESPONSE_COLUMNS = ("messages", "responses", "response_rate", "last_message", "last_response")


def _answered(s: pd.DataFrame, o, window_hours: float) -> tuple[pd.DataFrame, np.ndarray]:
    """Per customer of the rows ``s``: closed rows (``messages``), those followed by a paid order
    within the window (``responses``), the latest row and answer; and the closed mask."""
    W = int(pd.Timedelta(hours=window_hours).total_seconds())
    end = o.observation_end
    send_time = pd.to_datetime(s["send_time"])
    closed = (send_time + pd.Timedelta(seconds=W) <= end).to_numpy()
    msgs = pd.DataFrame({"customer_id": s["customer_id"].astype(str).to_numpy(dtype=object),
                         "send_time": send_time.to_numpy(dtype="datetime64[ns]"), "msg": np.arange(len(s)),
                         "closed": closed})
    if msgs.empty:
        return pd.DataFrame(columns=["customer_id", *RESPONSE_COLUMNS]).set_index("customer_id"), closed
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
    return o.engine.to_pandas(agg).set_index("customer_id").sort_index(), closed


def response_history(sends: pd.DataFrame, orders, window_hours: float = 72, observation_end=None,
                     engine=None) -> pd.DataFrame:
    """Per customer with a delivered message: ``messages``, ``responses``, ``response_rate``,
    ``last_message``, ``last_response`` (index ``customer_id``, sorted). ``attrs``:
    ``open_messages`` (delivered messages whose window is not over), ``window_hours``,
    ``organic_rate`` (the holdout rows' window-order share, None without them) and
    ``holdout_rows`` (closed undelivered rows)."""
    o = order_table(orders, engine, observation_end)
    delivered = sends["delivered"].astype(bool) if "delivered" in sends.columns else pd.Series(True, sends.index)
    out, closed = _answered(sends[delivered], o, window_hours)
    held, _ = _answered(sends[~delivered], o, window_hours)
    n_held = int(held["messages"].fillna(0).sum()) if len(held) else 0
    organic = float(held["responses"].fillna(0).sum() / n_held) if n_held else None
    if len(out):
        out["messages"] = out["messages"].fillna(0).astype(int)
        out["responses"] = out["responses"].fillna(0).astype(int)
        out["response_rate"] = out["responses"] / out["messages"].where(out["messages"] > 0)
        for c in ("last_message", "last_response"):  # Spark returns microseconds
            out[c] = pd.to_datetime(out[c]).astype("datetime64[ns]")
    out = out[list(RESPONSE_COLUMNS)]
    out.attrs.update(open_messages=int((~closed).sum()), window_hours=window_hours, organic_rate=organic,
                     holdout_rows=n_held)
    return out


def response_evidence(history: pd.DataFrame, min_messages: int = 3, *, threshold: float | None = None,
                      credibility: float = 0.95, prior_strength: float = 20.0, base_rate: float | None = None,
                      organic_rate: float | None = None) -> pd.DataFrame:
    """Per customer: ``messages``, ``responses``, ``attributable`` (responses - messages x the
    organic rate), ``prob_below`` (posterior P(θ < organic + threshold), see the module doc)
    and ``unresponsive`` (at least ``min_messages`` and ``prob_below >= credibility``).

    ``base_rate`` (default the store's Σ responses / Σ messages) centres the prior;
    ``organic_rate`` defaults to ``history.attrs["organic_rate"]`` (0 when the log has no holdout
    rows: then every window order counts, and ``attrs["warnings"]`` says so). ``attrs`` carry
    the rates, the threshold and the method."""
    m = history["messages"].to_numpy(float)
    y = history["responses"].to_numpy(float)
    warnings = []
    p1 = float(y.sum() / m.sum()) if base_rate is None and m.sum() > 0 else (base_rate or 0.0)
    p0 = organic_rate if organic_rate is not None else history.attrs.get("organic_rate")
    if p0 is None:
        p0 = 0.0
        warnings.append("the log has no holdout rows: organic window orders cannot be netted out, so every "
                        "window order counts as a response")
    t = threshold if threshold is not None else max(p1 - p0, 0.0) / 2
    out = pd.DataFrame({"messages": m.astype(int), "responses": y.astype(int), "attributable": y - m * p0},
                       index=history.index)
    if t <= 0 or not 0 < p1 < 1:
        out["prob_below"] = np.nan
        out["unresponsive"] = False
        warnings.append("no attributable response rate above the organic rate to fall short of: nobody is flagged")
    else:
        a, b = prior_strength * p1, prior_strength * (1 - p1)
        out["prob_below"] = stats.beta.cdf(min(p0 + t, 1.0), a + y, b + m - y)
        out["unresponsive"] = (m >= min_messages) & (out["prob_below"].to_numpy() >= credibility)
    out.attrs.update(base_rate=p1, organic_rate=p0, threshold=t, credibility=credibility,
                     prior_strength=prior_strength, min_messages=min_messages, warnings=warnings,
                     method=f"Beta-Binomial: prior Beta({prior_strength:g} p, {prior_strength:g} (1 - p)) at the "
                            f"store's response rate p; flagged when P(rate < organic + threshold) >= {credibility:g}")
    return out


def unresponsive(history: pd.DataFrame, min_messages: int = 3, **evidence) -> pd.Index:
    """Customers credibly unresponsive (:func:`response_evidence`; keyword arguments go there):
    ids, sorted."""
    e = response_evidence(history, min_messages, **evidence)
    return history.index[e["unresponsive"].to_numpy(bool)]


def exclude_unresponsive(targets, history: pd.DataFrame, min_messages: int = 3, **evidence):
    """``targets`` (ids, or a frame indexed by or with a ``customer_id`` column, e.g. a wake-up
    list) without the customers :func:`unresponsive` names."""
    drop = set(map(str, unresponsive(history, min_messages, **evidence)))
    if isinstance(targets, pd.DataFrame):
        ids = targets["customer_id"] if "customer_id" in targets.columns else targets.index.to_series()
        return targets[~ids.astype(str).isin(drop).to_numpy()]
    kept = [t for t in targets if str(t) not in drop]
    return type(targets)(kept) if isinstance(targets, (pd.Index, pd.Series)) else kept
