"""Connecting to an engine: embedded DuckDB (default) or PySpark, both through Ibis.

Every scan of the order table in crmlab is an Ibis expression; the backend is chosen at
the edge (the CLI's ``--engine``, a notebook's ``engine`` parameter, ``CRMLAB_ENGINE``)
and only small aggregates come back to pandas.

The default engine is the session's (:func:`crmlab.settings.current`: ``engine``,
``spark_master``, ``memory_limit``); :func:`set_engine` changes it, :func:`get_engine` never
does. ``CRMLAB_ENGINE`` and ``CRMLAB_MEMORY_LIMIT`` remain a fallback read while the session
keeps the default (the CLI and the report runner set them for the kernels they start).

``duckdb``
    In-process, with ``threads`` = the machine's cores, a memory limit (default
    :func:`default_memory_limit`: 40% of RAM, at most half of RAM less 2 GiB) and a temporary
    directory so big jobs spill to disk instead of failing.
``spark``
    An existing ``SparkSession`` (pass ``spark=``), Spark Connect when ``SPARK_REMOTE``
    is set, or a session crmlab starts (``local[*]`` by default, ``spark_master=`` to
    choose). Needs the ``crmlab[spark]`` extra and Java 17+. The session time zone is set
    to UTC so that store-local (naive) times round-trip unchanged.
"""
from __future__ import annotations

import itertools
import os
import re
import socket
import threading
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from crmlab.engine.scratch import keep, scratch_path
from crmlab.schema import CrmlabInputError
from crmlab.settings import DEFAULT, ENGINES, configure, current

__all__ = ["ENGINES", "Engine", "connect", "set_engine", "get_engine", "current_engine", "default_engine_name",
           "ENGINE_ENV", "MEMORY_ENV", "default_memory_limit", "memory_limit_of"]

#: environment variable naming the engine while the session keeps the default (the CLI's fallback)
ENGINE_ENV = "CRMLAB_ENGINE"
_names = itertools.count()


@dataclass(frozen=True)
class Engine:
    """An Ibis backend and its name (``"duckdb"`` or ``"spark"``)."""

    name: str
    con: Any = field(repr=False)

    def register(self, df: pd.DataFrame, prefix: str = "crmlab") -> Any:
        """Copy a pandas frame into the engine as a temporary table; return the Ibis table."""
        name = f"{prefix}_{os.getpid()}_{next(_names)}"
        if self.name == "duckdb":
            return self.con.create_table(name, obj=df, temp=True)
        import ibis

        # Spark: a temporary view made on first use (create_table would write a managed
        # table into ./spark-warehouse)
        return ibis.memtable(df)

    def to_pandas(self, expr) -> pd.DataFrame:
        """Execute an expression (a small aggregate) into pandas."""
        return self.con.to_pandas(expr)

    def to_parquet(self, expr, path: str) -> None:
        """Write an expression's rows to one Parquet file, from the engine."""
        if self.name == "duckdb":
            self.con.to_parquet(expr, path)
        else:  # Spark writes a directory of parts; one file is what users expect
            import pyarrow.parquet as pq

            pq.write_table(self.con.to_pyarrow(expr), path)


#: DuckDB's memory limit when neither ``memory_limit=`` nor this variable says otherwise:
#: :func:`default_memory_limit`.
MEMORY_ENV = "CRMLAB_MEMORY_LIMIT"
#: the smallest memory limit accepted (below it DuckDB fails to allocate even for a few orders)
MIN_MEMORY_MB = 64
#: the default limit's share of physical RAM ...
DEFAULT_MEMORY_SHARE = 0.4
#: ... and what it leaves of half of RAM, at least, for what DuckDB's limit does not count:
#: the Python process (~0.3 GiB with pandas, scipy, Ibis), results converted to pandas, Arrow
#: buffers in flight and the allocator's slack (docs/benchmarks.md: peak RSS was the limit plus
#: 0.6-1.1 GiB at 100M orders, where DuckDB fills any limit)
DEFAULT_HEADROOM = 2 * 2**30


def physical_memory() -> int:
    """The machine's physical RAM in bytes."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def default_memory_limit(total: int | None = None) -> str:
    """DuckDB's default memory limit on a machine with ``total`` bytes of RAM (default: this one's):
    ``min(40% of RAM, max(RAM / 2 - 2 GiB, 25% of RAM))``, in MiB (at least :data:`MIN_MEMORY_MB`).

    Chosen so that a command's peak RSS stays within half of RAM: 16 GiB gives a 6 GiB limit
    (peak RSS measured at most ~7.1 GiB, docs/benchmarks.md); 8 GiB gives 2 GiB; 4 GiB gives
    1 GiB; 64 GiB gives 25.6 GiB.

    Examples
    --------
    >>> default_memory_limit(16 * 2**30)
    '6144MiB'
    """
    total = physical_memory() if total is None else int(total)
    limit = min(DEFAULT_MEMORY_SHARE * total, max(total / 2 - DEFAULT_HEADROOM, total / 4))
    return f"{max(int(limit // 2**20), MIN_MEMORY_MB)}MiB"


def memory_limit_of(text: str | None) -> str:
    """``"600MB"``, ``"4GB"``, ``"1.5GiB"`` as DuckDB reads them, ``"40%"`` as that share of
    RAM; None: the session's ``memory_limit`` setting, else ``$CRMLAB_MEMORY_LIMIT``, else
    :func:`default_memory_limit`.

    Raises
    ------
    CrmlabInputError
        Anything else (naming the variable when the value came from it).
    """
    if text is None and current().memory_limit is not None:
        text = current().memory_limit
    where = "memory_limit" if text is not None else MEMORY_ENV
    if text is None and not os.environ.get(MEMORY_ENV):
        return default_memory_limit()
    text = str(text if text is not None else os.environ.get(MEMORY_ENV)).strip()
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(%|[KMGT]i?B)", text, flags=re.I)
    if not m or float(m.group(1)) <= 0 or (m.group(2) == "%" and float(m.group(1)) > 100):
        raise CrmlabInputError(f"{where} {text[:80]!r}: expected a size such as 600MB or 4GB, or a share of RAM "
                               "such as 40%")
    if m.group(2) == "%":
        return f"{max(int(float(m.group(1)) / 100 * physical_memory() / 2**20), MIN_MEMORY_MB)}MiB"
    unit = m.group(2).upper()
    size = float(m.group(1)) * (1024 if "I" in unit else 1000) ** ("KMGT".index(unit[0]) + 1)
    if size < MIN_MEMORY_MB * 10**6:
        raise CrmlabInputError(f"{where} {text!r}: too small; DuckDB needs at least {MIN_MEMORY_MB}MB")
    return f"{m.group(1)}{unit.replace('IB', 'iB')}"


def _spill_folder() -> str:
    """A spill folder of this process's own (two processes sharing one would overwrite each
    other's temporary files): DuckDB makes it only when it spills; removed when the process
    ends (:mod:`crmlab.engine.scratch`)."""
    return scratch_path("spill")


def _duckdb_settings(memory_limit: str | None, temp_directory: str | None, threads: int | None) -> dict:
    temp_directory = temp_directory or _spill_folder()
    return dict(threads=threads or os.cpu_count() or 1, memory_limit=memory_limit_of(memory_limit),
                temp_directory=temp_directory)


def _no_progress_bar(con) -> None:
    """No progress bars on a user's terminal (under Jupyter DuckDB refuses to change the
    setting without ipywidgets, and shows no bar there anyway)."""
    import duckdb

    try:
        con.execute("SET enable_progress_bar = false")
    except duckdb.Error:
        pass


def _duckdb(memory_limit: str | None, temp_directory: str | None, threads: int | None):
    import ibis

    con = ibis.duckdb.connect(**_duckdb_settings(memory_limit, temp_directory, threads))
    _no_progress_bar(con.con)
    return con


def local_duckdb(memory_limit: str | None = None, temp_directory: str | None = None, threads: int | None = None):
    """A plain DuckDB connection with crmlab's settings (reading exports for another engine)."""
    import duckdb

    con = duckdb.connect(config={k: str(v) for k, v in _duckdb_settings(memory_limit, temp_directory, threads).items()})
    _no_progress_bar(con)
    return con


_LOCAL_MASTER = r"local(?:\[(?:\*|[1-9]\d*)(?:,\s*[1-9]\d*)?\])?|local-cluster\[\d+,\s*\d+,\s*\d+\]"
#: seconds to wait for a Spark master's port before giving up (Spark itself retries for a minute)
MASTER_TIMEOUT = 3.0


def master_hosts(master: str) -> list[tuple[str, int]]:
    """The ``(host, port)`` pairs a Spark master URL points at (none for ``local[...]`` and
    ``yarn``), checked for shape.

    Raises
    ------
    CrmlabInputError
        A URL that is none of ``local``, ``local[N]``, ``local[*]``, ``spark://HOST:PORT[,HOST:PORT]``,
        ``yarn``, ``k8s://[https://]HOST:PORT``, ``mesos://HOST:PORT``.
    """
    text = str(master).strip()
    bad = CrmlabInputError(f"--spark-master {text[:80]!r}: expected local[*], local[N], spark://HOST:PORT, yarn or "
                           "k8s://HOST:PORT")
    if re.fullmatch(_LOCAL_MASTER, text) or text == "yarn":
        return []
    m = re.fullmatch(r"(spark|mesos|k8s)://(.+)", text)
    if not m:
        raise bad
    rest = re.sub(r"^https?://", "", m.group(2)) if m.group(1) == "k8s" else m.group(2)
    rest = rest.split("/", 1)[0]
    hosts = []
    for part in rest.split(","):
        hp = re.fullmatch(r"\[?([A-Za-z0-9._:-]+?)\]?:(\d{1,5})", part.strip())
        if not hp or not 0 < int(hp.group(2)) < 65536:
            raise bad
        hosts.append((hp.group(1), int(hp.group(2))))
    return hosts


def check_master(master: str | None, timeout: float = MASTER_TIMEOUT) -> None:
    """Fail fast on an unreachable Spark master: a short TCP connect to its host:port (Spark
    would retry for about a minute and then print a Java stack trace)."""
    if not master:
        return
    hosts = master_hosts(master)
    errors = []
    for host, port in hosts:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                return
        except socket.timeout:
            errors.append(f"{host}:{port} timed out after {timeout:g} s")
        except OSError as e:
            errors.append(f"{host}:{port} {e.strerror or e}")
    if hosts:
        raise CrmlabInputError(f"--spark-master {master}: cannot reach the master ({'; '.join(errors)})")


#: seconds a session on a remote master may take to start (the JVM, then registering with the
#: master, which Spark retries for about a minute before failing with a Java stack trace)
SPARK_START_TIMEOUT = float(os.environ.get("CRMLAB_SPARK_START_TIMEOUT", "20"))


def _start(builder, master: str):
    """``builder.getOrCreate()`` bounded by :data:`SPARK_START_TIMEOUT` (a master that accepts
    the connection but never answers would hold the command for a minute or more)."""
    box: dict = {}

    def run():
        try:
            box["spark"] = builder.getOrCreate()
        except Exception as e:  # noqa: BLE001 - reported on one line below
            box["error"] = e

    # the JVM inherits stderr when it starts: its log (retries, Java stack traces) goes to a
    # file, and the command's own error stays one line
    log = scratch_path("spark", ".log")
    saved = os.dup(2)
    try:
        with open(log, "ab") as f:
            os.dup2(f.fileno(), 2)
        t = threading.Thread(target=run, name="crmlab-spark-start", daemon=True)
        t.start()
        t.join(SPARK_START_TIMEOUT)
    finally:
        os.dup2(saved, 2)
        os.close(saved)
    if t.is_alive() or "error" in box:
        log = keep(log)  # the message names it
    if t.is_alive():
        raise CrmlabInputError(f"--spark-master {master}: no Spark session after {SPARK_START_TIMEOUT:g} s (is a Spark "
                               f"master running there? CRMLAB_SPARK_START_TIMEOUT sets the wait; Spark's log: {log})")
    if "error" in box:
        e = box["error"]
        raise CrmlabInputError(f"--spark-master {master}: cannot start a Spark session ({type(e).__name__}: "
                               f"{' '.join(str(e).split())[:200]})") from None
    return box["spark"]


def _spark(spark, spark_master: str | None):
    import ibis

    if spark is None and spark_master:
        check_master(spark_master)

    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise CrmlabInputError("--engine spark: PySpark is not installed (pip install 'crmlab[spark]'; "
                               "Spark needs Java 17+)") from None
    if spark is None:
        remote = os.environ.get("SPARK_REMOTE")
        b = SparkSession.builder.appName("crmlab")
        if remote and not spark_master:
            b = b.remote(remote)
        else:
            b = (b.master(spark_master or "local[*]").config("spark.ui.enabled", "false")
                 .config("spark.sql.shuffle.partitions", str(max(2, 2 * (os.cpu_count() or 1))))
                 .config("spark.sql.execution.arrow.pyspark.enabled", "true")
                 .config("spark.ui.showConsoleProgress", "false")  # no progress bars on the CLI's stderr
                 .config("spark.driver.memory", os.environ.get("CRMLAB_SPARK_DRIVER_MEMORY", "4g")))
        spark = _start(b, spark_master) if spark_master and master_hosts(spark_master) else b.getOrCreate()
        if not remote:
            spark.sparkContext.setLogLevel("ERROR")
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    return ibis.pyspark.connect(spark)


def default_engine_name() -> str:
    """The session's engine (:func:`crmlab.settings.current`); while it is the default,
    ``$CRMLAB_ENGINE`` when set."""
    name = current().engine
    if name == DEFAULT.engine:
        name = os.environ.get(ENGINE_ENV) or name
    return name


def connect(engine: str | None = None, *, spark=None, spark_master: str | None = None,
            memory_limit: str | None = None, temp_directory: str | None = None,
            threads: int | None = None) -> Engine:
    """Connect to ``engine`` (default: the session's, :func:`default_engine_name`): the one
    place an engine name becomes an engine.

    Parameters
    ----------
    engine : {"duckdb", "spark"}, optional
    spark : pyspark.sql.SparkSession, optional
        Use this session (implies ``engine="spark"``).
    spark_master : str, optional
        Master URL for a session crmlab starts (default: the session's ``spark_master``,
        else ``local[*]``).
    memory_limit, temp_directory, threads
        DuckDB settings (defaults: the session's ``memory_limit``, else ``$CRMLAB_MEMORY_LIMIT``,
        else :func:`default_memory_limit`; a spill folder under the temp dir; all cores).

    Returns
    -------
    Engine
        A new connection (the session's default is :func:`get_engine`'s).

    Examples
    --------
    >>> from crmlab.engine.connection import connect
    >>> connect("duckdb").name
    'duckdb'
    """
    if spark is not None:
        engine = "spark"
    engine = str(engine or default_engine_name()).strip().lower()
    if engine not in ENGINES:
        raise CrmlabInputError(f"--engine: choose from {', '.join(ENGINES)}, not {engine!r}")
    if engine == "duckdb":
        return Engine("duckdb", _duckdb(memory_limit, temp_directory, threads))
    return Engine("spark", _spark(spark, spark_master or current().spark_master))


#: connections made by :func:`set_engine` and :func:`get_engine`, by engine name (a cache of
#: open connections, not a setting: which one is the default is the session's ``engine``)
_connections: dict[str, Engine] = {}


def set_engine(engine: str | Engine | None = None, **kw) -> Engine:
    """Choose the session's engine once (e.g. at the top of a notebook): ``engine`` (a name,
    or an :class:`Engine`) becomes the default every analysis uses; ``spark_master`` and
    ``memory_limit`` are kept in the session's settings too. Returns the engine."""
    e = engine if isinstance(engine, Engine) else connect(engine, **kw)
    _connections[e.name] = e
    configure(engine=e.name, spark_master=kw.get("spark_master"), memory_limit=kw.get("memory_limit"))
    return e


def current_engine() -> Engine | None:
    """The session's engine if it is connected already, else None: never connects (for
    showing the notebook's settings)."""
    return _connections.get(default_engine_name())


def get_engine(engine: str | Engine | None = None) -> Engine:
    """``engine`` itself; by name, that engine's connection (made on first use, then kept);
    ``None``: the session's engine. The session's default engine is never changed: that is
    :func:`set_engine`'s job."""
    if isinstance(engine, Engine):
        return engine
    name = str(engine or default_engine_name()).strip().lower()
    if name not in _connections:
        _connections[name] = connect(name)
    return _connections[name]
