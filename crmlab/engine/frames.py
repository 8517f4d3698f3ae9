"""pandas frames in the engine without copies: registered once as Arrow, reused while unchanged.

A frame from :func:`crmlab.ingest.readers.load_orders` (what a notebook holds) enters DuckDB
as an Arrow table registered by name, never copied into a DuckDB table: numbers, times and a
categorical's codes are the frame's own memory (zero-copy), a categorical is a dictionary
array (its categories converted once), Arrow-backed text is taken as it is; only text held
as Python objects is converted. DuckDB scans that memory on every query.

The registration is kept per frame (:func:`registered`) and reused by later calls on the
same frame while its fingerprint is unchanged (the entry goes with the frame; the view with
the last expression over it). Per column the fingerprint holds its kind,
length, the address of the memory the Arrow table reads and a hash of where values are
missing (which Arrow keeps apart): the registration holds a reference to that memory, so
no other array can take its address, and a change of a value in place is read by the next
query as it is. A column replaced, converted anew or given a missing value changes the
fingerprint; a converted column's content is checked (text held as objects: the identity
of every value, the entry holding them all so none is recycled; anything else copied: a
hash of its bytes). A mutated frame is never served stale. The entry goes with its frame.

Spark has no zero-copy path: the frame is handed to Spark as before, once per frame, and
kept under the same fingerprint.
"""
from __future__ import annotations

import ctypes
import hashlib
import itertools
import os
import weakref
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["arrow_column", "fingerprint", "registered", "frame_to_arrow", "fetch_frame", "fetch_arrow", "registrations", "arrow_text",
           "register_lines", "categorical"]

_names = itertools.count()


@dataclass
class Column:
    """One column as Arrow, the fingerprint key it was made under, and what keeps the key valid."""

    array: Any
    key: tuple
    #: objects whose addresses or identities the key names, held so none is ever reused
    keep: Any = None
    #: the Arrow array is a copy: the key ends with a hash of the bytes copied
    copied: bool = False


def _address(a: np.ndarray) -> int:
    return int(a.__array_interface__["data"][0])


def _digest(a: np.ndarray) -> bytes:
    return hashlib.blake2b(np.ascontiguousarray(a).view(np.uint8), digest_size=16).digest()


def _pointers(a: np.ndarray) -> np.ndarray:
    """The object pointers of a contiguous 1-D object array as unsigned integers (a view)."""
    if not len(a):
        return np.zeros(0, dtype=np.uintp)
    return np.frombuffer((ctypes.c_char * a.nbytes).from_address(_address(a)), dtype=np.uintp, count=len(a))


def _missing(mask: np.ndarray) -> bytes:
    """Where values are missing, hashed (Arrow keeps them as a separate bitmap)."""
    return _digest(np.packbits(mask)) if mask.any() else b""


def _numbers(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A float or time column's values (NaN/NaT are missing) and its missing mask."""
    return values, (np.isnat(values) if values.dtype.kind == "M" else np.isnan(values))


def _values(s: pd.Series) -> np.ndarray:
    if pd.api.types.is_datetime64_any_dtype(s.dtype):  # with a zone: its UTC times, as before
        return s.to_numpy(dtype="datetime64[ns]")
    return s.to_numpy() if s.dtype == np.float64 else s.to_numpy(dtype=np.float64, na_value=np.nan)


def _key(s: pd.Series, as_text: bool) -> tuple | None:
    """A column's fingerprint key, computed without converting it (None: text held as objects,
    compared value by value instead)."""
    dtype = s.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        codes = s.array.codes
        return "categorical", len(codes), _address(codes), id(s.cat.categories), _missing(codes < 0)
    if hasattr(s.array, "_pa_array"):  # Arrow-backed: immutable arrays, replaced on any change
        return "arrow", id(s.array._pa_array), as_text
    if as_text or dtype == object or isinstance(dtype, pd.StringDtype):
        return None
    values, missing = _numbers(_values(s))
    return "numbers", str(values.dtype), len(values), _address(values), _missing(missing)


def _text(values: np.ndarray) -> pa.Array:
    try:
        return pa.array(values, type=pa.string(), from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # not all str: written as str() writes them
        return pa.array([None if v is None or v is pd.NA or (isinstance(v, float) and v != v) else str(v)
                         for v in values], type=pa.string())


def arrow_column(s: pd.Series, as_text: bool = False) -> Column:
    """``s`` as an Arrow array for the engine, with its fingerprint key.

    Parameters
    ----------
    s : Series
        Categorical (a dictionary array over its own codes), Arrow-backed (taken as it is),
        floats or naive times (zero-copy when contiguous), other numbers (as float64), or
        Python objects (converted to text).
    as_text : bool
        Text whatever the dtype (a categorical's categories and numbers written as text).

    Returns
    -------
    Column
    """
    key = _key(s, as_text)
    if key is not None and key[0] == "categorical":
        codes, cats = s.array.codes, s.cat.categories
        dictionary = _text(cats.to_numpy(dtype=object) if cats.dtype == object else cats.astype(str).to_numpy(object))
        missing = codes < 0
        idx = pa.Array.from_buffers(pa.from_numpy_dtype(codes.dtype), len(codes),
                                    [pa.array(~missing).buffers()[1] if missing.any() else None, pa.py_buffer(codes)])
        return Column(pa.DictionaryArray.from_arrays(idx, dictionary), key, (codes, s.cat.categories))
    if key is not None and key[0] == "arrow":
        chunked = s.array._pa_array
        if as_text and not pa.types.is_string(chunked.type):
            chunked = chunked.cast(pa.string())
        return Column(chunked, key, s.array._pa_array)
    if key is None:
        values = s.to_numpy(dtype=object)
        snapshot = values.copy()  # holds every value: none of their addresses can be reused
        return Column(_text(snapshot), ("objects", len(values)), (snapshot, _pointers(snapshot)))
    values, _ = _numbers(_values(s))
    arr = pa.array(values, from_pandas=True)
    if arr.buffers()[1].address != _address(values):  # copied after all: its bytes are checked each time
        return Column(arr, (*key, _digest(values)), values, copied=True)
    return Column(arr, key, values)


def _same(col: Column, s: pd.Series, as_text: bool) -> bool:
    """Whether ``s`` is still what ``col`` was made from."""
    if col.key[0] != "objects":
        key = _key(s, as_text)
        if col.copied and key is not None:
            key = (*key, _digest(_values(s)))
        return key == col.key
    if s.dtype != object or len(s) != col.key[1]:
        return False
    values = s.to_numpy(dtype=object)
    return values.flags.c_contiguous and np.array_equal(_pointers(values), col.keep[1])


def fingerprint(frame: pd.DataFrame, columns: dict[str, bool]) -> tuple:
    """The fingerprint :func:`registered` compares for ``frame``'s ``columns`` (name -> as text);
    text held as objects appears by length only (:func:`registered` compares its values)."""
    return tuple((c, len(frame), _key(frame[c], t)) for c, t in columns.items())


def frame_to_arrow(frame: pd.DataFrame, columns: dict[str, bool], line: bool = True) -> tuple[pa.Table, dict]:
    """``frame``'s ``columns`` (name -> as text) as one Arrow table (with ``line``, the row
    number, appended), and the :class:`Column` of each."""
    made = {c: arrow_column(frame[c], t) for c, t in columns.items()}
    arrays = {c: m.array for c, m in made.items()}
    if line:
        arrays["line"] = pa.array(np.arange(len(frame), dtype=np.int64))
    return pa.table(arrays), made


@dataclass
class _Entry:
    frame: Any  # a weak reference: the entry never keeps a frame alive
    made: dict
    table: Any
    name: str


#: registrations by (frame id, engine connection id); an entry goes when its frame does
_entries: dict[tuple[int, int], _Entry] = {}


def registrations() -> int:
    """How many frames are registered now."""
    return len(_entries)


def _valid(entry: _Entry, frame: pd.DataFrame, columns: dict[str, bool]) -> bool:
    if entry.frame() is not frame or list(entry.made) != list(columns):
        return False
    return all(c in frame.columns and _same(entry.made[c], frame[c], t) for c, t in columns.items())


def _forget(key: tuple[int, int], name: str) -> None:
    """Forget a frame's registration when the frame goes (its view stays while a table uses it)."""
    entry = _entries.get(key)
    if entry is not None and entry.name == name:
        del _entries[key]


def _drop(raw, name: str) -> None:
    """Free a registration's view and Arrow table once no expression refers to them."""
    for stmt in (lambda: raw.execute(f"DROP VIEW IF EXISTS {name}"), lambda: raw.unregister(f"{name}_arrow")):
        try:
            stmt()
        except Exception:  # noqa: BLE001 - the connection may be closed already (at exit)
            pass


def registered(frame: pd.DataFrame, engine, columns: dict[str, bool], view: Callable[[str], str] | None = None,
               spark: Callable[[], Any] | None = None) -> Any:
    """``frame``'s ``columns`` as an Ibis table in ``engine``, registered once and reused.

    Parameters
    ----------
    frame : DataFrame
    engine : Engine
        DuckDB: the Arrow table (with ``line``) is registered by name, no copy, and
        ``view(name)`` — a SELECT over it — becomes a temporary view (to name the column types);
        Spark: ``spark()`` makes the table, as before.
    columns : dict
        Column name -> whether it is text whatever its dtype.

    Returns
    -------
    ibis.Table
    """
    key = (id(frame), id(engine.con))
    entry = _entries.get(key)
    if entry is not None and _valid(entry, frame, columns):
        return entry.table
    if entry is not None:
        _forget(key, entry.name)
    name = f"crmlab_frame_{os.getpid()}_{next(_names)}"
    if engine.name != "duckdb":
        made = {c: arrow_column(frame[c], t) for c, t in columns.items()}
        table = spark()
    else:
        arrow, made = frame_to_arrow(frame, columns)
        raw = engine.con.con
        raw.register(f"{name}_arrow", arrow)
        raw.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS "
                    f"{view(name + '_arrow') if view else 'SELECT * FROM ' + name + '_arrow'}")
        table = engine.con.table(name)
        # the view lives as long as an expression over it (an OrderTable may outlive its frame)
        weakref.finalize(table.op(), _drop, raw, name)
    weakref.finalize(frame, _forget, key, name)
    _entries[key] = _Entry(weakref.ref(frame), made, table, name)
    return table


def fetch_arrow(engine, expr) -> pa.Table:
    """An expression's rows as one Arrow table, fetched once (DuckDB: straight from its result)."""
    if engine.name != "duckdb":
        return engine.con.to_pyarrow(expr)
    table = engine.con.con.execute(engine.con.compile(expr)).fetch_arrow_table()
    for i, (name, dtype) in enumerate(expr.schema().items()):  # as Ibis types them (a literal may be a DECIMAL)
        want = pa.float64() if dtype.is_floating() else pa.int64() if dtype.is_integer() else None
        if want is not None and pa.types.is_decimal(table.schema.field(i).type):
            table = table.set_column(i, name, table.column(i).cast(want))
    return table


def fetch_frame(engine, expr) -> pd.DataFrame:
    """An expression's rows in pandas, fetched once: DuckDB's Arrow result converted straight to
    NumPy types (text as Python str, times as datetime64[ns], as :meth:`Engine.to_pandas` gives
    them); other engines through :meth:`Engine.to_pandas`."""
    if engine.name != "duckdb":
        return engine.to_pandas(expr)
    return fetch_arrow(engine, expr).to_pandas(coerce_temporal_nanoseconds=True)


def arrow_text(s: pd.Series) -> pd.Series:
    """An object column as Arrow-backed text, exactly as ``s.astype("string[pyarrow]")`` gives it,
    without that method's per-value checks when every value is a str (or missing)."""
    if s.dtype != object:
        return s.astype("string[pyarrow]")
    try:
        arr = pa.array(s.to_numpy(), type=pa.string(), from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # numbers, dates …: pandas writes them as text
        return s.astype("string[pyarrow]")
    return pd.Series(pd.arrays.ArrowStringArray(pa.chunked_array([arr])), index=s.index, name=s.name)


def register_lines(raw, frame: pd.DataFrame, rel: str, row: str = "__row") -> int:
    """A raw export held in pandas as the DuckDB table ``rel``, in one pass: the frame handed to
    DuckDB as Arrow (numbers and times zero-copy, text held as objects converted once by
    :func:`arrow_text`) and copied into DuckDB's own storage once (the screening reads every
    text column several times: from DuckDB's storage about twice as fast as from Arrow), ``row``
    the 0-based line number first. Returns the number of lines."""
    cols = {c: arrow_text(frame[c]) if frame[c].dtype == object else frame[c] for c in frame.columns}
    df = pd.DataFrame({row: np.arange(len(frame), dtype=np.int64), **{c: v.to_numpy() if not hasattr(
        v, "array") else v.array for c, v in cols.items()}}, copy=False)
    raw.register(f"{rel}_arrow", pa.Table.from_pandas(df, preserve_index=False))
    try:
        raw.execute(f"CREATE OR REPLACE TEMP TABLE {rel} AS SELECT * FROM {rel}_arrow")
    finally:
        raw.unregister(f"{rel}_arrow")
    return len(frame)


def categorical(values: pa.ChunkedArray | pa.Array, categories=None) -> pd.Categorical:
    """Arrow text as a pandas Categorical without a round trip through Python objects: the
    dictionary encoding in Arrow, its categories sorted (as ``astype("category")`` sorts them) or
    ``categories`` given (values outside them missing)."""
    enc = pc.dictionary_encode(values)
    enc = enc.combine_chunks() if isinstance(enc, pa.ChunkedArray) else enc
    if not isinstance(enc, pa.DictionaryArray):  # an empty chunked array
        enc = pa.array([], pa.dictionary(pa.int32(), pa.string()))
    dictionary = enc.dictionary.cast(pa.string())
    idx = enc.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    if categories is None:
        order = pc.sort_indices(dictionary).to_numpy()
        rank = np.empty(len(order), dtype=np.int64)
        rank[order] = np.arange(len(order))
        cats = pd.Index(dictionary.take(pa.array(order)).to_numpy(zero_copy_only=False), dtype=object)
    else:
        cats = pd.Index(list(categories), dtype=object)
        rank = cats.get_indexer(dictionary.to_numpy(zero_copy_only=False)).astype(np.int64)
    codes = np.where(idx >= 0, rank[np.maximum(idx, 0)] if len(rank) else -1, -1)
    return pd.Categorical.from_codes(codes, categories=cats, validate=False)  # codes in range by construction
