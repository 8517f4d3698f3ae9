"""RFM (Recency, Frequency, Monetary) per customer, 1-5 scores and named segments.

Scores by quantiles use mid-rank percentiles ((rank - 0.5) / n; ties share a score), so a small store or a
frequency column where most customers have one order never crashes on repeated quantile
edges; or pass your own cut points. 5 is best (most recent, most orders, most spent).

Segments (first match wins; R, F, M are the scores):

============== ======= =====================================
segment        中文     rule
============== ======= =====================================
champions      核心客户   R >= 4 and F >= 4 and M >= 4
loyal          忠诚客户   R >= 3 and F >= 3
new            新客      R >= 4 and F <= 2
at_risk        流失风险   R <= 2 and F >= 3
hibernating    休眠客户   R <= 2 and F <= 2
need_attention 需关注    everything else
============== ======= =====================================
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from crmlab.engine import order_table
from crmlab.engine.aggregates import customer_frame

__all__ = ["rfm_scores", "rfm_segments", "segment_summary", "SEGMENTS"]

SEGMENTS = {"champions": "核心客户", "loyal": "忠诚客户", "new": "新客", "at_risk": "流失风险",
            "hibernating": "休眠客户", "need_attention": "需关注"}


def _quantile_score(x: pd.Series, bins: int, higher_is_better: bool) -> pd.Series:
    # mid-rank percentile: ties share the middle of their ranks; one customer scores the middle
    r = (x if higher_is_better else -x).rank(method="average")
    pct = (r - 0.5) / len(x)
    return np.ceil(pct * bins).clip(1, bins).astype(int)


def _cut_score(x: pd.Series, cuts: Sequence[float], higher_is_better: bool) -> pd.Series:
    edges = [-np.inf, *sorted(cuts), np.inf]
    s = pd.cut(x, edges, labels=False, right=True).astype(int) + 1
    return s if higher_is_better else (len(edges) - s)


def rfm_scores(orders, as_of=None, bins: int = 5, cuts: Mapping[str, Sequence[float]] | None = None,
               engine=None) -> pd.DataFrame:
    """Recency (days), frequency (paid orders), monetary (paid sales) and their scores.

    Parameters
    ----------
    orders : DataFrame
    as_of : optional
        Date of the snapshot (default: the observation end); later orders are ignored.
    bins : int
        Number of quantile scores (5 -> 1..5).
    cuts : dict, optional
        ``{"recency": [30, 90, 180, 365], "frequency": [1, 2, 4, 8], "monetary": [...]}``:
        user cut points (right-closed) instead of quantiles for the metrics given.

    Returns
    -------
    DataFrame indexed by customer_id (buyers only): ``recency``, ``frequency``,
    ``monetary``, ``R``, ``F``, ``M``, ``score`` ("455"), ``segment``.
    """
    c = customer_frame(order_table(orders, engine, as_of))
    c = c[c["paid_orders"] > 0]
    out = pd.DataFrame({"recency": c["recency_days"], "frequency": c["paid_orders"], "monetary": c["sales"]})
    cuts = dict(cuts or {})
    for col, letter, better in (("recency", "R", False), ("frequency", "F", True), ("monetary", "M", True)):
        out[letter] = (_cut_score(out[col], cuts[col], better) if col in cuts
                       else _quantile_score(out[col], bins, better))
    out["score"] = out["R"].astype(str) + out["F"].astype(str) + out["M"].astype(str)
    out["segment"] = rfm_segments(out)
    out.attrs["as_of"] = c.attrs["observation_end"]
    return out


def rfm_segments(scores: pd.DataFrame) -> pd.Series:
    """Named segment per customer from the R, F, M scores (see the module table)."""
    R, F, M = scores["R"], scores["F"], scores["M"]
    conds = [(R >= 4) & (F >= 4) & (M >= 4), (R >= 3) & (F >= 3), (R >= 4) & (F <= 2), (R <= 2) & (F >= 3),
             (R <= 2) & (F <= 2)]
    names = ["champions", "loyal", "new", "at_risk", "hibernating"]
    return pd.Series(np.select(conds, names, default="need_attention"), index=scores.index, name="segment")


def segment_summary(scores: pd.DataFrame) -> pd.DataFrame:
    """Customers, share of customers, sales and share of sales per segment."""
    g = scores.groupby("segment")
    out = pd.DataFrame({"customers": g.size(), "sales": g["monetary"].sum(),
                        "mean_recency_days": g["recency"].mean(), "mean_orders": g["frequency"].mean()})
    out["customer_share"] = out["customers"] / out["customers"].sum()
    out["sales_share"] = out["sales"] / out["sales"].sum()
    out.insert(0, "名称", [SEGMENTS.get(s, s) for s in out.index])
    return out.reindex([s for s in SEGMENTS if s in out.index])
