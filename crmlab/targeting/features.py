"""The pre-send feature snapshot: every customer as the store knew them just before the send.

The snapshot is taken at ``as_of`` = one second before the campaign's first send, so nothing
the campaign caused can leak into the features (the same snapshot, taken at the next send
time, scores a candidate list). It is built in the engine, one row per customer:

* from :func:`crmlab.analyses.lifecycle.stage_table` (ladder rule): ``recency_days``,
  ``frequency`` (paid orders), ``monetary`` (paid sales), the RFM scores ``R``, ``F``, ``M``
  and the lifecycle ``stage`` and RFM ``segment`` (categorical);
* from :func:`crmlab.engine.aggregates.customer_table`: ``tenure_days``, ``unpaid_orders``;
* the last paid order's ``channel``, ``region`` and ``category`` where the export has them;
* the response history of earlier messages (:func:`crmlab.experiments.responses.response_history`
  on the sends before ``as_of``): ``past_messages``, ``past_responses``, ``past_response_rate``;
* with ``clv=True``: ``p_alive`` and ``clv`` from :func:`crmlab.clv.pipeline.clv_pipeline`
  fitted on the orders up to ``as_of`` (no holdout).

Customers with no paid order before ``as_of`` keep missing values (gradient boosting takes
them as they are); they are never filled with 0.
"""
from __future__ import annotations

import ibis
import numpy as np
import pandas as pd

from crmlab.analyses.lifecycle import stage_table
from crmlab.clv.pipeline import clv_pipeline
from crmlab.engine.aggregates import customer_table, paid_orders, ts
from crmlab.engine.sources import OrderTable
from crmlab.experiments.responses import response_history

__all__ = ["feature_snapshot", "snapshot_time", "NUMERIC", "CATEGORICAL"]

NUMERIC = ("recency_days", "frequency", "monetary", "avg_order_value", "tenure_days", "unpaid_orders", "R", "F", "M",
           "past_messages", "past_responses", "past_response_rate")
CATEGORICAL = ("stage", "segment", "last_channel", "last_region", "last_category")


def snapshot_time(send_times: pd.Series) -> pd.Timestamp:
    """One second before the earliest send: the snapshot never sees the campaign."""
    return pd.Timestamp(pd.to_datetime(send_times).min()) - pd.Timedelta(seconds=1)


def _last_order_attrs(o: OrderTable) -> ibis.Table | None:
    cols = [c for c in ("channel", "region", "category") if o.has(c)]
    if not cols:
        return None
    p = paid_orders(o)
    w = ibis.window(group_by=p.customer_id, order_by=[ibis.desc(p.order_time), ibis.desc(p.line)])
    r = p.mutate(_rn=ibis.row_number().over(w))
    r = r.filter(r._rn == 0)
    return r.select("customer_id", *[r[c].cast("string").name(f"last_{c}") for c in cols])


def _engine_snapshot(o: OrderTable, ids: pd.Index) -> pd.DataFrame:
    """Stage, RFM, tenure and the last order's attributes of ``ids``, computed in the engine."""
    st = stage_table(o)
    st = st.select(st.customer_id, st.stage, st.segment, st.R, st.F, st.M)
    c = customer_table(o)
    end = ts(o.observation_end)
    c = c.select(c.customer_id, recency_days=c.recency_days, frequency=c.paid_orders, monetary=c.sales,
                 unpaid_orders=c.unpaid_orders,
                 tenure_days=(end.epoch_seconds() - c.first_time.epoch_seconds()).cast("float64") / 86400.0)
    j = c.left_join(st, "customer_id").drop("customer_id_right")
    last = _last_order_attrs(o)
    if last is not None:
        j = j.left_join(last, "customer_id").drop("customer_id_right")
    want = o.engine.register(pd.DataFrame({"customer_id": ids.astype(str).to_numpy(dtype=object)}), "crmlab_cands")
    j = j.filter(j.customer_id.isin(want.customer_id))
    return o.engine.to_pandas(j).set_index("customer_id")


def feature_snapshot(orders: OrderTable, customers, as_of, sends: pd.DataFrame | None = None,
                     window_hours: float = 72, clv: bool = False) -> pd.DataFrame:
    """The pre-send features of ``customers`` as of ``as_of`` (see the module doc).

    Parameters
    ----------
    orders : OrderTable
    customers : sequence of customer ids
        One row each in the result (in this order); customers unknown to the orders keep
        missing values.
    as_of : timestamp
        The snapshot time (:func:`snapshot_time` of the campaign's sends).
    sends : DataFrame, optional
        The send log: messages before ``as_of`` give the response history.
    clv : bool
        Add ``p_alive`` and ``clv`` (12-month revenue) from the CLV pipeline fitted up to ``as_of``.

    Returns
    -------
    DataFrame indexed by ``customer_id``; ``attrs["as_of"]``, ``attrs["numeric"]``,
    ``attrs["categorical"]`` name the feature columns.
    """
    o = orders.until(as_of)
    ids = pd.Index(pd.Series(list(customers)).astype(str).unique(), name="customer_id")
    snap = _engine_snapshot(o, ids).reindex(ids)
    for col in ("recency_days", "frequency", "monetary", "unpaid_orders", "tenure_days", "R", "F", "M"):
        snap[col] = pd.to_numeric(snap[col], errors="coerce").astype(float)
    snap["avg_order_value"] = snap["monetary"] / snap["frequency"].where(snap["frequency"] > 0)
    hist = _history(sends, o, window_hours)
    for col in ("past_messages", "past_responses", "past_response_rate"):
        snap[col] = hist[col].reindex(ids).astype(float) if hist is not None else np.nan
    if hist is not None:  # no message before: 0 messages (known), rate missing
        snap[["past_messages", "past_responses"]] = snap[["past_messages", "past_responses"]].fillna(0.0)
    numeric = [c for c in NUMERIC if c in snap.columns]
    if clv:
        snap = snap.join(_clv_features(o), how="left")
        numeric += ["p_alive", "clv"]
    categorical = [c for c in CATEGORICAL if c in snap.columns]
    snap = snap[numeric + categorical]
    snap.attrs.update(as_of=pd.Timestamp(o.observation_end), numeric=numeric, categorical=categorical)
    return snap


def _history(sends: pd.DataFrame | None, o: OrderTable, window_hours: float) -> pd.DataFrame | None:
    if sends is None or sends.empty:
        return None
    before = sends[pd.to_datetime(sends["send_time"]) <= o.observation_end]
    if before.empty:
        return None
    h = response_history(before, o, window_hours=window_hours)
    return h.rename(columns={"messages": "past_messages", "responses": "past_responses",
                             "response_rate": "past_response_rate"})


def _clv_features(o: OrderTable) -> pd.DataFrame:
    """P(alive) and 12-month CLV (revenue) per customer, fitted on the orders up to the snapshot."""
    r = clv_pipeline(o, holdout_days=0, model="bgnbd", margin=1.0)
    v = r.values
    out = pd.DataFrame(index=v.index.astype(str))
    out["p_alive"] = v["p_alive"].to_numpy(float) if "p_alive" in v.columns else np.nan
    out["clv"] = v["clv"].to_numpy(float) if "clv" in v.columns else np.nan
    return out
