"""crmlab's top-level API: ``import crmlab``, then ``crmlab.retention_table(...)`` and so on.

Each function here is a documented entry point to the analysis that lives in its own
module (named under "See Also"); nothing is computed twice. ``import crmlab`` stays fast:
the names resolve on first use (``crmlab.__getattr__``), and each function imports its
module only when called. Every ``Examples`` section runs in ``make test`` on the simulated
store (``crmlab sample --out DIR --customers 2000 --seed 1``), from inside that folder.

The flow in a notebook:

>>> import crmlab
>>> crmlab.set_engine("duckdb")                 # once per notebook (or a SparkSession)
Engine(name='duckdb')
>>> crmlab.set_timezone("Asia/Shanghai")        # the store's time zone, once
'Asia/Shanghai'
>>> orders, ledger = crmlab.load("orders.csv")  # validated, every row accounted for
>>> ledger.used_rows, ledger.input_rows
(7856, 7856)
>>> crmlab.retention_table(orders)              # each result shows itself in a notebook
<RetentionTable: day-30 retention 0.7% of 1,837 eligible new buyers (all cohorts; a paid order on that day)
  engine duckdb · time zone Asia/Shanghai · observation end 2025-12-31 23:54:27>
"""
from __future__ import annotations

from typing import Sequence

__all__ = ["load_orders", "load_sends", "load", "connect", "set_engine", "get_engine", "set_timezone",
           "get_timezone", "retention_table", "period_repurchase_rate", "next_period_repurchase", "repurchase_curve",
           "magic_number", "lifecycle_stages", "rfm_scores", "segment_summary", "rfm_summary", "fit_clv",
           "analyse_experiment", "sample_size", "promotion_review"]


# ----------------------------------------------------------------------------- loading

def load_orders(source, columns=None, observation_end=None, keep_pii: bool = False, *, timezone: str | None = None,
                decimal: str = ".", dayfirst: bool | None = None, now=None, sheet: str | None = None):
    """Load an order export into pandas: validated, lines rolled up to orders, with its ledger.

    Parameters
    ----------
    source : path or DataFrame
        CSV (UTF-8, UTF-8 BOM, UTF-16, GBK; comma, tab or semicolon), Parquet, Excel, or a
        DataFrame. Common Chinese headers (买家会员名, 订单编号, 订单付款时间, 实付金额, ...)
        are recognised.
    columns : dict or str, optional
        Canonical name -> header, e.g. ``{"customer_id": "买家会员名"}``.
    observation_end : str or Timestamp, optional
        Orders after it are excluded (a bare date: the end of that day). Default: the
        latest valid order.
    keep_pii : bool
        Keep ``nickname`` and ``phone`` (dropped by default).
    timezone : str, optional
        The store's IANA time zone; default :func:`set_timezone`'s, else Asia/Shanghai.
    decimal, dayfirst, now
        The decimal mark of amounts, how to read slash dates, the moment of the run.
    sheet : str, optional
        The sheet of an Excel workbook holding the orders (default: the only sheet, or the
        only one with the required columns; several such sheets are an error).

    Returns
    -------
    orders : DataFrame
        One row per order: ``order_id, customer_id, order_time, amount, status`` and the
        optional columns present.
    ledger : Ledger
        Where every input row went (used, or excluded with the reason).

    See Also
    --------
    crmlab.ingest.readers.load_orders : the implementation.
    load : the same validation, orders kept in the engine (DuckDB or Spark).

    Examples
    --------
    >>> import crmlab
    >>> orders, ledger = crmlab.load_orders("orders.csv")
    >>> len(orders), ledger.customers, ledger.timezone
    (5246, 2000, 'Asia/Shanghai')
    """
    from crmlab.ingest.readers import load_orders as f

    if source is None:
        from crmlab.schema import CrmlabInputError

        raise CrmlabInputError("load_orders: no orders given (expected a path or a DataFrame, got None)")
    return f(source, columns, observation_end, keep_pii, timezone=timezone, decimal=decimal, dayfirst=dayfirst,
             now=now, sheet=sheet)


def load_sends(source, columns=None, observation_end=None, keep_pii: bool = False, *, timezone: str | None = None,
               decimal: str = ".", dayfirst: bool | None = None, sheet: str | None = None):
    """Load an SMS send log (one row per message), validated, with its ledger.

    Parameters
    ----------
    source : path or DataFrame
        Columns ``customer_id, campaign_id, variant, send_time``; optional ``delivered``,
        ``cost``, ``segments``, ``copy``.
    columns, observation_end, keep_pii, timezone, decimal, dayfirst, sheet
        As in :func:`load_orders`.

    Returns
    -------
    sends : DataFrame
    ledger : Ledger

    See Also
    --------
    crmlab.ingest.readers.load_sends : the implementation.

    Examples
    --------
    >>> import crmlab
    >>> sends, ledger = crmlab.load_sends("sends.csv")
    >>> sends["variant"].value_counts().sort_index().to_dict()
    {'A@10:00': 257, 'A@17:00': 270, 'B@10:00': 248, 'B@17:00': 256, 'holdout': 249}
    """
    from crmlab.ingest.readers import load_sends as f

    if source is None:
        from crmlab.schema import CrmlabInputError

        raise CrmlabInputError("load_sends: no send log given (expected a path or a DataFrame, got None)")
    return f(source, columns, observation_end, keep_pii, timezone=timezone, decimal=decimal, dayfirst=dayfirst,
             sheet=sheet)


def load(source, engine=None, *, columns=None, observation_end=None, timezone: str | None = None,
         decimal: str = ".", dayfirst: bool | None = None, now=None, sheet: str | None = None):
    """Validated orders in the engine, and their ledger: what every analysis takes.

    Parameters
    ----------
    source : path, DataFrame or engine table
        An export (validated as :func:`load_orders` does, in the engine, in chunks: big
        files fit), a clean Parquet file crmlab wrote (read as it is), or a warehouse table
        ``duckdb:FILE.duckdb:TABLE`` / ``spark:DB.TABLE``.
    engine : str or Engine, optional
        Default: the notebook's (:func:`set_engine`), else DuckDB.
    columns, observation_end, timezone, decimal, dayfirst, now, sheet
        As in :func:`load_orders`.

    Returns
    -------
    orders : OrderTable
        The orders in the engine with their observation end.
    ledger : Ledger

    See Also
    --------
    crmlab.engine.load : the implementation.

    Examples
    --------
    >>> import crmlab
    >>> orders, ledger = crmlab.load("orders.csv")
    >>> orders
    <OrderTable orders.csv: engine duckdb, observation end 2025-12-31 23:54:27, columns order_id, customer_id, order_time, amount, status, channel, region, product, category, quantity, line>
    >>> ledger.orders, ledger.excluded_rows
    (5246, 0)
    """
    from crmlab.engine import load as f

    if source is None:
        from crmlab.schema import CrmlabInputError

        raise CrmlabInputError("load: no orders given (expected a path, a DataFrame or an engine table, got None)")
    return f(source, engine, columns=columns, observation_end=observation_end, timezone=timezone, decimal=decimal,
             dayfirst=dayfirst, now=now, sheet=sheet)


# ----------------------------------------------------------------------------- settings

def _is_spark_session(obj) -> bool:
    return type(obj).__name__ == "SparkSession" or hasattr(obj, "sparkContext")


def connect(engine: str | None = None, **options):
    """Connect to an engine: embedded DuckDB (default) or Spark.

    Parameters
    ----------
    engine : {"duckdb", "spark"}, optional
        Default ``CRMLAB_ENGINE``, else ``"duckdb"``.
    **options
        ``spark=`` (your SparkSession), ``spark_master=``, and DuckDB's ``memory_limit``,
        ``temp_directory``, ``threads``.

    Returns
    -------
    Engine

    See Also
    --------
    crmlab.engine.connect : the implementation.
    set_engine : connect and make it the notebook's engine.

    Examples
    --------
    >>> import crmlab
    >>> crmlab.connect("duckdb", threads=1)
    Engine(name='duckdb')
    """
    from crmlab.engine import connect as f

    return f(engine, **options)


def set_engine(engine=None, **options):
    """Choose the notebook's engine once; every analysis then runs there.

    Parameters
    ----------
    engine : "duckdb", "spark", Engine or SparkSession, optional
        A name (connected with ``options``), an :class:`~crmlab.engine.Engine` from
        :func:`connect`, or your own ``SparkSession``. Default: ``CRMLAB_ENGINE``, else
        DuckDB.
    **options
        As in :func:`connect`.

    Returns
    -------
    Engine
        Results computed from then on show its name.

    See Also
    --------
    crmlab.engine.set_engine : the implementation.

    Examples
    --------
    >>> import crmlab
    >>> crmlab.set_engine("duckdb")
    Engine(name='duckdb')
    >>> crmlab.get_engine().name
    'duckdb'
    """
    from crmlab.engine import set_engine as f

    if engine is not None and not isinstance(engine, str) and _is_spark_session(engine):
        return f(None, spark=engine, **options)
    return f(engine, **options)


def get_engine(engine=None):
    """The notebook's engine (connecting DuckDB on first use when none was chosen).

    Parameters
    ----------
    engine : str or Engine, optional
        Returned as is (an Engine), or connected by name.

    Returns
    -------
    Engine

    See Also
    --------
    crmlab.engine.get_engine : the implementation.

    Examples
    --------
    >>> import crmlab
    >>> crmlab.get_engine("duckdb").name
    'duckdb'
    """
    from crmlab.engine import get_engine as f

    return f(engine)


def set_timezone(timezone: str | None):
    """Set the store's time zone once per notebook: loaders called without ``timezone=`` use it.

    Times with an offset (``...Z``, ``+08:00``, tz-aware Parquet) are converted to the store's
    zone and kept without an offset; times without one are store-local already. Results
    show the zone in force. ``None`` goes back to Asia/Shanghai.

    Parameters
    ----------
    timezone : str or None
        An IANA name such as ``"Asia/Shanghai"`` or ``"Europe/Berlin"``.

    Returns
    -------
    str
        The zone now in force.

    Raises
    ------
    CrmlabInputError
        Not a time zone.

    See Also
    --------
    crmlab.ingest.values.set_timezone : the implementation.

    Examples
    --------
    >>> import crmlab
    >>> crmlab.set_timezone("UTC")
    'UTC'
    >>> orders, ledger = crmlab.load_orders("orders.csv")
    >>> ledger.timezone
    'UTC'
    >>> crmlab.set_timezone(None)
    'Asia/Shanghai'
    """
    from crmlab.ingest.values import set_timezone as f

    return f(timezone)


def get_timezone() -> str:
    """The store time zone in force: :func:`set_timezone`'s, else Asia/Shanghai.

    Returns
    -------
    str

    Examples
    --------
    >>> import crmlab
    >>> crmlab.get_timezone()
    'Asia/Shanghai'
    """
    from crmlab.ingest.values import get_timezone as f

    return f()


# ----------------------------------------------------------------------------- retention and repurchase

def retention_table(orders, cohort: str = "month", days: Sequence = (1, 3, 7, 14, 30, 60, 90), kind: str = "exact",
                    observation_end=None, engine=None):
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
    day-30 retention 38.1% of 1,837 eligible new buyers (all cohorts; a paid order on that day or later)
    >>> table.rates.loc["all cohorts"].round(3).tolist()
    [0.434, 0.381, 0.352]
    """
    from crmlab.analyses.retention import retention_table as f

    return f(orders, cohort, days, kind, observation_end, engine)


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
    from crmlab.analyses.repurchase import period_repurchase_rate as f

    return f(orders, freq, observation_end, engine)


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
    from crmlab.analyses.repurchase import next_period_repurchase as f

    return f(orders, kind, observation_end, engine)


# ----------------------------------------------------------------------------- the magic number

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
    from crmlab.analyses.magic import repurchase_curve as f

    return f(orders, window_days, max_k, **options)


def magic_number(curve, rule: str = "plateau", **options):
    """The repurchase magic number (复购魔法数字): the order count from which the curve stops rising.

    The default rule shows the plateau by equivalence tests; when it cannot, the answer is
    None with a reason (often: how many customers it would take). The curve is an
    association, not the effect of one more order.

    Parameters
    ----------
    curve : RepurchaseCurve
        From :func:`repurchase_curve`.
    rule : {"plateau", "ztest", "segmented", "tolerance"}
    **options
        ``alpha`` (0.05), ``tolerance`` (0.03), ``min_at_risk`` (50), ``power`` (0.8).

    Returns
    -------
    MagicNumber
        ``magic_number`` (int or None), ``reason``, ``rules`` (every rule's answer),
        ``plateau`` (the equivalence test).

    See Also
    --------
    crmlab.analyses.magic.magic_number : the implementation and the rules.

    Examples
    --------
    >>> import crmlab
    >>> orders, ledger = crmlab.load("orders.csv")
    >>> magic = crmlab.magic_number(crmlab.repurchase_curve(orders))
    >>> magic.magic_number is None, magic.rules["ztest"], magic.rules["segmented"]
    (True, 3, 3)
    >>> print(magic.reason[:60])
    the rates from 3 orders on look flat (each within 3 points o
    """
    from crmlab.analyses.magic import magic_number as f

    return f(curve, rule, **options)


# ----------------------------------------------------------------------------- customers

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
    from crmlab.analyses.lifecycle import lifecycle_stages as f

    return f(orders, as_of, rule, **options)


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
    from crmlab.analyses.rfm import rfm_scores as f

    return f(orders, as_of, bins, cuts, engine)


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
    from crmlab.analyses.rfm import segment_summary as f

    return f(scores)


# ----------------------------------------------------------------------------- CLV

def rfm_summary(orders, observation_end=None, time_unit: str = "D", calibration_end=None, engine=None):
    """lifetimes' RFM summary per customer (``frequency``, ``recency``, ``T``, ``monetary_value``),
    computed in the engine: what the buy-till-you-die models are fitted on.

    Parameters
    ----------
    orders : OrderTable or DataFrame
    observation_end : optional
    time_unit : {"D", "W"}
        Days, or weeks.
    calibration_end : optional
        Split into calibration (``_cal``) and holdout (``_holdout``) columns.
    engine : optional

    Returns
    -------
    DataFrame
        Per customer, equal to ``lifetimes.utils.summary_data_from_transaction_data``
        (and ``calibration_and_holdout_data``).

    See Also
    --------
    crmlab.clv.models.rfm_summary : the implementation.

    Examples
    --------
    >>> import crmlab
    >>> orders, ledger = crmlab.load("orders.csv")
    >>> summary = crmlab.rfm_summary(orders, time_unit="W")
    >>> len(summary), int((summary["frequency"] > 0).sum())
    (1940, 907)
    >>> from crmlab.clv.models import FittedModel
    >>> FittedModel("bgnbd").fit(summary)
    <FittedModel BG/NBD: fitted on 1,940 customers (1,427 distinct rows); r 0.2577, alpha 2.971, a 12.73, b 49.18; log-likelihood -10,570.08, ok>
    """
    from crmlab.clv.models import rfm_summary as f

    return f(orders, observation_end, time_unit, calibration_end, engine)


def fit_clv(orders, *, time_unit: str = "W", observation_end=None, calibration_end=None, holdout_days: int = 182,
            model: str | None = None, horizon_months: int = 12, discount_rate: float = 0.01, margin: float = 1.0,
            engine=None, interval_level: float = 0.9, purchases_days: int = 90, seed: int = 0, band: float = 0.10):
    """Customer lifetime value (顾客终身价值): fit BG/NBD, Pareto/NBD, MBG/NBD and Gamma-Gamma,
    compare them on a holdout, choose, and value every customer, with intervals.

    Parameters
    ----------
    orders : OrderTable or DataFrame
    time_unit : {"W", "D"}
    calibration_end : optional
        Fit up to this day and compare predictions after it; default ``holdout_days``
        (182) before the observation end; 0 or None: no holdout.
    model : {"bgnbd", "pareto_nbd", "mbgnbd"}, optional
        Fit and use only this purchase model.
    horizon_months, discount_rate, margin
        CLV over ``horizon_months``, discounted monthly; revenue at margin 1, else profit.
    observation_end, engine, interval_level, purchases_days, seed, band
        See :func:`crmlab.clv.pipeline.clv_pipeline`.

    Returns
    -------
    ClvResult
        ``headline()``, ``model`` (the chosen :class:`~crmlab.clv.models.FittedModel`:
        ``summary``, ``print_summary()``), ``models``, ``gamma_gamma``, ``holdout``,
        ``values`` (per customer: P(alive), expected purchases, CLV with its interval),
        ``plot(ax=None)``.

    Raises
    ------
    ClvFitError
        No purchase model can be fitted (no repeat customers, ...).

    See Also
    --------
    crmlab.clv.pipeline.clv_pipeline : the implementation (``crmlab clv``, notebook 04).

    Examples
    --------
    >>> import crmlab
    >>> orders, ledger = crmlab.load("orders.csv")
    >>> clv = crmlab.fit_clv(orders)
    >>> print(clv.headline())
    Expected 12-month revenue of today's 1,940 customers: ¥174,047 (90% interval ¥162,849–¥186,014), at margin 1.
    >>> clv.chosen_model
    'pareto_nbd'
    >>> clv.model.params_.round(2).to_dict()
    {'r': 0.92, 'alpha': 13.15, 's': 0.57, 'beta': 7.97}
    >>> list(clv.model.summary.columns)
    ['estimate', 'std_error', 'ci_low', 'ci_high']
    """
    from crmlab.clv.pipeline import clv_pipeline as f

    return f(orders, time_unit=time_unit, observation_end=observation_end, calibration_end=calibration_end,
             holdout_days=holdout_days, model=model, horizon_months=horizon_months, discount_rate=discount_rate,
             margin=margin, engine=engine, interval_level=interval_level, purchases_days=purchases_days, seed=seed,
             band=band)


# ----------------------------------------------------------------------------- experiments

def analyse_experiment(sends, orders, window_hours: float = 72, control: str | None = None, **options):
    """Read out an SMS experiment (copy × send time against a holdout): conversion and revenue
    per arm, tests with intervals, the factorial effects, CUPED, and the decision.

    A targeted customer converts with a paid order within ``window_hours`` of the send.

    Parameters
    ----------
    sends : DataFrame
        From :func:`load_sends`.
    orders : OrderTable or DataFrame
    window_hours : float
    control : str, optional
        The control arm (default: the holdout).
    **options
        ``planned_split``, ``planned_n_per_arm``, ``alpha``, ``campaign``, ``price_per_message``,
        ``margin``, ``cuped_days``, ``monitor``, ``target_effect``, ... (see the implementation).

    Returns
    -------
    ExperimentResult
        ``decision``, ``verdict``, ``arms``, ``comparisons``, ``factorial``, ``srm``,
        ``warnings``.

    See Also
    --------
    crmlab.experiments.analysis.analyse_experiment : the implementation (``crmlab abtest``,
        notebook 05).
    sample_size : customers per arm for the next test.

    Examples
    --------
    >>> import crmlab
    >>> orders, ledger = crmlab.load("orders.csv")
    >>> sends, sends_ledger = crmlab.load_sends("sends.csv")
    >>> result = crmlab.analyse_experiment(sends, orders)
    >>> result.decision["headline"]
    'no verdict'
    >>> result.arms["buyers"].to_dict()
    {'A@10:00': 10, 'A@17:00': 16, 'B@10:00': 11, 'B@17:00': 18, 'holdout': 1}
    """
    from crmlab.experiments.analysis import analyse_experiment as f

    return f(sends, orders, window_hours, control=control, **options)


def sample_size(baseline: float, target: float | None = None, relative_lift: float | None = None,
                alpha: float = 0.05, power: float = 0.8, **options):
    """Customers per arm to detect a change in conversion from ``baseline`` to ``target``
    (R's ``power.prop.test``).

    Parameters
    ----------
    baseline : float
        The control's conversion, e.g. 0.10.
    target, relative_lift : float
        Give one: the conversion to detect (0.12) or the relative lift (0.2 for +20%).
    alpha, power : float
    **options
        ``ratio`` (n2 / n1, default 1), ``alternative`` (``"two-sided"``).

    Returns
    -------
    SampleSize
        ``n_per_arm`` (rounded up), ``n_exact``, ...

    See Also
    --------
    crmlab.experiments.design.sample_size : the implementation and the formula.

    Examples
    --------
    >>> import crmlab
    >>> crmlab.sample_size(0.10, 0.12).n_per_arm
    3841
    >>> crmlab.sample_size(0.10, relative_lift=0.5).n_per_arm
    686
    """
    from crmlab.experiments.design import sample_size as f

    return f(baseline, target, relative_lift, alpha, power, **options)


# ----------------------------------------------------------------------------- promotions

def promotion_review(orders, date=None, last_year_date=None, phases=None, growth=None, observation_end=None,
                     engine=None, clv_check: bool = True, today=None):
    """A big promotion (大促: Double 11, 618, a brand day): last year's and this year's figures
    per phase and new/old customer, this year's plan, and the review once the day has passed.

    Parameters
    ----------
    orders : OrderTable or DataFrame
    date, last_year_date : str or Timestamp, optional
        The promotion day (default: 11-11 of the export's year) and last year's.
    phases : str, optional
        ``"build_up=-71:-12,warm_up=-10:-1,day=0:0,after_glow=1:3"`` (the default).
    growth : str or dict, optional
        ``"new=0.1,old=0.2"``; a type not given is estimated.
    observation_end, engine, clv_check, today
        See :func:`crmlab.promotion.plan.analyse_promotion`.

    Returns
    -------
    PromotionResult
        ``this_year``, ``last_year``, ``plan``, ``review``, ``assumptions``,
        ``plot(ax=None)``.

    See Also
    --------
    crmlab.promotion.plan.analyse_promotion : the implementation (``crmlab promotion``, notebook 06).

    Examples
    --------
    >>> import crmlab
    >>> orders, ledger = crmlab.load("orders.csv")
    >>> review = crmlab.promotion_review(orders, date="2025-11-11", clv_check=False)
    >>> print(review.headline())
    2025-11-11 reviewed: day sales ¥6,305, 79% of the target ¥7,963; whole period ¥77,046, 75% of target
    """
    from crmlab.promotion.plan import analyse_promotion as f

    return f(orders, date, last_year_date, phases, growth, observation_end, engine, clv_check, today)
