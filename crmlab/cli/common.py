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
from crmlab.engine.lead_in import lead_in_sentence
from crmlab.engine.sources import read_clean_ledger
from crmlab.ingest.readers import NOTICE_PREFIXES, CrmlabInputError, load_sends
from crmlab.ingest.values import _local, _zone
from crmlab.present import progress
from crmlab.present.result import json_safe

__all__ = ["emit", "cache_of", "cache_note", "loader_kw", "load_orders_of", "load_sends_of", "notices", "lead_in_note", "writing", "local_arg",
           "engine_of", "is_export"]


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


def lead_in_note(led) -> None:
    """A default lead-in (an export that looks truncated), on stderr: the choice changes every
    cohort and first-time count, so it is shown where the command runs."""
    t = getattr(led, "truncation", None) or {}
    if t.get("lead_in") == "default" and t.get("lead_in_days"):
        print(f"crmlab: note: {led.file}: {' '.join(t.get('evidence', '').split())} {lead_in_sentence(t)}",
              file=sys.stderr)


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
    if getattr(a, "stage_dir", None):  # read where the export is staged for Spark (crmlab.ingest.export)
        os.environ["CRMLAB_STAGE_DIR"] = a.stage_dir
    return connect(a.engine, spark_master=a.spark_master, memory_limit=a.memory_limit)


def is_export(source: str) -> bool:
    """Whether ``--orders`` is an export (validated on every read), not a clean file or a table."""
    clean = str(source).endswith((".parquet", ".pq")) and os.path.isfile(source) and read_clean_ledger(source)
    return not (is_engine_table(source) or clean)


def cache_of(a):
    """The ``cache`` argument of :func:`crmlab.engine.loading.load` from ``--no-cache`` / ``--cache-dir``."""
    if getattr(a, "no_cache", False):
        return False
    return getattr(a, "cache_dir", None) or None


def cache_note(led, seconds: float) -> str | None:
    """What the validation cache did, as the one line said on stderr when the command succeeds:
    validated and kept, or reused."""
    c = getattr(led, "cache", None) or {}
    if c.get("status") == "stored":
        return (f"crmlab: validated {os.path.basename(str(led.file))} ({led.input_rows:,} lines) in {seconds:.1f} s and "
                "cached the clean copy: later commands on this export reuse it (--no-cache: validate again)")
    if c.get("status") == "not stored":
        return f"crmlab: note: the validation cache was not used ({c.get('reason')}); the export was validated"
    if c.get("status") == "reused":
        return (f"crmlab: reused the validated copy of {os.path.basename(str(led.file))} from the cache "
                f"({led.input_rows:,} lines, read in {seconds:.1f} s; the export is unchanged)")
    return None


def load_orders_of(a):
    """Orders in the engine and their ledger (:func:`crmlab.engine.loading.load`), through the
    validation cache unless ``--no-cache``. Without the cache, a command other than ``validate``
    re-validating an export of more than ``a.big_export_lines`` lines (set by
    :func:`crmlab.cli.main.main` from its ``BIG_EXPORT_LINES``) says how to validate once."""
    t0 = time.perf_counter()
    with progress.stages(as_json=getattr(a, "json", False)) as shown, shown.stage("reading the orders"):
        o, led = load(a.orders, engine_of(a), observation_end=a.observation_end, sheet=a.sheet,
                      returns=getattr(a, "returns", None), history_start=local_arg(getattr(a, "history_start", None), a),
                      lead_in_days=getattr(a, "lead_in_days", None), cache=cache_of(a), **loader_kw(a))
    notices(led)
    lead_in_note(led)
    note = cache_note(led, time.perf_counter() - t0)
    if note and not getattr(a, "json", False) and hasattr(a, "after_success"):
        a.after_success.append(note)
    if a.command != "validate" and not led.cache and led.input_rows > a.big_export_lines and is_export(a.orders):
        # an export, validated again by this command: most of its time at this size
        print(f"crmlab: note: validating {led.input_rows:,} lines took {time.perf_counter() - t0:.0f} s; run "
              "`crmlab validate --orders FILE --clean-out clean.parquet` once and point commands at "
              "clean.parquet", file=sys.stderr)
    return o, led
