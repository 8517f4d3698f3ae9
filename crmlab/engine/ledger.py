"""Validation's set-level half in the engine, and the ledger that accounts for every row.

:func:`load_export` reads an order export in chunks (:mod:`crmlab.engine.screening` types
each line and gives it its first row-level reason), stages the chunks as Parquet, and
then, in the engine: marks exact duplicate lines (the first copy stays), order ids shared
by two customers, orders after the observation end (or sets it to the latest valid order
time); counts every reason with its first five row numbers; rolls lines up to orders
(amount and quantity summed, the earliest time, other attributes of the order's first
line in the file); and warns about times far outside the bulk of the data. Each row is
excluded once, under the first reason that applies, in the order of :data:`REASONS`.
"""
from __future__ import annotations

import atexit
import itertools
import os
import shutil
import tempfile

import ibis
import pandas as pd

from crmlab import io as _io
from crmlab import values as _v
from crmlab.engine.aggregates import ts
from crmlab.engine.connection import Engine, get_engine
from crmlab.engine.screening import CHUNK_ROWS, OPTIONAL, decide_dayfirst, open_export, screen_lines
from crmlab.engine.sources import OrderTable
from crmlab.io import PII_COLUMNS, CrmlabInputError, Ledger

__all__ = ["load_export", "REASONS"]

REASONS = ("exact_duplicate_line", "missing_customer_id", "missing_order_id", "unparseable_order_time",
           "in_the_future", "unknown_status", "ambiguous_decimal_comma", "ambiguous_decimal_point",
           "non_finite_amount", "non_numeric_amount", "negative_amount_on_paid_order",
           "order_id_shared_by_customers", "after_observation_end")
_YEARS5 = pd.Timedelta(days=5 * 365.25)
_stages = itertools.count()


def _stage(source, columns, chunk_rows: int, write, **screen) -> tuple[int, object]:
    """Screen every chunk and hand it (an Arrow table) to ``write``; return the input rows and
    the export."""
    import pyarrow as pa

    ex = open_export(source, columns, chunk_rows)
    where = _io._where(ex.name, ex.origin, "order_time")
    n, dayfirst = 0, screen.pop("dayfirst")
    for i, chunk in enumerate(ex.chunks):
        if i == 0 and dayfirst is None and decide_dayfirst(chunk["order_time"], None, where) is not None:
            # slash dates: the whole column decides day-first vs month-first (a second pass)
            times = pd.concat([c["order_time"] for c in open_export(source, columns, chunk_rows).chunks],
                              ignore_index=True)
            dayfirst = decide_dayfirst(times, None, where)
        lines = screen_lines(chunk, n, dayfirst=dayfirst, where=where, **screen)
        write(i, pa.Table.from_pandas(lines, preserve_index=False))
        n += len(chunk)
    return n, ex


class _DuckStage:
    """Chunks appended to a temporary DuckDB table (no files)."""

    def __init__(self, eng: Engine) -> None:
        self.raw, self.name = eng.con.con, f"crmlab_stage_{os.getpid()}_{next(_stages)}"

    def __call__(self, i: int, tbl) -> None:
        self.raw.register("crmlab_chunk", tbl)
        verb = f"CREATE TEMP TABLE {self.name} AS" if i == 0 else f"INSERT INTO {self.name}"
        self.raw.execute(f"{verb} SELECT * FROM crmlab_chunk")
        self.raw.unregister("crmlab_chunk")


class _ParquetStage:
    """Chunks written as Parquet parts in a folder the engine reads (Spark)."""

    def __init__(self) -> None:
        self.folder = tempfile.mkdtemp(prefix="crmlab-stage-")
        atexit.register(shutil.rmtree, self.folder, True)  # Spark reads the parts lazily

    def __call__(self, i: int, tbl) -> None:
        import pyarrow.parquet as pq

        # microseconds: Spark 3.5 cannot read nanosecond Parquet timestamps
        pq.write_table(tbl, os.path.join(self.folder, f"part-{i:05d}.parquet"), coerce_timestamps="us",
                       allow_truncated_timestamps=True)


def _mark_set_level(lines: ibis.Table, obs_end) -> ibis.Table:
    """Duplicates, then shared order ids, then (with an observation end) later orders."""
    same = ibis.window(group_by=lines.hash, order_by=lines.row)
    t = lines.mutate(reason=ibis.ifelse(ibis.row_number().over(same) > 0, "exact_duplicate_line", lines.reason))
    ok = t.filter(t.reason.isnull())
    per = ok.group_by("order_id").aggregate(nc=ok.customer_id.nunique())
    shared = per.filter(per.nc > 1).order_id
    t = t.mutate(reason=ibis.ifelse(t.reason.isnull() & t.order_id.isin(shared), "order_id_shared_by_customers",
                                    t.reason))
    if obs_end is not None:
        t = t.mutate(reason=ibis.ifelse(t.reason.isnull() & (t.order_time > ts(obs_end)), "after_observation_end",
                                        t.reason))
    return t


def _count_reasons(eng: Engine, t: ibis.Table, led: Ledger) -> None:
    bad = t.filter(t.reason.notnull())
    counts = eng.to_pandas(bad.group_by("reason").aggregate(n=bad.row.count()))
    first = bad.mutate(k=ibis.row_number().over(ibis.window(group_by=bad.reason, order_by=bad.row)))
    ex = eng.to_pandas(first.filter(first.k < 5).select("reason", "row")).sort_values(["reason", "row"])
    n = dict(zip(counts["reason"], counts["n"]))
    for r in REASONS:
        if n.get(r):
            led.excluded[r] = int(n[r])
            led.examples[r] = [int(x) + 1 for x in ex.loc[ex["reason"] == r, "row"]]
    led.used_rows = led.input_rows - led.excluded_rows


def _outlier_warnings(eng: Engine, kept: ibis.Table, led: Ledger) -> None:
    """Times more than 5 years outside the 1st–99th percentile of the kept orders."""
    secs = kept.order_time.epoch_seconds()
    q = eng.to_pandas(kept.aggregate(lo=secs.quantile(0.01), hi=secs.quantile(0.99), n=kept.row.count()))
    if int(q["n"].iloc[0]) < 2:
        return
    for side, edge, pct in (("before", float(q["lo"].iloc[0]), "1st"), ("after", float(q["hi"].iloc[0]), "99th")):
        p = pd.Timestamp(edge, unit="s")
        far = (kept.order_time < ts(p - _YEARS5)) if side == "before" else (kept.order_time > ts(p + _YEARS5))
        hit = kept.filter(far)
        rows = eng.to_pandas(hit.order_by("row").select("row").limit(5))["row"]
        if len(rows):
            total = int(eng.to_pandas(hit.count().name("n").as_table())["n"].iloc[0])
            led.warnings.append(f"{total} order time(s) more than 5 years {side} the bulk of the data ({pct} "
                                f"percentile {p:%Y-%m-%d}): rows {', '.join(str(int(r) + 1) for r in rows)}; check them")


def _roll_up(kept: ibis.Table) -> ibis.Table:
    """Lines to orders; ``line`` numbers orders by time, ties in the file's order."""
    agg = {"customer_id": kept.customer_id.argmin(kept.row), "order_time": kept.order_time.min(),
           "amount": kept.amount.sum(), "status": kept.status.argmin(kept.row), "first_row": kept.row.min()}
    for c in OPTIONAL + PII_COLUMNS:
        if c in kept.columns:
            agg[c] = kept[c].sum() if c == "quantity" else kept[c].argmin(kept.row)
    o = kept.group_by("order_id").aggregate(**agg)
    o = o.mutate(line=ibis.row_number().over(ibis.window(order_by=[o.order_time, o.first_row])))
    return o.drop("first_row")


def load_export(source, engine: str | Engine | None = None, *, columns=None, observation_end=None,
                timezone: str | None = None, decimal: str = ".", dayfirst: bool | None = None, now=None,
                keep_pii: bool = False, chunk_rows: int = CHUNK_ROWS) -> tuple[OrderTable, Ledger]:
    """Validate an order export into ``engine``: the orders and the ledger (see the module doc
    and :func:`crmlab.io.load_orders` for the parameters).

    Raises
    ------
    CrmlabInputError
        Unreadable input, missing columns, unreadable slash dates, no usable row.
    """
    zone, tzname = _v._zone(timezone)
    _v._check_decimal(decimal)
    obs_end = _v.parse_observation_end(observation_end, tzname)
    now_ts = _v._now(now, zone)
    eng = get_engine(engine)
    sink = _DuckStage(eng) if eng.name == "duckdb" else _ParquetStage()
    try:
        n, ex = _stage(source, columns, chunk_rows, sink, zone=zone, dayfirst=dayfirst, decimal=decimal,
                       now=now_ts, keep_pii=keep_pii)
        lines = eng.con.table(sink.name) if eng.name == "duckdb" else eng.con.read_parquet(sink.folder)
        led = Ledger(file=ex.name, input_rows=n, sha256=ex.sha256, kind="orders")
        led.timezone, led.warnings = tzname, list(ex.warnings)
        t = _mark_set_level(lines, obs_end).cache()
        if eng.name == "duckdb":  # the marked copy replaces the staged one: free it now
            eng.con.con.execute(f"DROP TABLE IF EXISTS {sink.name}")
        kept = t.filter(t.reason.isnull())
        if obs_end is None:
            end = eng.to_pandas(kept.order_time.max().name("end").as_table())["end"].iloc[0]
            obs_end = None if pd.isna(end) else pd.Timestamp(end)
        elif obs_end > now_ts:
            led.warnings.append(f"observation end {obs_end} is after the time of the run "
                                f"({now_ts:%Y-%m-%d %H:%M} {tzname})")
        led.observation_end = obs_end
        _count_reasons(eng, t, led)
        led.check()
        if led.used_rows == 0:
            raise CrmlabInputError(f"{ex.name}: no usable rows left after exclusions ({led.excluded})")
        _outlier_warnings(eng, kept, led)
        orders = _roll_up(kept).cache()
        if eng.name == "duckdb":
            t.release()  # the orders are materialised; the marked lines are no longer needed
        size = eng.to_pandas(orders.aggregate(n=orders.line.count(), c=orders.customer_id.nunique()))
        led.orders, led.customers = int(size["n"].iloc[0]), int(size["c"].iloc[0])
    finally:
        if eng.name == "duckdb":
            eng.con.con.execute(f"DROP TABLE IF EXISTS {sink.name}")
    return OrderTable(orders, obs_end, eng, ex.name), led
