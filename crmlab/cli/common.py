"""What every ``crmlab`` command shares: loading orders and sends with the reading flags, the
ledger's notices on stderr, one-line write errors, and the JSON or text output."""
from __future__ import annotations

import json
import os
import sys
import time
from typing import Callable

import pandas as pd

from crmlab.engine.connection import connect
from crmlab.engine.loading import load
from crmlab.engine.loading import is_engine_table
from crmlab.engine.sources import read_clean_ledger
from crmlab.ingest.readers import NOTICE_PREFIXES, CrmlabInputError, load_sends
from crmlab.ingest.values import _local, _zone
from crmlab.present.result import json_safe

__all__ = ["emit", "loader_kw", "load_orders_of", "load_sends_of", "notices", "writing", "local_arg", "engine_of",
           "is_export"]


def emit(obj, as_json: bool, text: Callable[[dict], str] | None = None) -> None:
    """Print ``obj`` as JSON (``--json``, or when the command has no text form; NaN -> null,
    via :func:`crmlab.present.result.json_safe`), else ``text(obj)``."""
    if as_json or text is None:
        print(json.dumps(json_safe(obj), ensure_ascii=False, default=str, indent=1))
    else:
        print(text(obj))


def loader_kw(a) -> dict:
    """The reading options every command that loads orders or sends takes."""
    return {"columns": a.columns, "timezone": a.timezone, "decimal": a.decimal, "dayfirst": a.dayfirst}


def load_sends_of(a, observation_end):
    """The send log (``--sends``, ``--sends-sheet``) with the orders' observation end: sends
    after it are excluded the same way in ``validate``, ``abtest`` and ``responses``."""
    sends, led = load_sends(a.sends, observation_end=observation_end, sheet=getattr(a, "sends_sheet", None),
                            **loader_kw(a))
    notices(led)
    return sends, led


def notices(led) -> None:
    """Ledger warnings that change what the outputs show, also on stderr (the ledger keeps them)."""
    for w in led.warnings:
        if w.startswith(NOTICE_PREFIXES):
            print(f"crmlab: warning: {led.file}: {' '.join(w.split())}", file=sys.stderr)


def writing(flag: str, path: str, write: Callable[[], object]) -> None:
    """Run ``write``; a failure to write ``path`` (a read-only folder, a file where a folder
    should be, a full disk; from Python, DuckDB or Arrow) is one line naming ``flag``."""
    try:
        write()
    except CrmlabInputError:
        raise
    except OSError as e:
        raise CrmlabInputError(f"{flag} {path}: cannot write ({e.strerror or e})") from None
    except Exception as e:  # DuckDB's IOException, Arrow's errors: not OSError
        if type(e).__name__ not in ("IOException", "PermissionException", "ArrowIOError", "ArrowInvalid",
                                    "OutOfMemoryException"):
            raise
        raise CrmlabInputError(f"{flag} {path}: cannot write ({type(e).__name__}: "
                               f"{' '.join(str(e).split())[:200]})") from None


def local_arg(value, a):
    """A date/time argument (checked by :func:`moment`) in store-local time: a time with an
    offset converted to ``--timezone``; otherwise kept as text (a bare date = end of day)."""
    if value is None:
        return None
    ts = pd.Timestamp(value)
    return _local(ts, _zone(a.timezone)[0]) if ts.tzinfo is not None else value


def engine_of(a):
    """The engine named by ``--engine`` / ``--spark-master`` (default ``CRMLAB_ENGINE``, else DuckDB)."""
    return connect(a.engine, spark_master=a.spark_master, memory_limit=a.memory_limit)


def is_export(source: str) -> bool:
    """Whether ``--orders`` is an export (validated on every read), not a clean file or a table."""
    clean = str(source).endswith((".parquet", ".pq")) and os.path.isfile(source) and read_clean_ledger(source)
    return not (is_engine_table(source) or clean)


def load_orders_of(a):
    """Orders in the engine and their ledger (:func:`crmlab.engine.loading.load`). A command other than
    ``validate`` re-validating an export of more than ``a.big_export_lines`` lines (set by
    :func:`crmlab.cli.main.main` from its ``BIG_EXPORT_LINES``) says how to validate once."""
    t0 = time.perf_counter()
    o, led = load(a.orders, engine_of(a), observation_end=a.observation_end, sheet=a.sheet,
                  returns=getattr(a, "returns", None), **loader_kw(a))
    notices(led)
    if a.command != "validate" and led.input_rows > a.big_export_lines and is_export(a.orders):
        # an export, validated again by this command: most of its time at this size
        print(f"crmlab: note: validating {led.input_rows:,} lines took {time.perf_counter() - t0:.0f} s; run "
              "`crmlab validate --orders FILE --clean-out clean.parquet` once and point commands at "
              "clean.parquet", file=sys.stderr)
    return o, led
