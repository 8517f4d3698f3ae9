"""The API's retention, repurchase, magic number and customer analyses.

Re-exported by :mod:`crmlab.api` (and ``crmlab.NAME``); each function documents and calls
the implementation named first under "See Also".
"""
from __future__ import annotations

from typing import Sequence

from crmlab.analyses import lifecycle as _lifecycle
from crmlab.analyses import magic as _magic
from crmlab.analyses import repurchase as _repurchase
from crmlab.analyses import retention as _retention
from crmlab.analyses import rfm as _rfm

__all__ = ['retention_table', 'period_repurchase_rate', 'next_period_repurchase', 'repurchase_curve', 'magic_number', 'lifecycle_stages', 'rfm_scores', 'segment_summary']


def retention_table(orders, cohort: str = "month", days: Sequence = (1, 3, 7, 14, 30, 60, 90), kind: str = "exact",
                    observation_end=None, engine=None, horizon_days: int | None = None):
    """Cohort retention (留存率): of each cohort's new buyers, the share with a paid order on day N.

    Day N counts calendar days from the first paid order's date. A customer whose day N is
    not over by the observation end is left out of that cell (censored: blank, never 0).

    Parameters
    ----------
    orders : OrderTable or DataFrame
        From :func:`load` (or :func:`load_orders`).
    cohort : {"month", "week", "day", "channel"}
        How customers are grouped by their first paid order.
    days : sequence of int, or of (start, end) pairs for ``kind="bracket"``
    kind : {"exact", "on_or_after", "bracket"}
        A paid order on day N; on day N or later; on a day inside [start, end].
    observation_end : optional
        Default: the loader's.
    engine : optional
        Default: the notebook's.
    horizon_days : int, optional
        With ``kind="on_or_after"``: orders on days N to this day (default 180); customers
        without that follow-up are censored, so every cohort compares equal follow-up.

    Returns
    -------
    RetentionTable
        ``rates``, ``eligible``, ``retained`` (cohorts × days, last row ``"all cohorts"``),
        ``to_frame()`` with Wilson intervals, ``plot(ax=None)``.

    See Also
    --------
    crmlab.analyses.retention.retention_table : the implementation.

    Examples
    --------
    >>> import crmlab
    >>> orders, ledger = crmlab.load("orders.csv")
    >>> table = crmlab.retention_table(orders, days=[7, 30, 90], kind="on_or_after")
    >>> print(table.headline())
    day-30 retention 35.4% of 1,366 eligible new buyers (all cohorts; a paid order from that day to day 180; customers followed 180 days)
    >>> table.rates.loc["all cohorts"].round(3).tolist()
    [0.415, 0.354, 0.277]
    """
    return _retention.retention_table(orders, cohort, days, kind, observation_end, engine, horizon_days)


def period_repurchase_rate(orders, freq: str = "month", observation_end=None, engine=None):
    """Of each period's buyers, the share with two or more paid orders in it (复购率), with Wilson intervals.

    Parameters
    ----------
    orders : OrderTable or DataFrame
    freq : {"month", "week", "quarter"}
    observation_end, engine : optional

    Returns
    -------
    DataFrame
        Per period: ``buyers``, ``repeat_buyers``, ``rate``, ``ci_low``, ``ci_high``,
        ``complete`` (the last, unfinished period's rate is NaN, never low).

    See Also
    --------
    crmlab.analyses.repurchase.period_repurchase_rate : the implementation.

    Examples
    --------
    >>> import crmlab
    >>> orders, ledger = crmlab.load("orders.csv")
    >>> rates = crmlab.period_repurchase_rate(orders, "quarter")
    >>> rates[["buyers", "repeat_buyers"]].tail(2)
            buyers  repeat_buyers
    period                       
    2025Q3     492            159
    2025Q4     600            195
    """
    return _repurchase.period_repurchase_rate(orders, freq, observation_end, engine)


def next_period_repurchase(orders, kind: str = "next_month", observation_end=None, engine=None):
    """次月 / 次两月 / 次季度复购率: of the last period's buyers, the share who buy in this one.

    Parameters
    ----------
    orders : OrderTable or DataFrame
    kind : {"next_month", "next_two_months", "next_quarter"}
    observation_end, engine : optional

    Returns
    -------
    DataFrame
        Per period: ``repurchased``, ``base``, ``rate``, ``ci_low``, ``ci_high``,
        ``complete``.

    See Also
    --------
    crmlab.analyses.repurchase.next_period_repurchase : the implementation.

    Examples
    --------
    >>> import crmlab
    >>> orders, ledger = crmlab.load("orders.csv")
    >>> q = crmlab.next_period_repurchase(orders, "next_quarter")
    >>> q[["repurchased", "base"]].tail(2)
            repurchased  base
    period                   
    2025Q3          154   460
    2025Q4          180   492
    """
    return _repurchase.next_period_repurchase(orders, kind, observation_end, engine)


def repurchase_curve(orders, window_days: int = 90, max_k: int = 10, **options):
    """The X-order repurchase curve: of customers with k paid orders, the share whose order
    k+1 comes within ``window_days`` (censoring-aware, Wilson intervals, Kaplan-Meier beside).

    Parameters
    ----------
    orders : OrderTable or DataFrame
    window_days : int
    max_k : int
        Order counts 1..max_k.
    **options
        ``observation_end``, ``min_at_risk`` (50), ``engine``.

    Returns
    -------
    RepurchaseCurve
        ``table`` per k: ``at_risk``, ``repurchased``, ``rate``, ``ci_low``, ``ci_high``,
        ``naive_rate``, ``km_rate``, ``enough``.

    See Also
    --------
    crmlab.analyses.magic.repurchase_curve : the implementation.
    magic_number : where the curve levels off.

    Examples
    --------
    >>> import crmlab
    >>> orders, ledger = crmlab.load("orders.csv")
    >>> curve = crmlab.repurchase_curve(orders)
    >>> curve.table[["at_risk", "repurchased"]].head(3)
       at_risk  repurchased
    1     1628          477
    2      766          345
    3      443          274
    >>> curve.table["rate"].head(3).round(3).tolist()
    [0.293, 0.45, 0.619]
    """
    return _magic.repurchase_curve(orders, window_days, max_k, **options)


def magic_number(curve, rule: str = "plateau", **options):
    """The repurchase magic number (复购魔法数字): the order count from which the curve stops rising.

    The default rule shows the plateau by equivalence tests (``level`` "shown"); on a store
    too small to show it, the plateau may be "indicated" by the estimates (every two rates
    within the tolerance, none shown to rise); otherwise the answer is None with a reason
    (often: how many customers it would take). The curve is an association, not the effect
    of one more order.

    Parameters
    ----------
    curve : RepurchaseCurve
        From :func:`repurchase_curve`.
    rule : {"plateau", "ztest", "segmented", "tolerance"}
    **options
        ``alpha`` (0.05), ``tolerance`` (0.03), ``min_at_risk`` (50), ``power`` (0.95),
        ``rise_alpha`` (None: ``alpha``), ``min_indicated`` (None: 1,718).

    Returns
    -------
    MagicNumber
        ``magic_number`` (int or None), ``level`` ("shown", "indicated" or "none"),
        ``reason``, ``rules`` (every rule's answer), ``plateau`` (the equivalence test),
        ``headline()`` (the sentence the card and the report show).

    See Also
    --------
    crmlab.analyses.magic.magic_number : the implementation and the rules.

    Examples
    --------
    >>> import crmlab
    >>> orders, ledger = crmlab.load("orders.csv")
    >>> magic = crmlab.magic_number(crmlab.repurchase_curve(orders))
    >>> magic.magic_number is None, magic.level, magic.rules["ztest"], magic.rules["segmented"]
    (True, 'none', 3, 3)
    >>> print(magic.reason[:60])
    the rates from 3 to 4 orders look flat (every two within 3 p
    """
    return _magic.magic_number(curve, rule, **options)


def lifecycle_stages(orders, as_of=None, rule: str = "ladder", **options):
    """One lifecycle stage per customer (潜客/新客/老客/粉丝/休眠/流失) as of a date.

    Parameters
    ----------
    orders : OrderTable or DataFrame
    as_of : optional
        Default: the observation end.
    rule : {"ladder", "product_cycle", "season", "percentile"}
        How the dormancy threshold is set.
    **options
        ``ladder``, ``lost_days``, ``engine`` and the rule's own (``cycles``, ``slack``,
        ``seasons``, ``percentile``).

    Returns
    -------
    DataFrame
        Per customer: ``stage``, ``stage_cn``, ``ladder_step``, ``paid_orders``, ``sales``,
        ``last_time``, ``days_since_last``, ``dormancy_threshold``, ``segment``.

    See Also
    --------
    crmlab.analyses.lifecycle.lifecycle_stages : the implementation and the stage rules.

    Examples
    --------
    >>> import crmlab
    >>> orders, ledger = crmlab.load("orders.csv")
    >>> stages = crmlab.lifecycle_stages(orders)
    >>> stages["stage"].value_counts().to_dict()
    {'dormant': 767, 'lost': 575, 'new': 246, 'returning': 214, 'fan': 138, 'potential': 60}
    """
    return _lifecycle.lifecycle_stages(orders, as_of, rule, **options)


def rfm_scores(orders, as_of=None, bins: int = 5, cuts=None, engine=None):
    """Recency, frequency, monetary per buyer, their 1-5 scores and named segments.

    Parameters
    ----------
    orders : OrderTable or DataFrame
    as_of : optional
        Snapshot date (default: the observation end).
    bins : int
        Quantile scores 1..bins (5 is best).
    cuts : dict, optional
        Your own cut points per metric instead of quantiles.
    engine : optional

    Returns
    -------
    DataFrame
        Per buyer: ``recency``, ``frequency``, ``monetary``, ``R``, ``F``, ``M``, ``score``,
        ``segment``.

    See Also
    --------
    crmlab.analyses.rfm.rfm_scores : the implementation and the segment rules.
    segment_summary : customers and sales per segment.

    Examples
    --------
    >>> import crmlab
    >>> orders, ledger = crmlab.load("orders.csv")
    >>> scores = crmlab.rfm_scores(orders)
    >>> scores["segment"].value_counts().to_dict()
    {'hibernating': 492, 'new': 336, 'champions': 330, 'loyal': 301, 'at_risk': 285, 'need_attention': 196}
    """
    return _rfm.rfm_scores(orders, as_of, bins, cuts, engine)


def segment_summary(scores):
    """Customers, sales and their shares per RFM segment, in the segments' order.

    Parameters
    ----------
    scores : DataFrame
        From :func:`rfm_scores`.

    Returns
    -------
    DataFrame

    See Also
    --------
    crmlab.analyses.rfm.segment_summary : the implementation.

    Examples
    --------
    >>> import crmlab
    >>> orders, ledger = crmlab.load("orders.csv")
    >>> summary = crmlab.segment_summary(crmlab.rfm_scores(orders))
    >>> summary["customers"].to_dict()
    {'champions': 330, 'loyal': 301, 'new': 336, 'at_risk': 285, 'hibernating': 492, 'need_attention': 196}
    """
    return _rfm.segment_summary(scores)
