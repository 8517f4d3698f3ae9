"""Order tables in the engine: a validated export, a clean Parquet file, or an engine table.

:class:`OrderTable` is what every analysis scans: an Ibis table with one row per order
(``customer_id`` text, ``order_id``, ``order_time`` store-local timestamp, ``amount``,
``status``, ``line`` = the file row of the order's first line, used to break ties between
orders placed at the same moment (order by ``order_time, line``), and the optional ``channel``, ``region``, ``product``,
``category``, ``quantity``), the observation end and the engine it lives in.

Sources (:func:`order_table`):

* a DataFrame from :func:`crmlab.ingest.readers.load_orders` (validated, with its ledger);
* a clean Parquet file or directory written by crmlab (:func:`write_clean`), whose
  metadata carries the observation end, the ledger and the customers' credits (unmatched
  reversal lines, :attr:`OrderTable.credits`): read directly, not revalidated;
* ``duckdb:FILE.duckdb:TABLE`` or ``spark:DB.TABLE``: a table already in an engine, with
  the clean columns (the warehouse is trusted; its row count is the ledger).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from crmlab.engine.connection import Engine, get_engine
from crmlab.engine.frames import registered
from crmlab.ingest.tables import _listed, _short
from crmlab.ingest.values import parse_observation_end
from crmlab.schema import CrmlabInputError
from crmlab.settings import Settings, current

__all__ = ["OrderTable", "order_table", "write_clean", "read_clean_ledger", "read_clean_credits", "settings_for",
           "CLEAN_COLUMNS", "OPTIONAL_COLUMNS", "CREDIT_COLUMNS"]

CLEAN_COLUMNS = ("customer_id", "order_id", "order_time", "amount", "status", "line")
OPTIONAL_COLUMNS = ("channel", "region", "product", "category", "quantity")
_MARK = b"crmlab_clean"
#: the Parquet key-value metadata key of the customers' credits in a clean file (JSON, by column)
_CREDITS_KEY = b"crmlab_credits"
#: the columns of :attr:`OrderTable.credits` (:func:`crmlab.ingest.returns.customer_credits`)
CREDIT_COLUMNS = ("customer_id", "credit_lines", "credit_amount")


@dataclass(frozen=True)
class OrderTable:
    """Orders in an engine, with the observation end that every analysis honours."""

    table: Any
    observation_end: pd.Timestamp
    engine: Engine
    source: str = "<orders>"
    #: the settings the orders were read under (time zone, currency …): every result computed
    #: from them carries these as its context (default: the session's when the table is made)
    settings: Settings = field(default_factory=current)
    #: the end of the lead-in (store-local, naive): customers whose first paid order in the
    #: export is before it have a history the export does not show ("existing"): they are
    #: never new or first-time; cohorts and first-time counts start here (None: the export's start)
    history_start: pd.Timestamp | None = None
    #: the customer-level credits (issue 24): per customer ``customer_id, credit_lines,
    #: credit_amount`` of the reversal lines that matched no purchase (None: the export had none)
    credits: Any = None

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(self.table.columns)

    def has(self, column: str) -> bool:
        return column in self.table.columns

    def until(self, observation_end) -> "OrderTable":
        """The same orders seen as of an earlier (or explicit) observation end."""
        if observation_end is None:
            return self
        return replace(self, observation_end=parse_observation_end(observation_end, self.settings.timezone))

    def __repr__(self) -> str:
        # no query here: a repr must not scan the orders
        end = pd.Timestamp(self.observation_end)
        return (f"<OrderTable {self.source}: engine {self.engine.name}, observation end {end:%Y-%m-%d %H:%M:%S}, "
                f"columns {', '.join(self.columns)}>")


def settings_for(engine: Engine, timezone: str | None = None) -> Settings:
    """The session's settings with the engine the orders live in and the time zone they were
    read in (``None``: the session's): the context of every result computed from them."""
    return current().replace(engine=engine.name, timezone=timezone)


def _frame_for_engine(orders: pd.DataFrame) -> pd.DataFrame:
    df = pd.DataFrame({"customer_id": orders["customer_id"].astype(str).to_numpy(dtype=object),
                       "order_id": orders["order_id"].astype(str).to_numpy(dtype=object),
                       "order_time": orders["order_time"].to_numpy(dtype="datetime64[ns]"),
                       "amount": orders["amount"].to_numpy(dtype=float),
                       "status": orders["status"].astype(str).to_numpy(dtype=object)})
    df["line"] = range(len(df))
    for c in OPTIONAL_COLUMNS:
        if c in orders.columns:
            df[c] = orders[c].to_numpy(dtype=float) if c == "quantity" else orders[c].astype(object).where(
                orders[c].notna(), None).to_numpy()
    return df


def _frame_columns(orders: pd.DataFrame) -> dict[str, bool]:
    """The columns of a loader's frame the engine sees (name -> text whatever its dtype)."""
    cols = {"customer_id": True, "order_id": True, "order_time": False, "amount": False, "status": True}
    cols.update({c: c != "quantity" for c in OPTIONAL_COLUMNS if c in orders.columns})
    return cols


def _frame_view(columns: dict[str, bool]):
    """The SELECT that types a registered frame as the engine's orders: text, TIMESTAMP
    (microseconds, what every other source gives), DOUBLE."""
    def view(name: str) -> str:
        typed = {"order_time": "CAST(order_time AS TIMESTAMP)", "amount": "CAST(amount AS DOUBLE)",
                 "quantity": "CAST(quantity AS DOUBLE)"}
        sel = [typed.get(c, f'CAST("{c}" AS VARCHAR)') + f' AS "{c}"' for c in columns]
        return f"SELECT {', '.join(sel[:5])}, line{''.join(', ' + x for x in sel[5:])} FROM {name}"
    return view


def frame_table(orders: pd.DataFrame, eng: Engine):
    """A loader's frame as an Ibis table in ``eng``: registered once (Arrow, no copy in DuckDB)
    and reused while the frame is unchanged (:func:`crmlab.engine.frames.registered`)."""
    cols = _frame_columns(orders)
    return registered(orders, eng, cols, view=_frame_view(cols),
                      spark=lambda: eng.register(_frame_for_engine(orders), "crmlab_orders"))


def order_table(orders, engine: str | Engine | None = None, observation_end=None) -> OrderTable:
    """The orders as an :class:`OrderTable` in ``engine`` (default: :func:`get_engine`).

    Parameters
    ----------
    orders : OrderTable, DataFrame, or str
        An OrderTable (returned as is, or seen as of ``observation_end``); a DataFrame from
        :func:`crmlab.ingest.readers.load_orders`; a clean Parquet path written by :func:`write_clean`;
        ``duckdb:FILE:TABLE`` or ``spark:DB.TABLE``.
    observation_end : optional
        Overrides the source's observation end (a bare date is the end of that day).
    """
    if isinstance(orders, OrderTable):
        if engine is not None and get_engine(engine).name != orders.engine.name:
            raise ValueError(f"these orders live in {orders.engine.name}, not {get_engine(engine).name}")
        return orders.until(observation_end)
    eng = get_engine(engine)
    if isinstance(orders, pd.DataFrame):
        end = orders.attrs.get("observation_end")
        if end is None:
            end = orders["order_time"].max()
        table = frame_table(orders, eng)
        ot = OrderTable(table, pd.Timestamp(end), eng, orders.attrs.get("source", "<DataFrame>"),
                        settings_for(eng, orders.attrs.get("timezone")))
        return ot.until(observation_end)
    return _from_path(str(orders), eng).until(observation_end)


def _from_path(spec: str, eng: Engine) -> OrderTable:
    if spec.startswith("duckdb:") or spec.startswith("spark:"):
        kind, _, rest = spec.partition(":")
        if kind != eng.name:
            raise CrmlabInputError(f"{spec}: a {kind} table needs --engine {kind}")
        if kind == "duckdb":
            path, _, name = rest.rpartition(":")
            if not path or not name or not os.path.isfile(path):
                raise CrmlabInputError(f"{spec}: expected duckdb:FILE.duckdb:TABLE with an existing file")
            db = f"crmlab_src_{abs(hash(os.path.abspath(path))) % 10**8}"
            try:
                attached = {r[0] for r in eng.con.con.execute("SELECT database_name FROM duckdb_databases()").fetchall()}
                if db not in attached:
                    eng.con.attach(path, name=db, read_only=True)
            except Exception as e:  # not a DuckDB file, locked by a writer, newer format
                raise CrmlabInputError(f"{spec}: cannot open {os.path.basename(path)} as a DuckDB database "
                                       f"({type(e).__name__}: {_short(e, 160)})") from None
            tables = [r[0] for r in eng.con.con.execute(
                "SELECT table_name FROM duckdb_tables() WHERE database_name = ? UNION ALL "
                "SELECT view_name FROM duckdb_views() WHERE database_name = ? ORDER BY 1", [db, db]).fetchall()]
            if name not in tables:
                raise CrmlabInputError(f"{spec}: no table {_short(name)!r} in {os.path.basename(path)} "
                                       f"(tables: {_listed(tables) or 'none'})")
            table = eng.con.table(name, database=db)
        else:
            db, _, name = rest.rpartition(".")
            try:
                table = eng.con.table(name, database=db or None)
            except Exception as e:  # no such table or database
                raise CrmlabInputError(f"{spec}: cannot read the table ({type(e).__name__}: "
                                       f"{_short(e, 160)})") from None
        missing = [c for c in CLEAN_COLUMNS if c not in table.columns and c != "line"]
        if missing:
            raise CrmlabInputError(f"{spec}: missing column(s) {', '.join(missing)} (columns found: "
                                   f"{_listed(list(table.columns))})")
        _check_types(spec, table)
        if "line" not in table.columns:
            table = table.mutate(line=table.order_id.hash())
        end = eng.to_pandas(table.order_time.max().name("end").as_table())["end"].iloc[0]
        return OrderTable(table, pd.Timestamp(end), eng, spec, settings_for(eng))
    meta = read_clean_ledger(spec)
    if meta is None:
        raise CrmlabInputError(f"{os.path.basename(spec)}: not a clean file written by crmlab")
    table = eng.con.read_parquet(spec)
    credits = read_clean_credits(spec)
    return OrderTable(table, pd.Timestamp(meta["observation_end"]), eng, meta.get("file", os.path.basename(spec)),
                      settings_for(eng, meta.get("timezone")),
                      credits=None if credits is None else eng.register(credits, "crmlab_credits"))


def _check_types(spec: str, table) -> None:
    """An engine table is trusted for its rows, not for its types: text amounts or times
    would fail deep inside an analysis. One line naming the column and its type instead."""
    want = {"order_time": ("timestamp", lambda t: t.is_timestamp()),
            "amount": ("number", lambda t: t.is_numeric()),
            "customer_id": ("text", lambda t: t.is_string()),
            "order_id": ("text", lambda t: t.is_string()),
            "status": ("text", lambda t: t.is_string())}
    schema = table.schema()
    for col, (kind, ok) in want.items():
        if not ok(schema[col]):
            raise CrmlabInputError(
                f"{spec}: column '{col}' is {schema[col]}, expected {kind}; an engine table is read as it is: "
                "load the export with `crmlab validate --orders EXPORT --clean-out clean.parquet` or cast the column")


def _credits_text(o: OrderTable) -> str | None:
    """The customers' credits as compact JSON by column (None: the export had none)."""
    if o.credits is None:
        return None
    c = o.engine.to_pandas(o.credits.select(*CREDIT_COLUMNS)).sort_values("customer_id", kind="stable")
    return json.dumps({"columns": {"customer_id": c["customer_id"].astype(str).tolist(),
                                   "credit_lines": [int(x) for x in c["credit_lines"]],
                                   "credit_amount": [float(x) for x in c["credit_amount"]]}},
                      ensure_ascii=False, separators=(",", ":"))


def write_clean(orders, ledger, path: str) -> str:
    """Write validated orders (an :class:`OrderTable`, or a DataFrame from
    :func:`crmlab.ingest.readers.load_orders`) as Parquet (unsorted: sorting 10⁸ orders costs more than
    any reader gains; order by ``order_time, line``), with the ledger in its metadata, from
    the engine (DuckDB writes in parallel; Spark's rows are streamed in batches);
    :func:`order_table` reads it back without validating again. Returns ``path``.

    The customers' credits (:attr:`OrderTable.credits`: reversal lines that matched no purchase,
    one row per customer) travel in the same file, as JSON in its key-value metadata
    (``crmlab_credits``; :func:`read_clean_credits`): one file, the one the user named."""
    o = orders if isinstance(orders, OrderTable) else order_table(orders, "duckdb")
    meta = dict(ledger.to_dict())
    meta["observation_end"] = str(o.observation_end)
    cols = [c for c in CLEAN_COLUMNS + OPTIONAL_COLUMNS if o.has(c)]
    expr = o.table.select(*cols)
    kvs = {_MARK: json.dumps(meta, ensure_ascii=False)}
    credits = _credits_text(o)
    if credits is not None:
        kvs[_CREDITS_KEY] = credits
    if o.engine.name == "duckdb":  # TIMESTAMP is microseconds in DuckDB: what Spark 3.5 reads
        sql = o.engine.con.compile(expr)
        kv = "{" + ", ".join(k.decode() + ": '" + v.replace("'", "''") + "'" for k, v in kvs.items()) + "}"
        target = "'" + str(path).replace("'", "''") + "'"
        o.engine.con.con.execute(f"COPY ({sql}) TO {target} (FORMAT parquet, KV_METADATA {kv})")
        return path
    batches = o.engine.con.to_pyarrow_batches(expr)
    schema = batches.schema.with_metadata({k: v.encode() for k, v in kvs.items()})
    # microseconds: Spark 3.5 cannot read nanosecond Parquet timestamps
    with pq.ParquetWriter(path, schema, coerce_timestamps="us", allow_truncated_timestamps=True) as w:
        for b in batches:
            w.write_table(pa.Table.from_batches([b], schema=schema))
    return path


def _key_values(path: str) -> dict:
    """A Parquet file's key-value metadata, however big (many customers' credits can pass
    pyarrow's default 100 MB footer limit; the file is ours, so no limit is needed)."""
    with pq.ParquetFile(path, thrift_string_size_limit=2**31 - 1, thrift_container_size_limit=2**31 - 1) as f:
        return f.schema_arrow.metadata or {}


def read_clean_ledger(path: str) -> dict | None:
    """The ledger stored in a clean Parquet file, or None when the file is not one."""
    try:
        md = _key_values(path)
    except (OSError, ValueError):
        return None
    raw = md.get(_MARK)
    return json.loads(raw) if raw else None


def read_clean_credits(path: str) -> pd.DataFrame | None:
    """The customers' credits stored in a clean Parquet file (``customer_id``, ``credit_lines``,
    ``credit_amount``), or None when it has none (no unmatched credit, or a clean file written
    before crmlab kept them there)."""
    try:
        raw = _key_values(path).get(_CREDITS_KEY)
    except (OSError, ValueError):
        return None
    if not raw:
        return None
    cols = json.loads(raw)["columns"]
    return pd.DataFrame({"customer_id": pd.Series(cols["customer_id"], dtype=object),
                         "credit_lines": pd.Series(cols["credit_lines"], dtype="int64"),
                         "credit_amount": pd.Series(cols["credit_amount"], dtype="float64")})
