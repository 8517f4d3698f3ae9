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
new            发展客户   R >= 4 and F <= 2
at_risk        重要挽留   R <= 2 and F >= 3
hibernating    一般挽留   R <= 2 and F <= 2
need_attention 需关注    everything else
============== ======= =====================================

**In the engine.** Scores are Ibis expressions (:func:`rfm_table`), evaluated where the
orders live; only the cut points come back (:func:`rfm_cut_points`, at most ``bins`` rows
per metric). The quantile score is computed in the engine *exactly* as pandas would: over
the buyers' distinct values v with ``c`` customers each and ``below`` customers ranked
before (lower values; higher for recency), the average rank is ``below + (c + 1) / 2`` and
the score ``ceil((rank - 0.5) / n * bins)`` clipped to 1..bins, computed as
``ceil((2 * below + c) / (2 * n) * bins)`` in doubles (the same correctly rounded quotient,
with no float literal that Spark would read as a decimal). The score is monotone in the
value, so per score the lowest and highest value bound a class; each customer's score is
a CASE on its value against the midpoints between neighbouring classes (midpoints, not the
classes' edges, so that a paid-sales total summed again in another order, an ulp apart, keeps
its score). :func:`rfm_scores` is that table in pandas (per buyer; for notebooks and small
stores) and equals the former pandas ``rank(method="average")`` computation
(``tests/test_customer_outputs.py``). One caveat, older than this: paid sales are float sums,
and a multi-threaded engine may add a customer's orders in another order in another query,
so a total can differ in its last bit from one evaluation to the next (404.4 or
404.40000000000003); where that straddles a score boundary two runs (old or new) can give
that customer neighbouring M scores (1 of 1.18M buyers on a 5M-order store).
"""
from __future__ import annotations

from typing import Mapping, Sequence

import ibis
import numpy as np
import pandas as pd

from crmlab.engine.sources import order_table
from crmlab.engine.aggregates import customer_table, double

__all__ = ["rfm_scores", "rfm_table", "rfm_cut_points", "rfm_segments", "segment_summary", "SEGMENTS"]

#: Chinese names that never reuse a lifecycle stage's word (新客, 休眠, 流失: crmlab.present.glossary):
#: an RFM segment is a score band, not a stage, and one word must not have two counts on a page
SEGMENTS = {"champions": "核心客户", "loyal": "忠诚客户", "new": "发展客户", "at_risk": "重要挽留",
            "hibernating": "一般挽留", "need_attention": "需关注"}

#: (metric, score letter, higher is better, customer_table column)
METRICS = (("recency", "R", False, "recency_days"), ("frequency", "F", True, "paid_orders"),
           ("monetary", "M", True, "sales"))


def _quantile_score(x: pd.Series, bins: int, higher_is_better: bool) -> pd.Series:
    """The pandas form of the quantile score (kept as the reference the engine reproduces;
    :func:`crmlab.analyses.wakeup.wakeup_list` uses it on the stages' sales when given no scores)."""
    # mid-rank percentile: ties share the middle of their ranks; one customer scores the middle
    r = (x if higher_is_better else -x).rank(method="average")
    pct = (r - 0.5) / len(x)
    return np.ceil(pct * bins).clip(1, bins).astype(int)


def _check_cuts(cuts: Sequence[float]) -> list[float]:
    edges = [-np.inf, *sorted(cuts), np.inf]
    pd.cut(pd.Series([], dtype="float64"), edges)  # the same errors as before (edges must be unique)
    return sorted(cuts)


def _cut_expr(v: ibis.Value, cuts: Sequence[float], higher_is_better: bool) -> ibis.Value:
    """Right-closed user cut points: score 1 + the number of cut points below the value
    (``pd.cut(x, [-inf, *cuts, inf], right=True)``), reversed when lower is better."""
    s = ibis.literal(1, type="int64")
    for c in cuts:
        s = s + (v > double(c)).cast("int64")
    return s if higher_is_better else (len(cuts) + 2) - s


def _buyers(o) -> ibis.Table:
    c = customer_table(o)
    return c.filter(c.paid_orders > 0)


def _classes(o, bins: int, metrics) -> pd.DataFrame:
    """Per metric and quantile score: the lowest and highest value and the customers (one
    small query for all metrics; at most ``bins`` rows each)."""
    b = _buyers(o)
    parts = []
    for metric, _, higher, col in metrics:
        v = b[col].cast("float64")
        d = b.group_by(v.name("value")).aggregate(c=b.count())
        order = d.value.asc() if higher else d.value.desc()
        cum = d.c.sum().over(ibis.cumulative_window(order_by=order))
        d = d.mutate(twice_mid=((cum - d.c) * 2 + d.c).cast("float64"),
                     twice_n=(d.c.sum().over(ibis.window()) * 2).cast("float64"))
        # the pandas mid-rank percentile (rank - 0.5) / n, as the same exact quotient in doubles
        score = ((d.twice_mid / d.twice_n) * bins).ceil().clip(1, bins).cast("int64")
        d = d.mutate(score=score)
        parts.append(d.group_by("score").aggregate(low=d.value.min(), high=d.value.max(), customers=d.c.sum())
                     .mutate(metric=ibis.literal(metric, type="string")))
    if not parts:
        return pd.DataFrame(columns=["metric", "score", "low", "high", "customers"])
    u = parts[0]
    for p in parts[1:]:
        u = u.union(p)
    df = o.engine.to_pandas(u.select("metric", "score", "low", "high", "customers"))
    order = {m[0]: i for i, m in enumerate(METRICS)}
    df = df.sort_values(["metric", "score"], key=lambda s: s.map(order) if s.name == "metric" else s)
    return df.reset_index(drop=True).astype({"score": "int64", "customers": "int64", "low": "float64",
                                             "high": "float64"})


def _boundary(below: float, above: float) -> float:
    """A value strictly above ``below`` and at most ``above``: their midpoint, or ``above``
    when the two are neighbouring doubles."""
    mid = below + (above - below) / 2
    return mid if below < mid <= above else above


def _class_expr(v: ibis.Value, classes: pd.DataFrame) -> ibis.Value:
    """The score of value ``v`` from its metric's classes (lowest value first)."""
    if classes.empty:  # no buyer: a null score (a column, not a null literal, so it compares as one)
        return v.nullif(v).cast("int64")
    cl = classes.sort_values("low")
    lows, highs, scores = cl["low"].tolist(), cl["high"].tolist(), cl["score"].tolist()
    branches = [(v >= double(_boundary(highs[i - 1], lows[i])), ibis.literal(int(scores[i]), type="int64"))
                for i in range(len(cl) - 1, 0, -1)]
    first = ibis.literal(int(scores[0]), type="int64")
    return ibis.cases(*branches, else_=first) if branches else first


def _score_exprs(o, c: ibis.Table, bins: int = 5, cuts: Mapping[str, Sequence[float]] | None = None) -> dict:
    """``{"R": expr, "F": expr, "M": expr}`` on the customer table ``c`` (a
    :func:`~crmlab.engine.aggregates.customer_table` of ``o``, whole or filtered): scores
    among ``o``'s buyers; meaningful for buyers only."""
    cuts = dict(cuts or {})
    checked = {m: _check_cuts(cuts[m]) for m, *_ in METRICS if m in cuts}
    quantile = [m for m in METRICS if m[0] not in cuts]
    classes = _classes(o, bins, quantile) if quantile else None
    out = {}
    for metric, letter, higher, col in METRICS:
        v = c[col].cast("float64")
        out[letter] = (_cut_expr(v, checked[metric], higher) if metric in checked
                       else _class_expr(v, classes[classes["metric"] == metric]))
    return out


def segment_expr(R: ibis.Value, F: ibis.Value, M: ibis.Value) -> ibis.Value:
    """The named segment (see the module table) as an engine expression."""
    return ibis.cases(((R >= 4) & (F >= 4) & (M >= 4), "champions"), ((R >= 3) & (F >= 3), "loyal"),
                      ((R >= 4) & (F <= 2), "new"), ((R <= 2) & (F >= 3), "at_risk"),
                      ((R <= 2) & (F <= 2), "hibernating"), else_="need_attention")


def rfm_cut_points(orders, as_of=None, bins: int = 5, engine=None) -> pd.DataFrame:
    """The quantile scores' classes: per ``metric`` (recency, frequency, monetary) and
    ``score``, the ``low`` and ``high`` value scored so and the ``customers`` (buyers) with it.

    Small (at most ``bins`` rows per metric), computed in the engine; the per-buyer
    scores of :func:`rfm_table` follow from it."""
    o = order_table(orders, engine, as_of)
    df = _classes(o, bins, METRICS)
    df.attrs["as_of"] = o.observation_end
    return df


def rfm_table(orders, as_of=None, bins: int = 5, cuts: Mapping[str, Sequence[float]] | None = None,
              engine=None) -> ibis.Table:
    """:func:`rfm_scores` as an engine expression, one row per buyer, unordered:
    ``customer_id``, ``recency``, ``frequency``, ``monetary``, ``R``, ``F``, ``M``,
    ``score``, ``segment``.

    Running it costs one small query now (the cut points); the table itself runs where
    it is used: counted, joined, or written (:func:`crmlab.engine.aggregates.write_rows`).
    """
    o = order_table(orders, engine, as_of)
    b = _buyers(o)
    sc = _score_exprs(o, b, bins, cuts)
    t = b.select("customer_id", recency=b.recency_days, frequency=b.paid_orders, monetary=b.sales, **sc)
    return t.mutate(score=t.R.cast("string") + t.F.cast("string") + t.M.cast("string"),
                    segment=segment_expr(t.R, t.F, t.M))


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

    Per buyer, in pandas: :func:`rfm_table` brought back (for notebooks and small stores;
    on a big store count, join or write :func:`rfm_table` in the engine instead).
    """
    o = order_table(orders, engine, as_of)
    df = o.engine.to_pandas(rfm_table(o, None, bins, cuts))
    out = df.sort_values("customer_id").set_index("customer_id")
    out["frequency"] = out["frequency"].astype(int)
    for letter in ("R", "F", "M"):
        out[letter] = out[letter].astype(int)
    out["recency"] = out["recency"].astype(float)
    out["monetary"] = out["monetary"].astype(float)
    if getattr(o, "credits", None) is not None:  # unmatched credit notes: a customer-level credit, not spend
        cr = o.engine.to_pandas(o.credits).set_index("customer_id")["credit_amount"]
        out.insert(out.columns.get_loc("monetary") + 1, "credit", cr.reindex(out.index).fillna(0.0).astype(float))
    out.attrs["as_of"] = o.observation_end
    return out


def rfm_segments(scores: pd.DataFrame) -> pd.Series:
    """Named segment per customer from the R, F, M scores (see the module table)."""
    R, F, M = scores["R"], scores["F"], scores["M"]
    conds = [(R >= 4) & (F >= 4) & (M >= 4), (R >= 3) & (F >= 3), (R >= 4) & (F <= 2), (R <= 2) & (F >= 3),
             (R <= 2) & (F <= 2)]
    names = ["champions", "loyal", "new", "at_risk", "hibernating"]
    return pd.Series(np.select(conds, names, default="need_attention"), index=scores.index, name="segment")


def segment_summary(scores) -> pd.DataFrame:
    """Customers, share of customers, sales and share of sales per segment.

    ``scores``: :func:`rfm_scores` (a DataFrame), or :func:`rfm_table` (an engine
    expression: the per-segment sums run in the engine)."""
    if isinstance(scores, ibis.Table):
        g = scores.group_by("segment").aggregate(customers=scores.count(), sales=scores.monetary.sum(),
                                                 mean_recency_days=scores.recency.mean(),
                                                 mean_orders=scores.frequency.cast("float64").mean())
        out = g.to_pandas().set_index("segment")
        out["customers"] = out["customers"].astype("int64")
    else:
        g = scores.groupby("segment")
        out = pd.DataFrame({"customers": g.size(), "sales": g["monetary"].sum(),
                            "mean_recency_days": g["recency"].mean(), "mean_orders": g["frequency"].mean()})
    out["customer_share"] = out["customers"] / out["customers"].sum()
    out["sales_share"] = out["sales"] / out["sales"].sum()
    out.insert(0, "名称", [SEGMENTS.get(s, s) for s in out.index])
    return out.reindex([s for s in SEGMENTS if s in out.index])
