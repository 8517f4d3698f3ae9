"""The API's loading and settings: :func:`load_orders`, :func:`load_sends`, :func:`load`, the engine and the time zone.

Re-exported by :mod:`crmlab.api` (and ``crmlab.NAME``); each function documents and calls
the implementation named first under "See Also".
"""
from __future__ import annotations

from crmlab.engine import connection as _connection, loading as _loading
from crmlab.ingest import readers as _readers
from crmlab.ingest import values as _values
from crmlab.schema import CrmlabInputError

__all__ = ['load_orders', 'load_sends', 'load', 'connect', 'set_engine', 'get_engine', 'set_timezone', 'get_timezone']


def load_orders(source, columns=None, observation_end=None, keep_pii: bool = False, *, timezone: str | None = None,
                decimal: str = ".", dayfirst: bool | None = None, now=None, sheet: str | None = None,
                returns: str | None = None):
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
    returns : {"net", "ignore"}, optional
        Separate reversals (credit notes, ``C``-invoices, refund rows: negative amounts)
        netted against the same customer's purchases of the 30 days before: a fully
        reversed order leaves the orders, a partial return lowers its amount
        (``ledger.returns`` counts them). Default: the lines whose id says so (``C`` and a
        digit); ``"net"``: every negative-amount line; ``"ignore"``: none.

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
    if source is None:
        raise CrmlabInputError("load_orders: no orders given (expected a path or a DataFrame, got None)")
    return _readers.load_orders(source, columns, observation_end, keep_pii, timezone=timezone, decimal=decimal, dayfirst=dayfirst,
             now=now, sheet=sheet, returns=returns)


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
    if source is None:
        raise CrmlabInputError("load_sends: no send log given (expected a path or a DataFrame, got None)")
    return _readers.load_sends(source, columns, observation_end, keep_pii, timezone=timezone, decimal=decimal, dayfirst=dayfirst,
             sheet=sheet)


def load(source, engine=None, *, columns=None, observation_end=None, timezone: str | None = None,
         decimal: str = ".", dayfirst: bool | None = None, now=None, sheet: str | None = None,
         returns: str | None = None, history_start=None, lead_in_days: int | None = None,
         cache: bool | str | None = None):
    """Validated orders in the engine, and their ledger: what every analysis takes.

    Parameters
    ----------
    source : path, DataFrame or engine table
        An export (validated as :func:`load_orders` does, in the engine, in chunks: big
        files fit), a clean Parquet file crmlab wrote (read as it is), or a warehouse table
        ``duckdb:FILE.duckdb:TABLE`` / ``spark:DB.TABLE``.
    engine : str or Engine, optional
        Default: the notebook's (:func:`set_engine`), else DuckDB.
    columns, observation_end, timezone, decimal, dayfirst, now, sheet, returns
        As in :func:`load_orders`.
    history_start, lead_in_days : optional, not both
        The lead-in of an export that starts in the middle of the store's life: customers
        first seen before ``history_start`` (a date), or in the export's first
        ``lead_in_days`` days, are existing customers, never new; cohorts, first-time buyers
        and order counts start after it. Neither given: 365 days (half the export when it
        is shorter than two years) when the export looks truncated, else none;
        ``lead_in_days=0`` turns that off. ``ledger.truncation`` says what was used
        (:mod:`crmlab.engine.lead_in`).
    cache : bool or str, optional
        The validation cache for an export file (:mod:`crmlab.engine.cache`): on by default
        (an unchanged export is validated once), ``False`` bypasses it, a path names the
        cache folder. ``ledger.cache`` says whether this read stored or reused an entry.

    Returns
    -------
    orders : OrderTable
        The orders in the engine with their observation end.
    ledger : Ledger

    See Also
    --------
    crmlab.engine.loading.load : the implementation.

    Examples
    --------
    >>> import crmlab
    >>> orders, ledger = crmlab.load("orders.csv")
    >>> orders
    <OrderTable orders.csv: engine duckdb, observation end 2025-12-31 23:54:27, columns order_id, customer_id, order_time, amount, status, channel, region, product, category, quantity, line>
    >>> ledger.orders, ledger.excluded_rows
    (5246, 0)
    """
    if source is None:
        raise CrmlabInputError("load: no orders given (expected a path, a DataFrame or an engine table, got None)")
    return _loading.load(source, engine, columns=columns, observation_end=observation_end, timezone=timezone, decimal=decimal,
             dayfirst=dayfirst, now=now, sheet=sheet, returns=returns, history_start=history_start,
             lead_in_days=lead_in_days, cache=cache)


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
    crmlab.engine.connection.connect : the implementation.
    set_engine : connect and make it the notebook's engine.

    Examples
    --------
    >>> import crmlab
    >>> crmlab.connect("duckdb", threads=1)
    Engine(name='duckdb')
    """
    return _connection.connect(engine, **options)


def set_engine(engine=None, **options):
    """Choose the notebook's engine once; every analysis then runs there.

    Parameters
    ----------
    engine : "duckdb", "spark", Engine or SparkSession, optional
        A name (connected with ``options``), an :class:`~crmlab.engine.connection.Engine` from
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
    crmlab.engine.connection.set_engine : the implementation.

    Examples
    --------
    >>> import crmlab
    >>> crmlab.set_engine("duckdb")
    Engine(name='duckdb')
    >>> crmlab.get_engine().name
    'duckdb'
    """
    if engine is not None and not isinstance(engine, str) and _is_spark_session(engine):
        return _connection.set_engine(None, spark=engine, **options)
    return _connection.set_engine(engine, **options)


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
    crmlab.engine.connection.get_engine : the implementation.

    Examples
    --------
    >>> import crmlab
    >>> crmlab.get_engine("duckdb").name
    'duckdb'
    """
    return _connection.get_engine(engine)


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
    return _values.set_timezone(timezone)


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
    return _values.get_timezone()
