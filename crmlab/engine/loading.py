"""Orders into the engine with their ledger: the one entry point every command and notebook uses.

:func:`load` takes whatever the user points at — an export (CSV, Parquet, Excel), a clean
file crmlab wrote, or a table already in an engine — and returns an :class:`OrderTable`
and the :class:`~crmlab.ingest.readers.Ledger` that accounts for every input row.
"""
from __future__ import annotations

import os

import pandas as pd

from crmlab.engine.connection import Engine, get_engine
from crmlab.engine.sources import OrderTable, order_table, read_clean_ledger
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
         now=None, sheet: str | None = None, returns: str | None = None) -> tuple[OrderTable, Ledger]:
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

    Examples
    --------
    >>> from crmlab.engine.loading import load  # doctest: +SKIP
    >>> orders, ledger = load("data/sample/orders.csv")  # doctest: +SKIP
    """
    if source is None:
        raise CrmlabInputError("no orders given (expected the path of an export, a DataFrame or an engine table, "
                               "got None)")
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
    return _export.load_export(source, eng, columns=columns, observation_end=observation_end, timezone=timezone,
                               decimal=decimal, dayfirst=dayfirst, now=now, sheet=sheet, returns=returns)
