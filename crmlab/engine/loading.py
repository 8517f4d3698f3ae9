"""Orders into the engine with their ledger: the one entry point every command and notebook uses.

:func:`load` takes whatever the user points at — an export (CSV, Parquet, Excel), a clean
file crmlab wrote, or a table already in an engine — and returns an :class:`OrderTable`
and the :class:`~crmlab.ingest.readers.Ledger` that accounts for every input row.
"""
from __future__ import annotations

import os
import time
from dataclasses import replace

import pandas as pd

from crmlab.engine.connection import Engine, get_engine
from crmlab.engine.lead_in import apply_lead_in
from crmlab.engine import cache as _cache
from crmlab.engine.sources import OrderTable, order_table, read_clean_ledger, write_clean
# the module, not the name: ``crmlab.engine`` re-exports :func:`load`, so importing
# crmlab.ingest.export first runs this module while export is still half-made
from crmlab.ingest import export as _export
from crmlab.ingest.ledger import Ledger
from crmlab.ingest.values import DEFAULT_TIMEZONE
from crmlab.schema import CrmlabInputError

__all__ = ["load", "ledger_from_dict", "is_engine_table"]


def is_engine_table(source) -> bool:
    return isinstance(source, str) and (source.startswith("duckdb:") or source.startswith("spark:"))


def ledger_from_dict(d: dict) -> Ledger:
    """A :class:`Ledger` from its ``to_dict()`` (as stored in a clean file)."""
    led = Ledger(file=d["file"], input_rows=int(d["input_rows"]), sha256=d.get("sha256"))
    led.used_rows = int(d["used_rows"])
    led.excluded = {k: int(v) for k, v in d.get("excluded", {}).items()}
    led.examples = {k: list(v) for k, v in d.get("examples", {}).items()}
    led.orders = int(d.get("orders", 0))
    led.customers = int(d.get("customers", 0))
    led.timezone = d.get("timezone", DEFAULT_TIMEZONE)
    led.warnings = list(d.get("warnings", []))
    led.observation_end = pd.Timestamp(d["observation_end"]) if d.get("observation_end") else None
    if d.get("returns"):
        led.returns = dict(d["returns"])
    if d.get("truncation"):
        led.truncation = dict(d["truncation"])
    return led


def load(source, engine: str | Engine | None = None, *, columns=None, observation_end=None,
         timezone: str | None = None, decimal: str = ".", dayfirst: bool | None = None,
         now=None, sheet: str | None = None, returns: str | None = None, history_start=None,
         lead_in_days: int | None = None, cache: bool | str | None = None) -> tuple[OrderTable, Ledger]:
    """Validated orders in ``engine`` and their ledger.

    Parameters
    ----------
    source : path, DataFrame, or engine table
        An export, validated into the engine (:func:`crmlab.ingest.export.load_export`;
        the keyword arguments ``columns``, ``timezone``, ``decimal``, ``dayfirst``, ``now``
        are :func:`crmlab.ingest.readers.load_orders`'); a clean
        Parquet file written by :func:`crmlab.engine.sources.write_clean` (read as it is, with the
        ledger stored in it); ``duckdb:FILE:TABLE`` or ``spark:DB.TABLE`` (a warehouse
        table with the clean columns, trusted: its ledger counts its rows).
    sheet : str, optional
        The sheet of an Excel workbook (see :func:`crmlab.ingest.readers.load_orders`).
    returns : ``"net"``, ``"ignore"`` or None
        Separate reversal documents netted against purchases (see
        :func:`crmlab.ingest.readers.load_orders`); an export only.
    observation_end : optional
        A bare date is the end of that day, in the store's time zone.
    history_start, lead_in_days : optional, not both
        The lead-in (:mod:`crmlab.engine.lead_in`): customers first seen before ``history_start``
        (a date), or in the first ``lead_in_days`` days of the export, are existing customers,
        never new. Neither given: a default lead-in when the export looks truncated
        (``lead_in_days=0`` turns it off). ``ledger.truncation`` says what was used; the
        returned orders carry it as ``history_start``.
    cache : bool or str, optional
        The validation cache (:mod:`crmlab.engine.cache`) for an export read from a file: on by
        default (``CRMLAB_NO_CACHE=1`` turns the default off), ``False`` bypasses it, a path
        names the cache folder (else ``CRMLAB_CACHE_DIR`` or the user's cache folder). A hit
        reads the clean copy instead of validating again; ``ledger.cache`` says which.

    Examples
    --------
    >>> from crmlab.engine.loading import load  # doctest: +SKIP
    >>> orders, ledger = load("data/sample/orders.csv")  # doctest: +SKIP
    """
    if source is None:
        raise CrmlabInputError("no orders given (expected the path of an export, a DataFrame or an engine table, "
                               "got None)")
    if history_start is not None and lead_in_days is not None:
        raise CrmlabInputError("give history_start (--history-start) or lead_in_days (--lead-in-days), not both")
    o, led = _load(source, engine, columns=columns, observation_end=observation_end, timezone=timezone,
                   decimal=decimal, dayfirst=dayfirst, now=now, sheet=sheet, returns=returns, cache=cache)
    stored = led.truncation if led.truncation.get("evidence") else {}  # judged on reading (export, clean file)
    if history_start is None and lead_in_days is None:
        if isinstance(source, OrderTable) and source.history_start is not None:
            return o, led  # its own lead-in, as set
        if stored.get("lead_in") in ("given", "none") and "history_start" in stored:
            # a clean file keeps the lead-in it was written with (None: none)
            history_start = stored["history_start"]
            lead_in_days = 0 if history_start is None else None
    o, led.truncation = apply_lead_in(o, stored, history_start, lead_in_days)
    return o, led


def _load(source, engine, *, columns, observation_end, timezone, decimal, dayfirst, now, sheet,
          returns, cache=None) -> tuple[OrderTable, Ledger]:
    """:func:`load` without the lead-in."""
    eng = get_engine(engine)
    if isinstance(source, OrderTable):
        return source.until(observation_end), Ledger(file=source.source, input_rows=0, settings=source.settings)
    if is_engine_table(source):
        o = order_table(source, eng, observation_end)
        n = int(eng.to_pandas(o.table.count().name("n").as_table())["n"].iloc[0])
        led = Ledger(file=source, input_rows=n, settings=o.settings)
        led.orders = n
        led.observation_end = o.observation_end
        return o, led
    if isinstance(source, (str, os.PathLike)) and str(source).endswith((".parquet", ".pq")) and \
            os.path.isfile(source) and (meta := read_clean_ledger(str(source))) is not None:
        o = order_table(str(source), eng, observation_end)
        led = ledger_from_dict(meta)
        led.settings = o.settings
        return o, led
    if isinstance(source, pd.DataFrame) and {"line", "status"} <= set(source.columns):
        o = order_table(source, eng, observation_end)
        return o, Ledger(file="<DataFrame>", input_rows=len(source), settings=o.settings)
    if timezone is None and isinstance(source, pd.DataFrame):  # load_orders' frame: the zone it was read in
        timezone = source.attrs.get("timezone")
    options = dict(columns=columns, observation_end=observation_end, timezone=timezone, decimal=decimal,
                   dayfirst=dayfirst, now=now, sheet=sheet, returns=returns)
    if _caching(cache) and isinstance(source, (str, os.PathLike)) and os.path.isfile(source):
        return _cached_export(str(source), eng, cache, options)
    return _export.load_export(source, eng, **options)


#: the customer credits beside the clean orders in a cache entry of an earlier version (the clean
#: file now carries them itself: :func:`crmlab.engine.sources.write_clean`)
_CREDITS = "credits.parquet"
#: the columns of validated orders in the order the export path gives them
_EXPORT_ORDER = ("order_id", "customer_id", "order_time", "amount", "status", "channel", "region", "product",
                 "category", "quantity", "line")


def _from_cache(hit, eng: Engine, observation_end) -> tuple[OrderTable, Ledger]:
    """A cache entry as the export path would give it: the same columns in the same order, the
    same ledger, the customers' credits."""
    meta = read_clean_ledger(str(hit))
    o = order_table(str(hit), eng, observation_end)
    o = replace(o, table=o.table.select(*[c for c in _EXPORT_ORDER if c in o.table.columns]))
    credits = os.path.join(os.path.dirname(str(hit)), _CREDITS)
    if o.credits is None and os.path.isfile(credits):
        o = replace(o, credits=eng.con.read_parquet(credits))
    led = ledger_from_dict(meta)
    led.settings = o.settings
    led.cache = {"status": "reused"}
    return o, led


def _caching(cache) -> bool:
    if cache is None:
        return os.environ.get("CRMLAB_NO_CACHE", "").strip().lower() not in ("1", "true", "yes")
    return cache is not False


def _cached_export(source: str, eng: Engine, cache, options: dict) -> tuple[OrderTable, Ledger]:
    """An export through the validation cache: the clean copy when there is one, else validated
    and kept (:mod:`crmlab.engine.cache`)."""
    try:
        folder = _cache.cache_dir(cache if isinstance(cache, (str, os.PathLike)) and cache is not True else None)
        key = _cache.export_key(source, options, memo_dir=folder)
        hit = _cache.lookup(key, folder)
    except OSError as e:  # a cache folder that cannot be made or read: validate without it, and say why
        o, led = _export.load_export(source, eng, **options)
        led.cache = {"status": "not stored", "reason": str(e).splitlines()[0]}
        return o, led
    if hit is not None:
        return _from_cache(hit, eng, options["observation_end"])
    t0 = time.perf_counter()
    o, led = _export.load_export(source, eng, **options)
    seconds = time.perf_counter() - t0

    try:  # the clean file carries the ledger and the customers' credits
        _cache.store(key, folder, lambda path: write_clean(o, led, path), source=source)
        led.cache = {"status": "stored", "seconds": round(seconds, 1)}
    except OSError as e:  # a full disk or a read-only cache folder: the command goes on without it
        led.cache = {"status": "not stored", "reason": str(e).splitlines()[0]}
    return o, led
