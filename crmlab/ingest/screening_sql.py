"""Screening an order export inside DuckDB: the common, unambiguous forms typed in SQL.

Row-level screening (:func:`crmlab.ingest.screening.screen_lines`) is the reference: it
reads every form an export can hold (offsets, slash dates, ``¥1,234.50``, decimal
commas). Most lines of a real export hold none of that: an ISO time, a plain number.
:func:`screen_export` types those lines here, in one parallel SQL pass that never leaves
DuckDB, and hands only the others to ``screen_lines`` (in chunks, bounded memory), so
both kinds get exactly the same values and reasons:

* a text time is typed in SQL only when it is ``YYYY-MM-DD[ HH:MM[:SS[.ffffff]]]`` with a
  year in 1700–2259 (inside pandas' nanosecond range) and DuckDB reads it; timestamp
  columns are typed as they are (with a zone: converted to the store zone);
* a text number only when it is ``[+-]digits[.digits]`` with at most 9 + 6 digits (at most
  15 significant digits, so any two correct parsers give the same double); numeric
  columns as they are;
* text is trimmed of the same whitespace as pandas/pyarrow (:data:`WHITESPACE`, tested
  over every code point); a status is mapped once per distinct value by the reference code.

Blank values are typed in SQL too (they fail the same way in both). The hash that finds
exact duplicate lines is computed here for every line, from the raw values.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from crmlab.engine.frames import register_lines
from crmlab.ingest import columns as _cols
from crmlab.ingest import tables as _io
from crmlab.ingest.screening import (OPTIONAL, Export, check_columns, decide_dayfirst, open_export, screen_lines,
                                     status_of)
from crmlab.schema import ORDER_ALIASES, PII_COLUMNS, CrmlabInputError

__all__ = ["WHITESPACE", "raw_lines", "screen_export", "quote"]

#: What pyarrow's ``utf8_trim_whitespace`` (pandas' ``str.strip`` on Arrow strings) removes.
WHITESPACE = "".join(map(chr, [*range(0x09, 0x0E), *range(0x1C, 0x21), 0x85, 0xA0, 0x1680,
                               *range(0x2000, 0x200B), 0x2028, 0x2029, 0x202F, 0x205F, 0x3000]))
_BLANK = r"[\t-\r\x{1c}-\x{20}\x{85}\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}]"
_EDGE = f"^{_BLANK}|{_BLANK}$"
_YEAR = r"(?:1[7-9]\d\d|2[01]\d\d|22[0-5]\d)"
_ISO_TIME = _YEAR + r"-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])(?:[ T](?:[01]\d|2[0-3]):[0-5]\d(?::[0-5]\d(?:\.\d{1,6})?)?)?"
_NUMBER = {".": r"[+-]?\d{1,9}(?:\.\d{1,6})?", ",": r"[+-]?\d{1,9}(?:,\d{1,6})?"}
_TIME_TYPES = ("TIMESTAMP", "TIMESTAMP_NS", "TIMESTAMP_MS", "TIMESTAMP_S", "TIMESTAMP WITH TIME ZONE")
_NUMERIC_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER",
                  "UBIGINT", "FLOAT", "DOUBLE")


def quote(name: str) -> str:
    """A SQL identifier."""
    return '"' + str(name).replace('"', '""') + '"'


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


class _Columns:
    """SQL for one raw relation: each column's typed value and whether SQL could type it."""

    def __init__(self, types: dict[str, str], zone: str, decimal: str) -> None:
        self.types, self.zone, self.decimal = types, zone, decimal

    def _raw(self, c: str) -> str:
        return quote(c) if self.types[c] == "VARCHAR" else f"CAST({quote(c)} AS VARCHAR)"

    def text(self, c: str) -> str:
        raw = self._raw(c)
        # trim() with a character set is slow (~0.4 µs a value): only where an edge is blank
        return f"CASE WHEN regexp_matches({raw}, {_lit(_EDGE)}) THEN trim({raw}, {_lit(WHITESPACE)}) ELSE {raw} END"

    @staticmethod
    def blank(text: str) -> str:
        """Whether the text ``text`` is missing or blank."""
        return f"nullif(trim({text}, {_lit(WHITESPACE)}), '') IS NULL"

    def time(self, c: str) -> tuple[str, bool]:
        """(value, whether a missing value may be the reference's to read) for a time column."""
        t = self.types[c]
        if t == "TIMESTAMP WITH TIME ZONE":
            return f"CAST(timezone({_lit(self.zone)}, {quote(c)}) AS TIMESTAMP)", False
        if t in _TIME_TYPES:
            return f"CAST({quote(c)} AS TIMESTAMP)", False
        # the common case first: a raw value that is an ISO time has no blank edge to trim
        raw, s = self._raw(c), self.text(c)
        value = (f"CASE WHEN regexp_full_match({raw}, {_lit(_ISO_TIME)}) THEN TRY_CAST({raw} AS TIMESTAMP) "
                 f"WHEN regexp_full_match({s}, {_lit(_ISO_TIME)}) THEN TRY_CAST({s} AS TIMESTAMP) END")
        return value, True

    def number(self, c: str) -> tuple[str, bool]:
        if self.types[c] in _NUMERIC_TYPES:
            return f"CAST({quote(c)} AS DOUBLE)", False
        raw, s = self._raw(c), self.text(c)

        def typed(v: str) -> str:
            plain = v if self.decimal == "." else f"replace({v}, ',', '.')"
            return f"WHEN regexp_full_match({v}, {_lit(_NUMBER[self.decimal])}) THEN CAST({plain} AS DOUBLE)"

        return f"CASE {typed(raw)} {typed(s)} END", True  # a plain number has no blank edge: tried as it is first


def _status_table(raw, rel: str, has_status: bool) -> str | None:
    """Each distinct raw status mapped by the reference code, as a temporary table."""
    if not has_status:
        return None
    # as text, whatever the column's type (a numeric status code is read as its text, as the
    # reference reads it)
    distinct = raw.execute(f"SELECT DISTINCT CAST(status AS VARCHAR) AS status FROM {rel}").df()["status"]
    status, unknown = status_of(distinct)
    m = pd.DataFrame({"raw": pd.array(distinct.astype(object).where(distinct.notna(), None), dtype="string"),
                      "mapped": pd.array(status.astype(object).where(~unknown, None), dtype="string")})
    raw.register("crmlab_status_map_df", m)
    raw.execute("CREATE OR REPLACE TEMP TABLE crmlab_status_map AS SELECT * FROM crmlab_status_map_df")
    raw.unregister("crmlab_status_map_df")
    return "crmlab_status_map"


def _typed_lines(cols: _Columns, names: list[str], rel: str, now: pd.Timestamp, keep_pii: bool,
                 status_map: str | None) -> str:
    """A query of every line, typed in SQL where it can be, with ``typed`` saying where.

    A value is typed in SQL when SQL read it or it is blank (both read it the same way); the
    test reads each value once, as computed (``v_*``), and the raw text only where it is missing."""
    numbers = ["amount"] if "amount" in names else ["quantity", "unit_price"]
    numbers += ["quantity"] if "quantity" in names and "quantity" not in numbers else []  # optional column
    parsed = {"order_time": cols.time("order_time"), **{c: cols.number(c) for c in numbers}}
    inner = ["r.__row AS row", f"CAST(hash({', '.join('r.' + quote(c) for c in names)}) >> 1 AS BIGINT) AS hash",
             f"{cols.text('customer_id')} AS customer_id", f"{cols.text('order_id')} AS order_id",
             "coalesce(sm.mapped, '?') AS status" if status_map else "'paid' AS status"]
    inner += [f"{v} AS v_{c}" for c, (v, _) in parsed.items()]
    checks = [f"(v_{c} IS NOT NULL OR {cols.blank(f'r_{c}')})" for c, (_, text) in parsed.items() if text]
    typed = "CASE WHEN " + " AND ".join(f"v_{c} IS NOT NULL" for c in parsed) + " THEN TRUE ELSE " + (
        " AND ".join(checks) or "TRUE") + " END"  # the raw text read only where a value is missing
    amount = "v_amount" if "amount" in names else "(v_quantity * v_unit_price)"
    middle = ["row", "hash", "customer_id", "order_id", "v_order_time AS order_time",
              f"CAST({amount} AS DOUBLE) AS amount", "status"]
    extra = []
    for c in OPTIONAL + (PII_COLUMNS if keep_pii else ()):
        if c in names:
            if c != "quantity":
                inner.append(f"{cols.text(c)} AS {quote(c)}")
            middle.append(f"v_quantity AS {quote(c)}" if c == "quantity" else quote(c))
            extra.append(quote(c))
    inner += [f"{cols._raw(c)} AS r_{c}" for c, (_, text) in parsed.items() if text]
    join = (f" LEFT JOIN {status_map} sm ON CAST(r.status AS VARCHAR) IS NOT DISTINCT FROM sm.raw"
            if status_map else "")
    reason = f"""CASE
        WHEN nullif(customer_id, '') IS NULL THEN 'missing_customer_id'
        WHEN nullif(order_id, '') IS NULL THEN 'missing_order_id'
        WHEN order_time IS NULL THEN 'unparseable_order_time'
        WHEN order_time > TIMESTAMP '{now.isoformat(sep=' ')}' THEN 'in_the_future'
        WHEN status = '?' THEN 'unknown_status'
        WHEN isinf(amount) THEN 'non_finite_amount'
        WHEN amount IS NULL OR isnan(amount) THEN 'non_numeric_amount'
        WHEN status = 'paid' AND amount < 0 THEN 'negative_amount_on_paid_order'
        END"""
    return (f"SELECT row, {reason} AS reason, hash, customer_id, order_id, order_time, amount, "
            f"CASE WHEN status = '?' THEN 'paid' ELSE status END AS status, {', '.join(extra + ['typed'])} "
            f"FROM (SELECT {', '.join(middle)}, {typed} AS typed FROM (SELECT {', '.join(inner)} FROM {rel} r{join}))")


def screen_export(raw, rel: str, out: str, *, zone, tzname: str, now: pd.Timestamp, decimal: str, dayfirst,
                  keep_pii: bool, where: str, chunk_rows: int) -> int:
    """Screen the raw lines of relation ``rel`` (canonical column names, ``__row``) into the
    DuckDB table ``out`` (the columns :func:`screen_lines` returns). Returns the number of
    lines the reference code screened (those SQL could not type)."""
    types = {r[0]: r[1] for r in raw.execute(f"DESCRIBE SELECT * FROM {rel}").fetchall()}
    names = [c for c in types if c != "__row"]
    cols = _Columns(types, tzname, decimal)
    status_map = _status_table(raw, rel, "status" in names)
    raw.execute(f"CREATE TEMP TABLE {out} AS {_typed_lines(cols, names, rel, now, keep_pii, status_map)}")
    n_slow = raw.execute(f"SELECT count(*) FROM {out} WHERE NOT typed").fetchone()[0]
    if n_slow:
        _screen_slow(raw, rel, out, types, chunk_rows, dayfirst=dayfirst, where=where, zone=zone, now=now,
                     decimal=decimal, keep_pii=keep_pii)
    raw.execute(f"ALTER TABLE {out} DROP COLUMN typed")
    return int(n_slow)


def _screen_slow(raw, rel: str, out: str, types: dict, chunk_rows: int, *, dayfirst, where: str,
                 **screen) -> None:
    """The lines SQL could not type, through the reference code in chunks (one query each:
    a DuckDB result cannot stay open while the connection inserts)."""
    raw.execute(f"""CREATE OR REPLACE TEMP TABLE crmlab_slow AS
        SELECT r.*, o.hash AS __hash, row_number() OVER (ORDER BY r.__row) - 1 AS __k
        FROM {rel} r JOIN {out} o ON r.__row = o.row AND NOT o.typed ORDER BY r.__row""")
    try:
        if dayfirst is None and types["order_time"] not in _TIME_TYPES:
            # slash dates are never typed in SQL: the reference sees all of them at once
            times = raw.execute("SELECT order_time FROM crmlab_slow ORDER BY __k").df()["order_time"]
            dayfirst = decide_dayfirst(times, None, where)
        n = raw.execute("SELECT count(*) FROM crmlab_slow").fetchone()[0]
        for i in range(0, n, chunk_rows):
            df = raw.execute(f"SELECT * EXCLUDE (__k) FROM crmlab_slow WHERE __k >= {i} AND __k < {i + chunk_rows} "
                             "ORDER BY __k").fetch_arrow_table().to_pandas(types_mapper=_arrow_strings)
            rows, hashes = df.pop("__row").to_numpy(np.int64), df.pop("__hash").to_numpy(np.int64)
            lines = screen_lines(df, rows, dayfirst=dayfirst, where=where, hashes=hashes, **screen)
            raw.register("crmlab_slow_chunk", pa.Table.from_pandas(lines, preserve_index=False))
            raw.execute(f"INSERT INTO {out} BY NAME SELECT *, TRUE AS typed FROM crmlab_slow_chunk")
            raw.unregister("crmlab_slow_chunk")
        raw.execute(f"DELETE FROM {out} WHERE NOT typed")
    finally:
        raw.execute("DROP TABLE IF EXISTS crmlab_slow")


def _parquet_raw(raw, path: str, columns, rel: str) -> Export:
    """A Parquet export as a view (nothing copied): its columns under their crmlab names."""
    import pyarrow.parquet as pq

    name = _io._short(_io._name(path))
    try:
        found = [str(c) for c in pq.read_schema(path).names]
    except Exception as e:  # unreadable: report one line
        raise CrmlabInputError(f"{name}: cannot read file ({type(e).__name__}: {_io._short(e, 200)})") from None
    _io._check_width(len(found), name)
    probe = pd.DataFrame([range(len(found))], columns=[c.strip().lstrip("\ufeff") for c in found])
    mapped, notes, origin = _cols._map_columns(probe, _cols.parse_columns(columns), ORDER_ALIASES, name)
    check_columns(mapped, name, [c.strip().lstrip("\ufeff") for c in found])
    sel = ", ".join(f"{quote(found[int(mapped[c].iloc[0])])} AS {quote(c)}" for c in mapped.columns)
    raw.execute(f"CREATE OR REPLACE TEMP VIEW {rel} AS SELECT file_row_number AS __row, {sel} "
                f"FROM read_parquet({_lit(path)}, file_row_number = true)")
    return Export(name, _io._sha256(path), origin, notes)


def raw_lines(raw, source, columns, chunk_rows: int, rel: str, sheet: str | None = None) -> tuple[Export, int]:
    """The export as DuckDB relation ``rel``: ``__row`` (0-based line number) and the columns
    under their crmlab names (a Parquet file is read in place; other sources are copied in
    chunks, text as text). Returns the export's description and its number of lines."""
    path = None if isinstance(source, pd.DataFrame) else _io.check_file(source)
    if path and Path(path).suffix.lower() in (".parquet", ".pq"):
        ex = _parquet_raw(raw, path, columns, rel)
    elif isinstance(source, pd.DataFrame):  # in memory already: into DuckDB through Arrow in one pass, no chunks
        ex = open_export(source, columns, max(len(source), 1), sheet)
        register_lines(raw, next(ex.chunks), rel)
    else:
        ex = open_export(source, columns, chunk_rows, sheet)
        n = 0
        for chunk in ex.chunks:
            chunk = chunk.reset_index(drop=True)
            for c in chunk.columns:
                if chunk[c].dtype == object:
                    chunk[c] = chunk[c].astype("string[pyarrow]")
            chunk.insert(0, "__row", np.arange(n, n + len(chunk), dtype=np.int64))
            raw.register("crmlab_raw_chunk", pa.Table.from_pandas(chunk, preserve_index=False))
            verb = f"CREATE OR REPLACE TEMP TABLE {rel} AS" if n == 0 else f"INSERT INTO {rel} BY NAME"
            raw.execute(f"{verb} SELECT * FROM crmlab_raw_chunk")
            raw.unregister("crmlab_raw_chunk")
            n += len(chunk)
    return ex, int(raw.execute(f"SELECT count(*) FROM {rel}").fetchone()[0])


def _arrow_strings(t):
    import pyarrow as pa

    return pd.StringDtype("pyarrow") if t in (pa.string(), pa.large_string()) else None
