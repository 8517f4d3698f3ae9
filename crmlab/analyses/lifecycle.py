"""Customer lifecycle stages (客户生命周期) and the moves between them.

Each customer gets one stage as of a date:

* ``potential`` 潜客: no paid order (only unpaid, refunded or cancelled ones);
* ``lost`` 流失: no paid order for more than ``lost_days`` (default: the ladder's last
  step, 360 days);
* ``dormant`` 休眠: no paid order for longer than the customer's dormancy threshold;
* otherwise active: ``new`` 新客 (one paid order), ``returning`` 老客 (two or more), and
  ``fan`` 粉丝: an active returning customer in the top RFM cell: frequency and monetary
  scores both 5 (the store's top fifth by orders and by spend) and recency score >= 4
  (see :mod:`crmlab.analyses.rfm`).

Each buyer also gets a ``segment``: the RFM segment (``champions``, ``loyal`` ...) while
active; a **dormant or lost** customer gets what they were before going quiet instead
(:data:`PAST_VALUE`, from the frequency and spend scores only: ``formerly a top customer``,
``formerly a regular customer``, ``few orders, high spend``, ``few orders``). RFM scores are
relative to the other buyers, so on a store of mostly silent customers a dormant customer
can score R 5 and be "champions"; a dormant or lost customer never carries an
active-sounding label (the wake-up list, :mod:`crmlab.analyses.wakeup`, uses the same words).

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
  the interval after a buyer's k-th order weighs 1/k (frequent buyers would otherwise set
  the threshold; the weight looks at nothing after the order). The naive percentile of the
  observed gaps misses both and comes out short.

**In the engine.** The stage is an Ibis CASE over the customer table
(:func:`stage_table`): the thresholds are small results computed first (the ladder's
steps, the percentile from a Kaplan–Meier aggregate, the RFM cut points of
:func:`crmlab.analyses.rfm.rfm_cut_points`; per-product cycles and seasons as CASE expressions on
each buyer's last order), so counts (:func:`lifecycle_counts`), moves
(:func:`stage_transitions`) and lists (:func:`crmlab.engine.aggregates.write_rows`) never
bring the customers into pandas. :func:`lifecycle_stages` is the same table in pandas,
per customer, for notebooks and small stores.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd

import ibis

from crmlab.engine.sources import order_table
from crmlab.engine.aggregates import customer_table, day_number, double, order_sequence
from crmlab.stats.survival import km_factors, km_survival
from crmlab.analyses.rfm import _score_exprs, segment_expr

__all__ = ["lifecycle_stages", "stage_table", "lifecycle_counts", "stage_transitions", "dormancy_threshold",
           "gap_percentile", "gap_distribution", "stage_counts", "past_value", "past_value_expr", "STAGES",
           "STAGE_CN", "LADDER", "RULES", "PAST_VALUE", "QUIET_STAGES"]

STAGES = ("potential", "new", "returning", "fan", "dormant", "lost")
STAGE_CN = {"potential": "潜客", "new": "新客", "returning": "老客", "fan": "粉丝", "dormant": "休眠",
            "lost": "流失", "not yet a customer": "尚未购买"}
LADDER = (90, 180, 270, 360)
RULES = ("ladder", "product_cycle", "season", "percentile")
NEW_CUSTOMER = "not yet a customer"
#: the columns of :func:`lifecycle_stages` (after ``customer_id``)
COLUMNS = ("stage", "stage_cn", "ladder_step", "paid_orders", "sales", "last_time", "days_since_last",
           "dormancy_threshold", "segment")
#: the stages whose ``segment`` is their past value, never an RFM segment
QUIET_STAGES = ("dormant", "lost")
#: what a customer was before going quiet: (lowest F, lowest M, fewest paid orders, words), first
#: match wins; scores are relative (where most buyers bought once, one order can score F 3-4), so
#: "top" and "regular" also need two paid orders
PAST_VALUE = ((4, 4, 2, "formerly a top customer"), (3, 1, 2, "formerly a regular customer"),
              (1, 4, 1, "few orders, high spend"), (1, 1, 1, "few orders"))


def past_value(F: pd.Series, M: pd.Series, paid_orders: pd.Series | None = None) -> pd.Series:
    """What a customer was before going quiet, in words (:data:`PAST_VALUE`), from the RFM
    frequency and spend scores and, when given, the paid orders; recency plays no part."""
    F, M = F.astype("int64"), M.astype("int64")
    n = pd.Series(2, index=F.index) if paid_orders is None else paid_orders.astype("int64")
    conds = [(F >= f) & (M >= m) & (n >= k) for f, m, k, _ in PAST_VALUE]
    return pd.Series(np.select(conds, [w for *_, w in PAST_VALUE], default="few orders"), index=F.index,
                     name="past_value")


def past_value_expr(F: ibis.Value, M: ibis.Value, paid_orders: ibis.Value) -> ibis.Value:
    """:func:`past_value` as an engine expression."""
    return ibis.cases(*[((F >= f) & (M >= m) & (paid_orders >= k), w) for f, m, k, w in PAST_VALUE],
                      else_="few orders")


def _last_orders(o) -> ibis.Table:
    """Each buyer's last paid order (with its product, category and quantity where present)."""
    s = order_sequence(o)
    cols = ["customer_id"] + [c for c in ("product", "category", "quantity") if o.has(c)]
    return s.filter(s.k == s.n_orders).select(*cols)


def _text(col: ibis.Value) -> ibis.Value:
    """A column as pandas' ``astype(str)`` reads the engine's values (a null reads "None")."""
    return col.cast("string").fill_null("None")


def _mapped(col: ibis.Value, mapping: Mapping) -> ibis.Value:
    """``col.astype(str).map(mapping)`` as a CASE (float64; null where not mapped)."""
    pairs = [(k, v) for k, v in mapping.items() if isinstance(k, str) and v is not None and not pd.isna(v)]
    if not pairs:
        return ibis.null("float64")
    t = _text(col)
    return ibis.cases(*[(t == k, double(v)) for k, v in pairs], else_=ibis.null("float64"))


def _count(o, t: ibis.Table) -> int:
    return int(o.engine.to_pandas(t.count().name("n").as_table())["n"].iloc[0])


def _any_buyer(o) -> bool:
    c = customer_table(o)
    return _count(o, c.filter(c.paid_orders > 0).limit(1)) > 0


def _threshold(o, rule: str = "ladder", ladder: Sequence[int] = LADDER, cycles: Mapping[str, float] | None = None,
               slack: float = 0.5, seasons: Mapping[str, float] | None = None, percentile: float = 0.9,
               horizon_days: float | None = None):
    """The dormancy threshold: a float for every buyer (ladder, percentile), or a table
    ``customer_id, dormancy_threshold`` of buyers (product_cycle, season). Errors at once."""
    if rule == "ladder":
        return float(ladder[0])
    if rule == "percentile":
        h = float(ladder[3] if horizon_days is None else horizon_days)
        return float(gap_percentile(o, percentile, h))
    if rule == "product_cycle":
        if not cycles:
            raise ValueError("rule='product_cycle' needs cycles={product or category: days per unit}")
        last = _last_orders(o)
        per_unit = ibis.null("float64")
        for col in ("category", "product"):  # product overrides category
            if o.has(col):
                per_unit = ibis.coalesce(_mapped(last[col], cycles), per_unit)
        last = last.mutate(per_unit=per_unit)
        miss = last.filter(last.per_unit.isnull())
        n = _count(o, miss)
        if n:
            what = []
            if o.has("product"):
                names = miss.select(name=_text(miss["product"])).distinct().order_by("name").limit(10)
                what = sorted(o.engine.to_pandas(names)["name"].astype(str))
            raise ValueError(f"cycles has no consumption days for {n} customers' last products: {what[:10]}")
        thr = last.per_unit
        if o.has("quantity"):
            thr = thr * ibis.greatest(last.quantity.cast("float64").fill_null(double(1)), double(1))
        return last.select("customer_id", dormancy_threshold=thr * double(1 + slack))
    if rule == "season":
        if not seasons or not o.has("category"):
            raise ValueError("rule='season' needs seasons={category: days} and a 'category' column")
        last = _last_orders(o)
        last = last.mutate(dormancy_threshold=_mapped(last.category, seasons))
        miss = last.filter(last.dormancy_threshold.isnull())
        if _count(o, miss):
            names = o.engine.to_pandas(miss.select(name=_text(miss.category)).distinct())["name"]
            raise ValueError(f"seasons has no length for categories {sorted(set(names.astype(str)))}")
        return last.select("customer_id", "dormancy_threshold")
    raise ValueError(f"rule must be one of {RULES}, not {rule!r}")


def gap_distribution(orders, horizon_days: float = 360, engine=None, weights: str = "orders_so_far") -> pd.DataFrame:
    """Kaplan–Meier distribution of the time from a paid order to the customer's next one.

    Computed in the engine from :func:`~crmlab.engine.aggregates.order_sequence`, in
    whole calendar days (the unit of ``days_since_last``): each gap between consecutive
    paid orders is an event at its length; each buyer's open gap (last paid order to the
    observation end) is censored at its length (a recurrent-event Kaplan–Meier). **Weights
    that do not look ahead**: the interval after a buyer's k-th order weighs 1/k, known
    when the order is placed. Frequent buyers count more than once, but only
    logarithmically (a buyer with n orders weighs 1 + 1/2 + … + 1/n in all), so they do not
    set the threshold alone; and because the weight depends on nothing after the k-th
    order, buyers whose gaps are alike give the planted gap distribution (a renewal
    process: the k-th gap is independent of the past that sets its weight and its
    censoring; Peña, Strawderman & Hollander 2001). The former weight 1/n (n the buyer's
    final number of orders) looked ahead: short gaps mean more orders and less weight, and
    the percentile came out about 9% long. ``weights="none"``: every gap weighs 1 (the
    textbook recurrent-event estimator: a typical gap rather than a typical buyer). A
    same-day repeat counts at day 1.

    Returns ``day`` (0..``horizon_days``) and ``p_next``: the estimated share of a buyer's
    gaps that end in a next order within ``day`` days (1 − KM survival).
    """
    o = order_table(orders, engine)
    s = order_sequence(o)
    event = s.next_time.notnull()
    last = ibis.ifelse(event, s.next_time.date(), day_number(o.observation_end))
    dur = last.delta(s.order_time.date(), unit="day").cast("float64")
    if weights not in ("orders_so_far", "none"):
        raise ValueError("weights must be 'orders_so_far' or 'none'")
    cols = dict(group=ibis.literal(1, type="int64"), dur=dur, event=event.cast("int64"))
    if weights == "orders_so_far":
        cols["w"] = 1.0 / s.k.cast("float64")  # the k-th order's interval: known when it is placed
    subj = s.select(**cols)
    f = o.engine.to_pandas(km_factors(subj, horizon_days))
    return km_survival(f, [1], horizon_days)[["day", "p_next"]]


def gap_percentile(orders, percentile: float = 0.9, horizon_days: float = 360, engine=None) -> float:
    """The ``percentile`` of the gap between a buyer's paid orders, censoring-aware.

    From :func:`gap_distribution` (Kaplan–Meier, open gaps censored, the interval after a
    buyer's k-th order weighted 1/k): the smallest whole day t with F(t) >= ``percentile`` · F(``horizon_days``),
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

    Per buyer, in pandas (indexed by customer_id); :func:`stage_table` uses the same
    thresholds in the engine.

    Raises
    ------
    ValueError
        An unknown rule, or products/categories missing from ``cycles`` / ``seasons``
        (named in the message).
    """
    o = order_table(orders, engine, as_of)
    thr = _threshold(o, rule, ladder, cycles, slack, seasons, percentile, horizon_days)
    if isinstance(thr, float):
        c = customer_table(o)
        ids = o.engine.to_pandas(c.filter(c.paid_orders > 0).select("customer_id"))["customer_id"]
        return pd.Series(thr, index=pd.Index(sorted(ids), name="customer_id", dtype=object),
                         name="dormancy_threshold")
    df = o.engine.to_pandas(thr).sort_values("customer_id").set_index("customer_id")
    return df["dormancy_threshold"].astype(float)


def _stages(o, rule: str = "ladder", ladder: Sequence[int] = LADDER, lost_days: float | None = None,
            **rule_kw) -> ibis.Table:
    lost_days = float(ladder[3] if lost_days is None else lost_days)
    if rule == "percentile":
        rule_kw.setdefault("horizon_days", lost_days)  # of the returns before a customer counts as lost
    c = customer_table(o)
    try:
        thr = _threshold(o, rule, ladder=ladder, **rule_kw)
    except ValueError:
        if _any_buyer(o):
            raise
        thr = None  # no buyer: no threshold to set, every customer is a potential one
    if isinstance(thr, ibis.Table):
        j = c.left_join(thr, c.customer_id == thr.customer_id)
        c = j.select(*c.columns, "dormancy_threshold")
    buyer = c.paid_orders > 0
    if isinstance(thr, ibis.Table):
        threshold = c.dormancy_threshold
    elif thr is None:
        threshold = ibis.null("float64")
    else:
        threshold = ibis.ifelse(buyer, double(thr), ibis.null("float64"))
    c = c.mutate(dormancy_threshold=threshold)
    sc = _score_exprs(o, c)  # R, F, M among the buyers (5 quantile scores)
    days = c.recency_days
    fan = (sc["F"] == 5) & (sc["M"] == 5) & (sc["R"] >= 4)
    stage = ibis.cases((~buyer, "potential"), (days > double(lost_days), "lost"), (days > c.dormancy_threshold, "dormant"),
                       (c.paid_orders == 1, "new"), (fan, "fan"), else_="returning")
    step = ibis.cases((~buyer, ""), (days <= double(ladder[0]), "active 活跃"), (days <= double(ladder[1]), "silent 沉默"),
                      (days <= double(ladder[2]), "sleeping 睡眠"), (days <= double(ladder[3]), "sleeping 睡眠 (>270)"),
                      else_="lost 流失")
    t = c.select("customer_id", stage=stage, ladder_step=step, paid_orders=c.paid_orders, sales=c.sales,
                 last_time=c.last_time, days_since_last=days, dormancy_threshold=c.dormancy_threshold,
                 segment=ibis.cases((~buyer, ""), (stage.isin(QUIET_STAGES), past_value_expr(sc["F"], sc["M"], c.paid_orders)),
                                    else_=segment_expr(sc["R"], sc["F"], sc["M"])), **sc)
    cn = ibis.cases(*[(t.stage == k, v) for k, v in STAGE_CN.items() if k in STAGES], else_="")
    return t.select("customer_id", "stage", cn.name("stage_cn"), *COLUMNS[2:], "R", "F", "M")


def stage_table(orders, as_of=None, rule: str = "ladder", ladder: Sequence[int] = LADDER,
                lost_days: float | None = None, engine=None, **rule_kw) -> ibis.Table:
    """:func:`lifecycle_stages` as an engine expression, one row per customer, unordered.

    Columns: ``customer_id``, the columns of :func:`lifecycle_stages` and the RFM scores
    ``R``, ``F``, ``M`` (null for potentials). Building it runs the small queries the
    thresholds need (RFM cut points, the percentile's Kaplan–Meier, the cycle/season checks)
    and raises their errors; the table itself runs where it is used: counted
    (:func:`stage_counts`, :func:`lifecycle_counts`), joined, or written
    (:func:`crmlab.engine.aggregates.write_rows`).
    """
    return _stages(order_table(orders, engine, as_of), rule, ladder, lost_days, **rule_kw)


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
    ``segment`` (RFM while active; :func:`past_value` when dormant or lost).

    Per customer, in pandas: :func:`stage_table` brought back (for notebooks and small
    stores; on a big store use :func:`lifecycle_counts` or write :func:`stage_table`).
    """
    o = order_table(orders, engine, as_of)
    df = o.engine.to_pandas(_stages(o, rule, ladder, lost_days, **rule_kw))
    out = df.sort_values("customer_id").set_index("customer_id")[list(COLUMNS)]
    out["paid_orders"] = out["paid_orders"].astype(int)
    for col in ("sales", "days_since_last", "dormancy_threshold"):
        out[col] = out[col].astype(float)
    out.attrs.update(as_of=o.observation_end, rule=rule)
    return out


def _counts_frame(n: pd.Series) -> pd.DataFrame:
    n = n.reindex(list(STAGES), fill_value=0).astype("int64")
    n.index.name = "stage"
    return pd.DataFrame({"名称": [STAGE_CN[s] for s in n.index], "customers": n, "share": n / n.sum()})


def stage_counts(stages) -> pd.DataFrame:
    """Customers and share per stage, in lifecycle order.

    ``stages``: :func:`lifecycle_stages` (a DataFrame), or :func:`stage_table` (an engine
    expression: counted in the engine)."""
    if isinstance(stages, ibis.Table):
        g = stages.group_by("stage").aggregate(customers=stages.count()).to_pandas()
        return _counts_frame(g.set_index("stage")["customers"])
    return _counts_frame(stages["stage"].value_counts())


def lifecycle_counts(orders, as_of=None, rule: str = "ladder", ladder: Sequence[int] = LADDER,
                     lost_days: float | None = None, engine=None, **rule_kw) -> pd.DataFrame:
    """:func:`stage_counts` of :func:`lifecycle_stages`, counted in the engine (no customer
    comes back to pandas). ``attrs``: ``as_of``, ``rule``, ``customers`` (all stages) and
    ``dormancy_threshold`` (days; None when it differs between buyers, e.g. per product)."""
    o = order_table(orders, engine, as_of)
    t = _stages(o, rule, ladder, lost_days, **rule_kw)
    g = o.engine.to_pandas(t.group_by("stage").aggregate(customers=t.count(), lo=t.dormancy_threshold.min(),
                                                         hi=t.dormancy_threshold.max()))
    out = _counts_frame(g.set_index("stage")["customers"])
    lo, hi = g["lo"].min(), g["hi"].max()
    thr = float(lo) if pd.notna(lo) and lo == hi else None
    out.attrs.update(as_of=o.observation_end, rule=rule, customers=int(out["customers"].sum()),
                     dormancy_threshold=thr)
    return out


def stage_transitions(orders, from_date, to_date, **kw) -> pd.DataFrame:
    """How many customers moved from each stage at ``from_date`` to each stage at ``to_date``.

    Rows: stage at ``from_date`` (plus ``"not yet a customer"`` for customers whose first
    order came later); columns: stage at ``to_date``. Keyword arguments go to
    :func:`lifecycle_stages`. Counted in the engine (the two stage tables joined there).
    """
    o = order_table(orders, kw.pop("engine", None))
    a = _stages(o.until(from_date), **dict(kw))
    b = _stages(o.until(to_date), **dict(kw))
    a = a.select(from_id=a.customer_id, from_stage=a.stage)
    j = b.left_join(a, b.customer_id == a.from_id)
    j = j.select(from_stage=j.from_stage.fill_null(NEW_CUSTOMER), to_stage=j.stage)
    g = o.engine.to_pandas(j.group_by(["from_stage", "to_stage"]).aggregate(n=j.count()))
    g = g.rename(columns={"from_stage": "from", "to_stage": "to"})
    m = g.pivot(index="from", columns="to", values="n").fillna(0).astype("int64")
    rows = [s for s in (NEW_CUSTOMER, *STAGES) if s in m.index]
    cols = [s for s in STAGES if s in m.columns]
    return m.reindex(index=rows, columns=cols, fill_value=0)
