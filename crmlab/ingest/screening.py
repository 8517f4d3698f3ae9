"""Reading an order export in chunks, and screening lines on their own: the reference.

The row-level half of validation: each line's first failing reason among those that
need only the line itself (missing ids, unreadable time, a time in the future, unknown
status, unreadable or negative amount), and its typed values. :func:`screen_lines` reads
every form an export can hold; :mod:`crmlab.ingest.screening_sql` types the common forms
in DuckDB and hands it only the others. The set-level half (duplicates, order ids shared
by customers, the observation end, the roll-up of lines to orders) runs in the engine
(:mod:`crmlab.ingest.export`). CSV and Excel are read in chunks here (bounded memory).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import pandas as pd

from crmlab.ingest import columns as _cols
from crmlab.ingest import tables as _io
from crmlab.ingest import values as _v
from crmlab.schema import ORDER_ALIASES, PII_COLUMNS, STATUS_MAP, CrmlabInputError

__all__ = ["Export", "open_export", "mapped_chunks", "screen_lines", "ROW_REASONS", "CHUNK_ROWS"]

CHUNK_ROWS = 250_000  # lines screened at once: bounds the memory pandas needs
#: Row-level reasons in the order they are applied (a line gets the first that fits).
ROW_REASONS = ("missing_customer_id", "missing_order_id", "unparseable_order_time", "in_the_future",
               "unknown_status", "ambiguous_decimal", "non_finite_amount", "non_numeric_amount",
               "negative_amount_on_paid_order")
OPTIONAL = ("channel", "region", "product", "category", "quantity")
_REQUIRED = ["customer_id", "order_id", "order_time"]
_ALTERNATIVES = [("amount",), ("quantity", "unit_price")]


@dataclass
class Export:
    """An order export opened for chunked reading: its name, sha256, header notes and chunks."""

    name: str
    sha256: str | None
    origin: dict
    warnings: list[str] = field(default_factory=list)
    chunks: Iterator[pd.DataFrame] | None = None
    time_column: Iterator[pd.Series] | None = None  # a second pass over order_time only (slash dates)


def _arrow_strings(t):
    """Keep Parquet text as Arrow-backed strings (no Python objects per value)."""
    import pyarrow as pa

    return pd.StringDtype("pyarrow") if t in (pa.string(), pa.large_string()) else None


def line_hash(df: pd.DataFrame) -> np.ndarray:
    """A 64-bit hash of each raw line (all its columns), computed by DuckDB in C++.

    Exact duplicate lines are lines with equal hashes: for two different lines to collide
    is a 2⁻⁶⁴ event (about 3 × 10⁻⁴ for any collision among 10⁸ lines)."""
    import duckdb
    import pyarrow as pa

    con = duckdb.connect()
    try:
        con.register("chunk", pa.Table.from_pandas(df, preserve_index=False))
        cols = ", ".join('"' + str(c).replace('"', '""') + '"' for c in df.columns)
        h = con.execute(f"SELECT hash({cols}) AS h FROM chunk").fetchnumpy()["h"]
    finally:
        con.close()
    return np.asarray(h, dtype=np.uint64).view(np.int64)


def _csv_chunks(path: str, header_ok, chunk_rows: int, usecols=None) -> tuple[Iterator[pd.DataFrame], list[str]]:
    with open(path, "rb") as f:
        head = f.read(1 << 16)
    encoding = _io._encoding(head)
    text = head.decode(encoding, errors="replace").lstrip("\ufeff")
    sep, skip = _io._sniff(text, header_ok)
    _io._head_width(text, sep, skip, _io._name(path))
    kw = dict(dtype=str, keep_default_na=False, na_values=[""], engine="c", sep=sep, skiprows=skip or None,
              chunksize=chunk_rows, usecols=usecols)
    notes = [f"header found on row {skip + 1}; the {skip} title row(s) above it were skipped"] if skip else []

    def gen():
        try:
            yield from pd.read_csv(path, encoding=encoding, **kw)
        except UnicodeDecodeError:
            if encoding.startswith("utf-16"):
                raise
            yield from pd.read_csv(path, encoding="gb18030", **kw)
    return gen(), notes


def _raw_chunks(source, header_ok, chunk_rows: int,
                sheet: str | None = None) -> tuple[Iterator[pd.DataFrame], str, str | None, list[str]]:
    """Raw chunks (columns as in the file), the input's name, sha256 and header notes."""
    if not isinstance(source, pd.DataFrame):
        path = _io.check_file(source)  # never a device, FIFO or folder
    if isinstance(source, pd.DataFrame) or Path(path).suffix.lower() in _io.EXCEL_SUFFIXES:
        df, name, sha = _io.read_table(source, header_ok=header_ok, sheet=sheet)
        notes = list(df.attrs.get("crmlab_notes", []))
        return iter([df.iloc[i:i + chunk_rows] for i in range(0, max(len(df), 1), chunk_rows)]), name, sha, notes
    name = _io._short(_io._name(path.rstrip("/\\")) or path)
    try:
        if Path(path).suffix.lower() in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            pf = pq.ParquetFile(path)
            gen = (b.to_pandas(types_mapper=_arrow_strings) for b in pf.iter_batches(batch_size=chunk_rows))
            notes: list[str] = []
            sha = _io._sha256(path)
        else:
            sha = _io._sha256(path, lines=True)  # before parsing: a huge line is refused unread
            gen, notes = _csv_chunks(path, header_ok, chunk_rows)
        first = next(gen, None)
    except CrmlabInputError:
        raise
    except Exception as e:  # unreadable: report one line
        raise CrmlabInputError(f"{name}: cannot read file ({type(e).__name__}: {_io._short(e, 200)})") from None
    if first is not None:
        _io._check_width(len(first.columns), name)

    def chain():
        if first is not None:
            yield first
        yield from gen
    return chain(), name, sha, notes


def check_columns(mapped: pd.DataFrame, name: str, found: list[str]) -> None:
    """The required columns are there (after mapping), else one line naming what was found."""
    _cols._require(mapped, _REQUIRED, name, found)
    if "amount" not in mapped.columns and not {"quantity", "unit_price"} <= set(mapped.columns):
        raise CrmlabInputError(
            f"{name}: missing column 'amount' (or 'quantity' and 'unit_price') (columns found: {_io._listed(found)})")


def open_export(source, columns=None, chunk_rows: int = CHUNK_ROWS, sheet: str | None = None) -> Export:
    """Open an order export: find the header, map the columns, check the required ones.

    Raises
    ------
    CrmlabInputError
        Missing or unreadable file, a mapped column not found, a required column absent.
    """
    chunks, name, sha, notes, origin = mapped_chunks(source, columns, ORDER_ALIASES, _REQUIRED, chunk_rows, sheet,
                                                     check_columns, _ALTERNATIVES)
    return Export(name, sha, origin, notes, chunks)


def mapped_chunks(source, columns, aliases, required, chunk_rows: int, sheet: str | None,
                  check: Callable[[pd.DataFrame, str, list[str]], None], alternatives=()):
    """The chunks of an export under their crmlab column names: the header found, the columns
    mapped (``columns`` first, then ``aliases``), the first chunk's checked by
    ``check(mapped, name, columns found)``. Returns the chunks, the file's name, its SHA-256,
    the notes (reading and mapping) and where each column came from."""
    cols = _cols.parse_columns(columns)
    header_ok = _cols._header_test(cols, aliases, required, alternatives)
    raw, name, sha, notes = _raw_chunks(source, header_ok, chunk_rows, sheet)
    first = next(raw, None)
    if first is None:
        raise CrmlabInputError(f"{name}: no rows")
    first.columns = [str(c).strip().lstrip("\ufeff") for c in first.columns]
    found = list(first.columns)
    mapped_first, mapping_notes, origin = _cols._map_columns(first, cols, aliases, name)
    check(mapped_first, name, found)

    def chunks():
        yield mapped_first
        for c in raw:
            c.columns = found
            yield _cols._map_columns(c, cols, aliases, name)[0]
    return chunks(), name, sha, notes + mapping_notes, origin


def decide_dayfirst(times: pd.Series, dayfirst: bool | None, where: str) -> bool | None:
    """Day-first or month-first for the slash dates of a whole time column (None: none there)."""
    if dayfirst is not None or pd.api.types.is_datetime64_any_dtype(times):
        return dayfirst
    s = _v._text(times).reset_index(drop=True)
    slash = _v._flag(s.str.contains(_v._DMY_TEST_RE, regex=True))
    if not slash.any():
        return None
    return _v._infer_dayfirst(s[slash], where)


def status_of(raw: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """crmlab statuses of raw status values (blank: paid) and a mask of unknown ones."""
    raw_status = _v._text(raw)
    status = raw_status.str.lower().map(STATUS_MAP)
    status = status.where(raw_status.notna() & (raw_status != ""), "paid")
    unknown = status.isna().to_numpy()
    return status.fillna("paid").astype(str), unknown


def screen_lines(df: pd.DataFrame, rows, *, zone, dayfirst: bool | None, decimal: str,
                 now: pd.Timestamp, where: str, keep_pii: bool = False, hashes=None) -> pd.DataFrame:
    """One chunk's lines, typed, with ``row`` (0-based in the file: ``rows``, or the first
    line's number), ``reason`` (the first row-level reason that applies, else null) and
    ``hash`` (of the raw line: ``hashes``, else computed here)."""
    n = len(df)
    rows = np.arange(rows, rows + n, dtype=np.int64) if np.ndim(rows) == 0 else np.asarray(rows, np.int64)
    df = df.reset_index(drop=True)
    reason = np.full(n, None, dtype=object)

    def mark(name: str, mask) -> None:
        m = np.asarray(mask, dtype=bool) & (reason == None)  # noqa: E711 - element-wise
        reason[m] = name

    mark("missing_customer_id", _v._blank(df["customer_id"]))
    mark("missing_order_id", _v._blank(df["order_id"]))
    t = _v._parse_time(df["order_time"], zone, dayfirst, where)
    mark("unparseable_order_time", t.isna().to_numpy())
    mark("in_the_future", (t > now).to_numpy())
    if "status" in df.columns:
        status, unknown = status_of(df["status"])
        mark("unknown_status", unknown)
    else:
        status = pd.Series("paid", index=df.index)
    if "amount" in df.columns:
        amount, ambiguous, nan_text = _v._parse_number(df["amount"], decimal)
    else:
        q, aq, nq = _v._parse_number(df["quantity"], decimal)
        p, ap, np_ = _v._parse_number(df["unit_price"], decimal)
        amount, ambiguous, nan_text = q * p, aq | ap, nq | np_
    mark("ambiguous_decimal_comma" if decimal == "." else "ambiguous_decimal_point", ambiguous)
    mark("non_finite_amount", nan_text | np.isinf(amount.to_numpy()))
    mark("non_numeric_amount", amount.isna().to_numpy())
    mark("negative_amount_on_paid_order", (status == "paid").to_numpy() & (amount < 0).to_numpy())
    out = pd.DataFrame({
        "row": rows, "reason": pd.array(reason, dtype="string"),
        "hash": line_hash(df) if hashes is None else np.asarray(hashes, np.int64),
        "customer_id": _v._text(df["customer_id"]), "order_id": _v._text(df["order_id"]),
        "order_time": t.to_numpy(dtype="datetime64[ns]"), "amount": amount.to_numpy(dtype=float),
        "status": pd.array(status.to_numpy(dtype=object), dtype="string")})
    for c in OPTIONAL + (PII_COLUMNS if keep_pii else ()):
        if c in df.columns:
            out[c] = _v._parse_number(df[c], decimal)[0].to_numpy(float) if c == "quantity" else _v._text(df[c])
    return out
