"""The wake-up list (唤醒名单): one rule for every report.

**Who is on it**: dormant customers (lifecycle stage ``dormant`` 休眠 — past the dormancy
threshold, not yet lost; :func:`crmlab.analyses.lifecycle.lifecycle_stages`) whose RFM spend score
is 4 or 5 (``M >= 4``: the top 40% of buyers by paid sales; :func:`crmlab.analyses.rfm.rfm_scores`).
Membership uses the stages and the spend score only, so notebook 02 (no CLV model) and
notebook 04 (with it) list the same customers.

**What the CLV model adds** (``values``, notebook 04): each customer's P(alive) and CLV as
columns, "likely still a customer" in the reason when P(alive) is above ``p_alive_cutoff``,
and the order: by expected CLV, highest first. Without it the list is ordered by paid sales.

``reason`` says in plain words why each row is there, e.g. ``top 20% by spend (M=5)`` or
``top 40% by spend (M=4); likely still a customer (P(alive) 72%), CLV ¥310``.

``past_value`` says what the customer was before going quiet, from the frequency and spend
scores only (:func:`crmlab.analyses.lifecycle.past_value`: the stages table's words too):
``formerly a top customer`` (F and M 4 or 5), ``formerly a regular customer`` (F 3+),
``few orders, high spend``. Not the RFM segment: RFM scores are relative to the other
buyers, so on a store of mostly silent customers a dormant customer can score R 5 and be
"champions"; a list of dormant customers never carries an active-sounding label.

The frame keeps real customer ids (the CSV lists for operations); reports show it through
:func:`crmlab.report.notebook.table`, which masks them.

:func:`wakeup_table` is the list without CLV values as an engine expression (from
:func:`crmlab.analyses.lifecycle.stage_table`): write it with
:func:`crmlab.engine.aggregates.write_rows` on a store too big for a pandas frame per customer.
"""
from __future__ import annotations

import ibis
import numpy as np
import pandas as pd

from crmlab.analyses.lifecycle import PAST_VALUE, past_value, past_value_expr, stage_table
from crmlab.analyses.rfm import _quantile_score
from crmlab.present import formatting as fmt
from crmlab.settings import Settings

__all__ = ["wakeup_list", "wakeup_table", "past_value", "MIN_SPEND_SCORE", "P_ALIVE_CUTOFF", "RULE", "PAST_VALUE"]

#: the lowest RFM spend score (M, 1–5) on the list
MIN_SPEND_SCORE = 4
#: P(alive) above this reads "likely still a customer"
P_ALIVE_CUTOFF = 0.5
#: the rule in one sentence (the glossary's entry, :data:`crmlab.present.formatting.GLOSSARY`)
RULE = fmt.GLOSSARY["wake-up"][2]

_SPEND = {5: "top 20% by spend (M=5)", 4: "top 40% by spend (M=4)"}
_CLV_COLS = ("p_alive", "clv", "clv_low", "clv_high", "p_no_purchase", "value_median", "value_p90", "frequency",
             "monetary_value", "rhythm_ratio")


def _spend_scores(stages: pd.DataFrame, bins: int = 5) -> pd.Series:
    """The RFM spend score M of every buyer from the stages' paid sales: the same quantile
    score as :func:`crmlab.analyses.rfm.rfm_scores` (both from the engine's customer frame)."""
    buyers = stages.loc[stages["paid_orders"] > 0, "sales"].astype(float)
    if buyers.empty:
        return pd.Series(dtype="int64", name="M")
    return _quantile_score(buyers, bins, True).rename("M")


def _spend_reason(m) -> str:
    m = int(m)
    return _SPEND.get(m, f"spend score M={m}")


def wakeup_list(stages: pd.DataFrame, scores: pd.DataFrame | None = None, values: pd.DataFrame | None = None,
                min_spend_score: int = MIN_SPEND_SCORE, p_alive_cutoff: float = P_ALIVE_CUTOFF,
                settings: Settings | None = None, dropout_evidence: bool = True) -> pd.DataFrame:
    """The wake-up list: dormant customers with a spend score of ``min_spend_score`` or more.

    Parameters
    ----------
    stages : DataFrame
        :func:`~crmlab.analyses.lifecycle.lifecycle_stages` (indexed by customer id).
    scores : DataFrame, optional
        :func:`~crmlab.analyses.rfm.rfm_scores` of the same orders and date (``R``, ``F``, ``M``);
        without it ``M`` is computed from ``stages["sales"]`` the same way
        (quintiles of paid sales among buyers) and ``R``/``F`` are not shown.
    values : DataFrame, optional
        Per-customer CLV (:attr:`ClvResult.values <crmlab.clv.pipeline.ClvResult>`:
        ``p_alive``, ``clv``, ``clv_low``, ``clv_high``, ...). Adds those columns, the
        "likely still a customer" reason and the order by CLV; it never changes who is listed.
    min_spend_score : int
        The lowest M on the list (default 4: the top two fifths).
    p_alive_cutoff : float
        P(alive) above this is "likely still a customer".
    settings : Settings, optional
        The context whose currency the reason's CLV is written in (default: the session's;
        pass the CLV result's ``settings``).
    dropout_evidence : bool
        False when the CLV model finds no dropout (``ClvResult.clv["dropout_evidence"]``): the
        data cannot tell who is gone, so nobody is "likely still a customer" (``likely_alive``
        is None) and the list is ordered by silence against each customer's own rhythm
        (``rhythm_ratio``: time since the last purchase in mean gaps, least overdue first;
        one-time buyers last).

    Returns
    -------
    DataFrame indexed by customer_id (real ids): ``paid_orders``, ``sales``,
    ``days_since_last``, ``R``, ``F``, ``M``, ``past_value`` (with ``scores``), the CLV columns
    (with ``values``) and ``reason``; ordered by ``clv`` (with ``values``), else by ``sales``,
    highest first. ``attrs``: ``rule``, ``likely_alive`` (rows above the cutoff, or None).

    Examples
    --------
    >>> import pandas as pd
    >>> stages = pd.DataFrame({"stage": ["dormant", "dormant", "new"], "paid_orders": [3, 1, 1],
    ...                        "sales": [900.0, 20.0, 500.0], "days_since_last": [120, 200, 10]},
    ...                       index=pd.Index(["a", "b", "c"], name="customer_id"))
    >>> wakeup_list(stages, min_spend_score=3)["reason"].to_dict()
    {'a': 'top 20% by spend (M=5)'}
    """
    st = stages.copy()
    st.index = st.index.astype(str)
    sc = _score_frame(st, scores)
    dormant = st.index[(st["stage"] == "dormant").to_numpy()]
    on = dormant[(sc["M"].reindex(dormant) >= min_spend_score).to_numpy()]
    cols = [c for c in ("paid_orders", "sales", "days_since_last") if c in st.columns]
    out = st.loc[on, cols].join(sc.loc[on])
    out["M"] = out["M"].astype("int64")
    reason, likely = out["M"].map(_spend_reason), None
    if values is not None:
        out, reason, likely = _with_values(out, reason, values, p_alive_cutoff, fmt.Formatter(settings),
                                           dropout_evidence)
    else:
        out = out.sort_values("sales", ascending=False, kind="mergesort")
    out["reason"] = reason.reindex(out.index)
    out.index.name = "customer_id"
    out.attrs.update(rule=RULE, min_spend_score=min_spend_score, p_alive_cutoff=p_alive_cutoff,
                     likely_alive=likely)
    return out


def _score_frame(st: pd.DataFrame, scores: pd.DataFrame | None) -> pd.DataFrame:
    """``R``, ``F``, ``M``, ``past_value`` from ``scores`` (ids as text), else ``M`` from the stages' sales."""
    if scores is None:
        return _spend_scores(st).to_frame()
    sc = scores.copy()
    sc.index = sc.index.astype(str)
    keep = [c for c in ("R", "F", "M") if c in sc.columns]
    out = sc[keep].copy()
    if {"F", "M"} <= set(keep):
        orders = sc["frequency"] if "frequency" in sc.columns else (
            st["paid_orders"].set_axis(st.index.astype(str)).reindex(sc.index).fillna(0)
            if "paid_orders" in st.columns else None)
        out["past_value"] = past_value(sc["F"], sc["M"], orders)
    return out


def _by_rhythm(out: pd.DataFrame, reason: pd.Series) -> tuple[pd.DataFrame, pd.Series, None]:
    """No dropout evidence: no P(alive) reading; ordered by silence in own purchase gaps (least first)."""
    rr = out["rhythm_ratio"] if "rhythm_ratio" in out else pd.Series(np.nan, index=out.index)
    extra = ["" if fmt.is_missing(x) else f"; silent for {x:.1f} of their own purchase gaps" for x in rr]
    reason = reason + pd.Series(extra, index=out.index)
    out = out.assign(_rr=rr.fillna(np.inf)).sort_values(["_rr", "sales"], ascending=[True, False],
                                                        kind="mergesort").drop(columns=["_rr"])
    return out, reason.reindex(out.index), None


def _with_values(out: pd.DataFrame, reason: pd.Series, values: pd.DataFrame, p_alive_cutoff: float,
                 f: fmt.Formatter, dropout_evidence: bool = True) -> tuple[pd.DataFrame, pd.Series, int | None]:
    """The list with the CLV columns, the "likely still a customer" reason and the order by
    CLV; the number of rows above the P(alive) cutoff (None without dropout evidence)."""
    v = values.copy()
    v.index = v.index.astype(str)
    vc = [c for c in _CLV_COLS if c in v.columns]
    out = out.join(v[vc], how="left")
    if not dropout_evidence:
        return _by_rhythm(out, reason)
    pa = out["p_alive"] if "p_alive" in out else pd.Series(np.nan, index=out.index)
    clv = out["clv"] if "clv" in out else pd.Series(np.nan, index=out.index)
    alive = (pa > p_alive_cutoff).to_numpy()
    extra = [f"; likely still a customer (P(alive) {fmt.pct(p, 0)})" + (
        f", CLV {f.money(c)}" if not fmt.is_missing(c) else "") if a else ""
             for a, p, c in zip(alive, pa, clv)]
    reason = reason + pd.Series(extra, index=out.index)
    out = out.assign(_clv=clv.fillna(-np.inf), _pa=pa.fillna(-np.inf)).sort_values(
        ["_clv", "_pa", "sales"], ascending=False, kind="mergesort").drop(columns=["_clv", "_pa"])
    return out, reason.reindex(out.index), int(alive.sum())


def wakeup_table(orders, as_of=None, rule: str = "ladder", min_spend_score: int = MIN_SPEND_SCORE, engine=None,
                 **stage_kw):
    """:func:`wakeup_list` without CLV values, as an engine expression (an Ibis table).

    The same rows, columns (``customer_id``, ``paid_orders``, ``sales``,
    ``days_since_last``, ``R``, ``F``, ``M``, ``past_value``, ``reason``) and order (paid sales,
    highest first; ties by customer id) as ``wakeup_list(lifecycle_stages(...),
    rfm_scores(...))``, evaluated in the engine; ``stage_kw`` go to
    :func:`crmlab.analyses.lifecycle.stage_table` (``ladder``, ``lost_days``, the rule's own)."""
    st = stage_table(orders, as_of, rule, engine=engine, **stage_kw)
    w = st.filter((st.stage == "dormant") & (st.M >= min_spend_score))
    reason = ibis.cases(*[(w.M == k, v) for k, v in _SPEND.items()],
                        else_=ibis.literal("spend score M=") + w.M.cast("string"))
    past = past_value_expr(w.F, w.M, w.paid_orders)
    w = w.select("customer_id", "paid_orders", "sales", "days_since_last", "R", "F", "M", past_value=past,
                 reason=reason)
    return w.order_by([ibis.desc("sales"), "customer_id"])
