"""Customer lifecycle stages (客户生命周期) and the moves between them.

Each customer gets one stage as of a date:

* ``potential`` 潜客: no paid order (only unpaid, refunded or cancelled ones);
* ``lost`` 流失: no paid order for more than ``lost_days`` (default: the ladder's last
  step, 360 days);
* ``dormant`` 休眠: no paid order for longer than the customer's dormancy threshold;
* otherwise active: ``new`` 新客 (one paid order), ``returning`` 老客 (two or more), and
  ``fan`` 粉丝: an active returning customer in the top RFM cell: frequency and monetary
  scores both 5 (the store's top fifth by orders and by spend) and recency score >= 4
  (see :mod:`crmlab.rfm`).

The dormancy threshold (休眠期) comes from one of four rules:

* ``ladder`` (default): the 90/180/270/360-day ladder since the last paid order: active
  <= 90, silent 沉默 <= 180, sleeping 睡眠 <= 360 (the 270 step is shown as
  ``ladder_step``), lost > 360. Dormant means past the first step.
* ``product_cycle``: consumption days per unit of the last order's product (or its
  category) x quantity bought, plus ``slack`` (a fraction; 0.5 gives the seeds' dog-food
  example: a week's food, dormant after 1.5 weeks);
* ``season``: a season length per category (clothing by season, a year for seasonal goods);
* ``percentile``: the p-th percentile (default 0.9) of the time between a customer's
  paid orders, estimated so that it is not too short (:func:`gap_percentile`): the open
  gap after each buyer's last order is censored at the observation end (Kaplan–Meier), and
  every buyer weighs the same, not every gap (frequent buyers would otherwise set the
  threshold). The naive percentile of the observed gaps misses both and comes out short.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd

import ibis

from crmlab.engine import order_table
from crmlab.engine.aggregates import customer_frame, day_number, order_sequence
from crmlab.magic import km_factors, km_survival
from crmlab.rfm import rfm_scores

__all__ = ["lifecycle_stages", "stage_transitions", "dormancy_threshold", "gap_percentile", "gap_distribution",
           "stage_counts", "STAGES", "STAGE_CN", "LADDER", "RULES"]

STAGES = ("potential", "new", "returning", "fan", "dormant", "lost")
STAGE_CN = {"potential": "潜客", "new": "新客", "returning": "老客", "fan": "粉丝", "dormant": "休眠",
            "lost": "流失", "not yet a customer": "尚未购买"}
LADDER = (90, 180, 270, 360)
RULES = ("ladder", "product_cycle", "season", "percentile")
NEW_CUSTOMER = "not yet a customer"


def _last_orders(o) -> pd.DataFrame:
    """Each buyer's last paid order (with its product, category and quantity where present)."""
    s = order_sequence(o)
    cols = ["customer_id", "order_time"] + [c for c in ("product", "category", "quantity") if o.has(c)]
    last = o.engine.to_pandas(s.filter(s.k == s.n_orders).select(*cols))
    return last.sort_values("customer_id").set_index("customer_id")


def gap_distribution(orders, horizon_days: float = 360, engine=None) -> pd.DataFrame:
    """Kaplan–Meier distribution of the time from a paid order to the customer's next one.

    Computed in the engine from :func:`~crmlab.engine.aggregates.order_sequence`, in
    whole calendar days (the unit of ``days_since_last``): each gap between consecutive
    paid orders is an event at its length; each buyer's open gap (last paid order to the
    observation end) is censored at its length. **Customer weighting**: each of a buyer's
    n intervals (n − 1 gaps and the open one) has weight 1/n, so every buyer counts once
    and the result is the gap distribution of a typical buyer, not of a typical gap
    (which frequent buyers dominate). A same-day repeat counts at day 1.

    Returns ``day`` (0..``horizon_days``) and ``p_next``: the estimated share of a buyer's
    gaps that end in a next order within ``day`` days (1 − KM survival).
    """
    o = order_table(orders, engine)
    s = order_sequence(o)
    event = s.next_time.notnull()
    last = ibis.ifelse(event, s.next_time.date(), day_number(o.observation_end))
    dur = last.delta(s.order_time.date(), unit="day").cast("float64")
    subj = s.select(group=ibis.literal(1, type="int64"), dur=dur, event=event.cast("int64"),
                    w=1.0 / s.n_orders.cast("float64"))
    f = o.engine.to_pandas(km_factors(subj, horizon_days))
    return km_survival(f, [1], horizon_days)[["day", "p_next"]]


def gap_percentile(orders, percentile: float = 0.9, horizon_days: float = 360, engine=None) -> float:
    """The ``percentile`` of the gap between a buyer's paid orders, censoring-aware.

    From :func:`gap_distribution` (Kaplan–Meier, open gaps censored, every buyer weighted
    the same): the smallest whole day t with F(t) >= ``percentile`` · F(``horizon_days``),
    i.e. of the buyers' returns that come within ``horizon_days`` (default 360, when the
    ladder calls a customer lost), the share ``percentile`` comes within t days. F itself
    never reaches 0.9 when many buyers never return, hence the condition on returning
    within the horizon. Where the store has been observed for less than ``horizon_days``
    F is carried on from its last value.

    Raises ValueError when there is no repeat purchase within the horizon.
    """
    if not 0 < percentile < 1:
        raise ValueError("percentile must be strictly between 0 and 1")
    dist = gap_distribution(orders, horizon_days, engine)
    F = dist["p_next"].to_numpy()
    if F[-1] <= 0:
        raise ValueError("rule='percentile' needs at least one repeat purchase")
    return float(dist["day"].to_numpy()[np.argmax(F >= percentile * F[-1] * (1 - 1e-12))])


def dormancy_threshold(orders, as_of=None, rule: str = "ladder", ladder: Sequence[int] = LADDER,
                       cycles: Mapping[str, float] | None = None, slack: float = 0.5,
                       seasons: Mapping[str, float] | None = None, percentile: float = 0.9,
                       horizon_days: float | None = None, engine=None) -> pd.Series:
    """Days without a paid order after which each buyer counts as dormant.

    ``rule="percentile"`` uses :func:`gap_percentile` with ``percentile`` and
    ``horizon_days`` (default ``ladder[3]``, the lost threshold).

    Raises
    ------
    ValueError
        An unknown rule, or products/categories missing from ``cycles`` / ``seasons``
        (named in the message).
    """
    o = order_table(orders, engine, as_of)
    last = _last_orders(o)
    if rule == "ladder":
        return pd.Series(float(ladder[0]), index=last.index, name="dormancy_threshold")
    if rule == "product_cycle":
        if not cycles:
            raise ValueError("rule='product_cycle' needs cycles={product or category: days per unit}")
        per_unit = pd.Series(np.nan, index=last.index)
        for col in ("category", "product"):  # product overrides category
            if col in last.columns:
                v = last[col].astype(str).map(cycles)
                per_unit = v.where(v.notna(), per_unit)
        missing = per_unit.isna()
        if missing.any():
            what = sorted(set(last.loc[missing, "product"].astype(str))) if "product" in last else []
            raise ValueError(f"cycles has no consumption days for {missing.sum()} customers' last products: "
                             f"{what[:10]}")
        qty = last["quantity"].fillna(1).clip(lower=1) if "quantity" in last else 1.0
        return (per_unit * qty * (1 + slack)).rename("dormancy_threshold")
    if rule == "season":
        if not seasons or "category" not in last:
            raise ValueError("rule='season' needs seasons={category: days} and a 'category' column")
        v = last["category"].astype(str).map(seasons)
        if v.isna().any():
            raise ValueError(f"seasons has no length for categories {sorted(set(last.loc[v.isna(), 'category'].astype(str)))}")
        return v.astype(float).rename("dormancy_threshold")
    if rule == "percentile":
        h = float(ladder[3] if horizon_days is None else horizon_days)
        return pd.Series(gap_percentile(o, percentile, h), index=last.index, name="dormancy_threshold")
    raise ValueError(f"rule must be one of {RULES}, not {rule!r}")


def lifecycle_stages(orders, as_of=None, rule: str = "ladder", ladder: Sequence[int] = LADDER,
                     lost_days: float | None = None, engine=None, **rule_kw) -> pd.DataFrame:
    """One lifecycle stage per customer as of ``as_of`` (default: the observation end).

    Parameters
    ----------
    rule : {"ladder", "product_cycle", "season", "percentile"}
        How the dormancy threshold is set (module docstring); extra keyword arguments
        (``cycles``, ``slack``, ``seasons``, ``percentile``, ``horizon_days``: default
        ``lost_days``) go to :func:`dormancy_threshold`.
    ladder : 4 ints
        The ladder's steps in days (active, silent, sleeping, lost).
    lost_days : float, optional
        Silent for longer than this is lost (default ``ladder[3]``).

    Returns
    -------
    DataFrame indexed by customer_id: ``stage``, ``stage_cn``, ``ladder_step``,
    ``paid_orders``, ``sales``, ``last_time``, ``days_since_last``, ``dormancy_threshold``,
    ``segment`` (RFM).
    """
    o = order_table(orders, engine, as_of)
    end = o.observation_end
    c = customer_frame(o)
    lost_days = float(ladder[3] if lost_days is None else lost_days)
    if rule == "percentile":
        rule_kw.setdefault("horizon_days", lost_days)  # of the returns before a customer counts as lost
    buyers = c["paid_orders"] > 0
    thr = pd.Series(np.nan, index=c.index)
    if buyers.any():
        thr.loc[buyers] = dormancy_threshold(o, None, rule, ladder=ladder, **rule_kw).reindex(c.index[buyers])
    days = c["recency_days"]
    seg = pd.Series("", index=c.index)
    top = pd.Series(False, index=c.index)
    if buyers.any():
        s = rfm_scores(o)
        seg.loc[s.index] = s["segment"]
        top.loc[s.index] = (s["F"] == 5) & (s["M"] == 5) & (s["R"] >= 4)
    stage = np.select(
        [~buyers, days > lost_days, days > thr, c["paid_orders"] == 1, top],
        ["potential", "lost", "dormant", "new", "fan"], default="returning")
    step = np.select([~buyers, days <= ladder[0], days <= ladder[1], days <= ladder[2], days <= ladder[3]],
                     ["", "active 活跃", "silent 沉默", "sleeping 睡眠", "sleeping 睡眠 (>270)"], default="lost 流失")
    out = pd.DataFrame({"stage": stage, "ladder_step": step, "paid_orders": c["paid_orders"], "sales": c["sales"],
                        "last_time": c["last_time"], "days_since_last": days, "dormancy_threshold": thr,
                        "segment": seg}, index=c.index)
    out.insert(1, "stage_cn", out["stage"].map(STAGE_CN))
    out.index.name = "customer_id"
    out.attrs.update(as_of=end, rule=rule)
    return out


def stage_counts(stages: pd.DataFrame) -> pd.DataFrame:
    """Customers and share per stage, in lifecycle order."""
    n = stages["stage"].value_counts().reindex(list(STAGES), fill_value=0)
    return pd.DataFrame({"名称": [STAGE_CN[s] for s in n.index], "customers": n, "share": n / n.sum()})


def stage_transitions(orders: pd.DataFrame, from_date, to_date, **kw) -> pd.DataFrame:
    """How many customers moved from each stage at ``from_date`` to each stage at ``to_date``.

    Rows: stage at ``from_date`` (plus ``"not yet a customer"`` for customers whose first
    order came later); columns: stage at ``to_date``. Keyword arguments go to
    :func:`lifecycle_stages`.
    """
    o = order_table(orders, kw.pop("engine", None))
    a = lifecycle_stages(o, from_date, **kw)["stage"]
    b = lifecycle_stages(o, to_date, **kw)["stage"]
    a = a.reindex(b.index).fillna(NEW_CUSTOMER)
    m = pd.crosstab(a.rename("from"), b.rename("to"))
    rows = [s for s in (NEW_CUSTOMER, *STAGES) if s in m.index]
    cols = [s for s in STAGES if s in m.columns]
    return m.reindex(index=rows, columns=cols, fill_value=0)
