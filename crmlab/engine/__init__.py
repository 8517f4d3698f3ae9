"""The engine room: connecting, order tables in an engine, and the shared aggregate builders.

Analyses build Ibis expressions on an :class:`OrderTable` and bring back only small
results; the backend (embedded DuckDB by default, PySpark for warehouse-sized stores) is
chosen at the edge.
"""
from crmlab.engine.connection import ENGINES, Engine, connect, get_engine, set_engine
from crmlab.engine.sources import OrderTable, order_table, read_clean_ledger, write_clean
from crmlab.engine.loading import load

__all__ = ["ENGINES", "Engine", "connect", "get_engine", "set_engine", "OrderTable", "order_table",
           "write_clean", "read_clean_ledger", "load"]
