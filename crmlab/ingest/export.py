"""Validation's set-level half in the engine, and the ledger that accounts for every row.

:func:`load_export` screens an order export in DuckDB (:mod:`crmlab.ingest.screening_sql`:
each line typed and given its first row-level reason; a Parquet file read in place, other
sources copied in in chunks; for Spark the screened lines are handed over as Parquet), and
then, in the engine: marks exact duplicate lines (the first copy stays), order ids shared
by two customers, orders after the observation end (or sets it to the latest valid order
time); counts every reason with its first five row numbers; rolls lines up to orders
(amount and quantity summed, the earliest time, other attributes of the order's first
line in the file); and warns about times far outside the bulk of the data. Each row is
excluded once, under the first reason that applies, in the order of :data:`REASONS`.
"""
from __future__ import annotations

import itertools
import os
import tempfile

import ibis
import pandas as pd

from crmlab.engine.aggregates import ts
from crmlab.engine.connection import Engine, get_engine, local_duckdb
from crmlab.engine.scratch import remove_at_exit, scratch_path
from crmlab.engine.sources import OrderTable, settings_for
from crmlab.engine.truncation import detect as _truncation
from crmlab.ingest import columns as _cols
from crmlab.ingest import values as _v
from crmlab.ingest.ledger import Ledger
from crmlab.ingest import returns as _ret
from crmlab.ingest.screening import CHUNK_ROWS, OPTIONAL
from crmlab.ingest.screening_sql import raw_lines, screen_export
from crmlab.schema import PII_COLUMNS, CrmlabInputError

__all__ = ["load_export", "REASONS"]

REASONS = ("exact_duplicate_line", "missing_customer_id", "missing_order_id", "unparseable_order_time",
           "in_the_future", "unknown_status", "ambiguous_decimal_comma", "ambiguous_decimal_point",
           "non_finite_amount", "non_numeric_amount", "negative_amount_on_paid_order",
           "order_id_shared_by_customers", "after_observation_end", "reversal_line", "order_fully_reversed")
_YEARS5 = pd.Timedelta(days=5 * 365.25)
_stages = itertools.count()


def _stage(source, columns, chunk_rows: int, raw, out: str, *, dayfirst, sheet=None, **screen) -> tuple[int, object]:
    """Screen every line of the export into DuckDB table ``out`` (on connection ``raw``);
    return the number of input lines and the export's description."""
    rel = f"{out}_raw"
    try:
        ex, n = raw_lines(raw, source, columns, chunk_rows, rel, sheet)
        if n == 0:
            raise CrmlabInputError(f"{ex.name}: no rows")
        where = _cols._where(ex.name, ex.origin, "order_time")
        screen_export(raw, rel, out, dayfirst=dayfirst, where=where, chunk_rows=chunk_rows, **screen)
    finally:
        kind = raw.execute(f"SELECT count(*) FROM duckdb_views() WHERE view_name = '{rel}'").fetchone()[0]
        raw.execute(f"DROP {'VIEW' if kind else 'TABLE'} IF EXISTS {rel}")
    return n, ex


#: The screened lines stay in DuckDB's memory while its tables take at most this share of its
#: memory limit; beyond it they leave for Parquet on disk, so the set-level aggregates have the
#: rest (a screened line takes about 90 bytes: at 10⁸ lines the table took most of a 6 GB limit
#: and the next aggregate failed to allocate; at 3 × 10⁷ on a 9.4 GiB limit, 2.7 GiB in memory
#: saved a quarter of the first command's work against writing and re-reading Parquet).
LINES_MEMORY_SHARE = 1 / 3

_UNITS = {"bytes": 1, "kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12, "pb": 1e15, "kib": 2**10, "mib": 2**20,
          "gib": 2**30, "tib": 2**40, "pib": 2**50}


def _lines_fit(raw) -> bool:
    """Whether DuckDB's in-memory tables (the screened lines among them; what already spilled to
    its temporary folder counted too) take at most :data:`LINES_MEMORY_SHARE` of its memory limit."""
    used = raw.execute("SELECT coalesce(sum(memory_usage_bytes + temporary_storage_bytes), 0) FROM duckdb_memory() "
                       "WHERE tag = 'IN_MEMORY_TABLE'").fetchone()[0]
    number, _, unit = str(raw.execute("SELECT current_setting('memory_limit')").fetchone()[0]).partition(" ")
    try:
        limit = float(number) * _UNITS[unit.strip().lower() or "bytes"]
    except (ValueError, KeyError):  # a form this code does not know: the lines go to disk, always safe
        return False
    return used <= LINES_MEMORY_SHARE * limit


def _lines_on_disk(raw, out: str) -> str:
    """The screened lines as Parquet parts in a temporary folder (read lazily; removed at exit)."""
    folder = scratch_path("stage", create=True)
    # microseconds: Spark 3.5 cannot read nanosecond Parquet timestamps (DuckDB writes µs)
    raw.execute(f"COPY {out} TO '{folder}' (FORMAT parquet, PER_THREAD_OUTPUT true, OVERWRITE_OR_IGNORE true)")
    raw.execute(f"DROP TABLE IF EXISTS {out}")
    return folder


#: Up to this many lines the marked lines are kept as a table when credit notes are netted
#: (the returns read the purchase lines several times); otherwise they stay a view read once.
LINES_MARKED_IN_MEMORY = 5_000_000

#: Arrow batches of this many lines carry the screened lines to Spark through the driver
SPARK_BATCH_LINES = 1_000_000


def _screened_lines(eng: Engine, raw, out: str) -> ibis.Table:
    """The screened lines where the engine reads them: DuckDB's table (or Parquet parts when
    it takes more than :data:`LINES_MEMORY_SHARE` of the memory limit); for Spark,
    :func:`_lines_to_spark`."""
    if eng.name == "duckdb" and _lines_fit(raw):
        return eng.con.table(out)
    if eng.name == "duckdb":
        return eng.con.read_parquet(os.path.join(_lines_on_disk(raw, out), "*.parquet"))
    return _lines_to_spark(eng, raw, out)


def _lines_to_spark(eng: Engine, raw, out: str) -> ibis.Table:
    """The screened lines (screened in the driver's DuckDB) where every Spark executor reads them,
    on any machine — never the driver's local disk, which a worker elsewhere cannot see.

    ``CRMLAB_STAGE_DIR`` (``--stage-dir``) a folder every worker mounts: DuckDB writes Parquet
    parts there. A URI Spark writes (``hdfs://``, ``s3a://``, ``file:`` on a share): Arrow batches
    of :data:`SPARK_BATCH_LINES` go through Spark into Parquet there. Neither: the batches become
    a Spark DataFrame through the driver (for exports that fit the driver's memory)."""
    stage = os.environ.get("CRMLAB_STAGE_DIR", "").strip()
    if stage and "://" not in stage and not stage.startswith("file:"):
        # a shared folder: never swept (another machine's process may own what is there)
        folder = remove_at_exit(tempfile.mkdtemp(prefix=f"crmlab-stage-{os.getpid()}-", dir=stage))
        raw.execute(f"COPY {out} TO '{folder}' (FORMAT parquet, PER_THREAD_OUTPUT true, OVERWRITE_OR_IGNORE true)")
        return eng.con.read_parquet(os.path.join(folder, "*.parquet"))
    from pyspark.sql.pandas.types import from_arrow_schema

    spark = eng.con._session
    reader = raw.execute(f"SELECT * FROM {out}").fetch_record_batch(SPARK_BATCH_LINES)
    schema = from_arrow_schema(reader.schema)
    target = f"{stage.rstrip('/')}/crmlab-stage-{os.getpid()}-{next(_stages)}" if stage else None
    frames = []
    for batch in reader:
        sdf = spark.createDataFrame(batch.to_pandas(), schema=schema)
        if target:
            sdf.write.mode("append").parquet(target)
        else:
            frames.append(sdf)
    if target:
        df = spark.read.schema(schema).parquet(target)
    else:
        df = frames[0] if frames else spark.createDataFrame([], schema)
        for f in frames[1:]:
            df = df.unionByName(f)
    name = f"{out}_spark"
    df.createOrReplaceTempView(name)
    return eng.con.table(name)


def _mark_set_level(lines: ibis.Table, obs_end) -> tuple[ibis.Table, ibis.Table]:
    """The lines marked (duplicates, then shared order ids, then orders after ``obs_end``)
    and the lines rolled up per order id.

    An order id on one line only cannot hold a duplicate (copies share the order id) nor
    two customers: such lines are orders as they are. Only the lines of order ids seen
    more than once (and lines without an order id) are checked: exact duplicates are the
    hashes seen more than once there (all but the first copy); one pass per order id over
    the remaining good lines gives the lowest and highest customer id (two differ: an
    order id shared by customers) and the roll-up of the lines up to ``obs_end``. In an
    export of one line per order that set is empty, and validation never aggregates the
    lines per order. Only small tables are joined back: the marked lines stay a view."""
    # repeated order ids found by their hash (a fixed-width key aggregates in less memory
    # than the text); a collision only sends a few more order ids down the checked path,
    # which is exact for any set of order ids that keeps each id's lines together
    has_id = lines.filter(lines.order_id.notnull()).mutate(id_hash=lines.order_id.hash())
    per_id = has_id.group_by("id_hash").aggregate(n=has_id.count())
    multi = per_id.filter(per_id.n > 1).select(multi_hash=per_id.id_hash).cache()
    in_multi = lines.order_id.isnull() | lines.order_id.hash().isin(multi.multi_hash)
    several, single = lines.filter(in_multi), lines.filter(~in_multi)
    seen = several.group_by("hash").aggregate(first_row=several.row.min(), copies=several.count())
    dups = seen.filter(seen.copies > 1).select("hash", "first_row").cache()
    d = several.left_join(dups, "hash")
    d = d.mutate(reason=ibis.ifelse(d.first_row.notnull() & (d.row != d.first_row), "exact_duplicate_line",
                                    d.reason)).drop("first_row", "hash_right")
    rolled = _roll_up(d.filter(d.reason.isnull()), obs_end).cache()
    per_order = rolled.union(_as_orders(single.filter(single.reason.isnull()), obs_end, rolled.schema()))
    shared = rolled.filter(rolled.lo != rolled.hi).select(shared_id=rolled.order_id).cache()
    t = d.union(single)
    t = t.left_join(shared, t.order_id == shared.shared_id)
    t = t.mutate(reason=ibis.ifelse(t.reason.isnull() & t.shared_id.notnull(), "order_id_shared_by_customers",
                                    t.reason)).drop("shared_id")
    if obs_end is not None:
        t = t.mutate(reason=ibis.ifelse(t.reason.isnull() & (t.order_time > ts(obs_end)), "after_observation_end",
                                        t.reason))
    return t, per_order


def _as_orders(ok: ibis.Table, obs_end, schema) -> ibis.Table:
    """Good lines of order ids seen once, in :func:`_roll_up`'s shape (each is its order)."""
    inside = ibis.literal(True) if obs_end is None else ok.order_time <= ts(obs_end)
    cols = {"lo": ok.customer_id, "hi": ok.customer_id, "last": ok.order_time, "n_in": inside.cast("int64"),
            "line": ok.row}
    out = [(cols[c] if c in cols else ibis.ifelse(inside, ok[c], ibis.null())).cast(typ).name(c)
           if c != "order_id" else ok.order_id.cast(typ).name(c) for c, typ in schema.items()]
    return ok.select(*out)


def _excluded(t: ibis.Table, every_column: bool) -> ibis.Table:
    """The excluded lines, kept: the one pass over the marked lines that the ledger's counts, the
    returns and the time warnings read; every column only when there are credit notes to net
    (an export can exclude most of its lines: an observation end before its last order)."""
    bad = t.filter(t.reason.notnull())
    return (bad if every_column else bad.select("row", "reason", "order_time")).cache()


def _count_reasons(eng: Engine, bad: ibis.Table, led: Ledger) -> None:
    """Every reason's count and its first five rows, from the excluded lines ``bad``."""
    bad = bad.select("reason", "row").cache()
    counts = eng.to_pandas(bad.group_by("reason").aggregate(n=bad.row.count()))
    first = bad.mutate(k=ibis.row_number().over(ibis.window(group_by=bad.reason, order_by=bad.row)))
    ex = eng.to_pandas(first.filter(first.k < 5).select("reason", "row")).sort_values(["reason", "row"])
    n = dict(zip(counts["reason"], counts["n"]))
    for r in REASONS:
        if n.get(r):
            led.excluded[r] = int(n[r])
            led.examples[r] = [int(x) + 1 for x in ex.loc[ex["reason"] == r, "row"]]
    led.used_rows = led.input_rows - led.excluded_rows


def _per_day(eng: Engine, lines: ibis.Table) -> pd.Series:
    """Lines per day (a small histogram; lines without a time left out)."""
    d = eng.to_pandas(lines.group_by(day=lines.order_time.truncate("D")).aggregate(n=lines.row.count()))
    d = d[d["day"].notna()]
    return pd.Series(d["n"].to_numpy(), index=pd.DatetimeIndex(d["day"]), dtype="int64")


def _outlier_warnings(eng: Engine, lines: ibis.Table, bad: ibis.Table, kept: ibis.Table, led: Ledger) -> None:
    """Times more than 5 years outside the 1st–99th percentile of the kept lines.

    The percentiles are read from the kept lines per day: every screened line's day less the
    excluded lines' (small histograms: no sort of the lines, no pass over the marked ones); a
    line is far when its day is more than 5 years before the 1st percentile's day, or after
    the 99th percentile's day ends."""
    per_day = _per_day(eng, lines).sub(_per_day(eng, bad), fill_value=0)
    days = per_day[per_day > 0].sort_index().rename("n").rename_axis("day").reset_index()
    if int(days["n"].sum()) < 2:
        return
    share = days["n"].cumsum() / days["n"].sum()
    lo = pd.Timestamp(days["day"].iloc[int((share >= 0.01).to_numpy().argmax())])
    hi = pd.Timestamp(days["day"].iloc[int((share >= 0.99).to_numpy().argmax())])
    bounds = (("before", lo, (lo - _YEARS5).floor("D"), "1st"),
              ("after", hi, (hi + pd.Timedelta(days=1) + _YEARS5).ceil("D"), "99th"))
    for side, p, edge, pct in bounds:  # edges at midnight: a day is wholly inside or outside
        total = int(days["n"][(days["day"] < edge) if side == "before" else (days["day"] >= edge)].sum())
        if total:
            far = (kept.order_time < ts(edge)) if side == "before" else (kept.order_time >= ts(edge))
            rows = eng.to_pandas(kept.filter(far).order_by("row").select("row").limit(5))["row"]
            led.warnings.append(f"{total} order time(s) more than 5 years {side} the bulk of the data ({pct} "
                                f"percentile {p:%Y-%m-%d}): rows {', '.join(str(int(r) + 1) for r in rows)}; check them")


def _phone_ids_warning(eng: Engine, kept: ibis.Table, led: Ledger) -> None:
    """One warning when the customer ids look like phone numbers (the distinct ids of the
    first lines checked: a filter on the line number, cheap in every engine)."""
    first = eng.to_pandas(kept.filter(kept.row < 10 * _cols._ID_SAMPLE).select("customer_id", "row"))
    first = first.sort_values("row").drop_duplicates("customer_id").head(_cols._ID_SAMPLE)
    note = _cols.phone_shaped_ids(list(first["customer_id"]), first["row"].to_numpy())
    if note:
        led.warnings.append(note)


def _roll_up(ok: ibis.Table, obs_end) -> ibis.Table:
    """Per order id: ``lo``/``hi`` customer ids over all good lines, ``last`` time, ``n_in``
    lines up to ``obs_end``, and those lines rolled up (amount and quantity summed, the
    earliest time, other attributes of the first line in the file; ``line`` = that line's
    file row, 0-based, so ordering by ``(order_time, line)`` breaks ties in file order)."""
    inside = None if obs_end is None else ok.order_time <= ts(obs_end)
    agg = {"lo": ok.customer_id.min(), "hi": ok.customer_id.max(), "last": ok.order_time.max(),
           "n_in": ok.row.count(where=inside), "order_time": ok.order_time.min(where=inside),
           "amount": ok.amount.sum(where=inside), "status": ok.status.argmin(ok.row, where=inside)}
    for c in OPTIONAL + PII_COLUMNS:
        if c in ok.columns:
            agg[c] = ok[c].sum(where=inside) if c == "quantity" else ok[c].argmin(ok.row, where=inside)
    agg["line"] = ok.row.min(where=inside)
    return ok.group_by("order_id").aggregate(**agg)


def _orders(per_order: ibis.Table) -> ibis.Table:
    """The orders: not shared, with a line up to the observation end."""
    o = per_order.filter((per_order.lo == per_order.hi) & (per_order.n_in > 0))
    cols = [c for c in per_order.columns if c not in ("order_id", "lo", "hi", "last", "n_in", "order_time",
                                                      "amount", "status")]
    return o.select(o.order_id, o.lo.name("customer_id"), o.order_time, o.amount, o.status, *[o[c] for c in cols])


def _netted(eng: Engine, t: ibis.Table, bad: ibis.Table, orders: ibis.Table, obs_end,
            led: Ledger, keep_lines: bool = False) -> tuple[ibis.Table, ibis.Table, ibis.Table | None]:
    """Reversal lines netted against the orders (:mod:`crmlab.ingest.returns`): the excluded
    lines ``bad`` of the marked lines ``t`` re-marked (reversals after ``obs_end``) and joined
    by the lines of fully reversed orders; the orders; the customers' credits. ``keep_lines``:
    the purchase lines are kept as a table (read three times) instead of marked again each time."""
    if obs_end is not None:
        bad = bad.mutate(reason=ibis.ifelse((bad.reason == "reversal_line") & (bad.order_time > ts(obs_end)),
                                            "after_observation_end", bad.reason))
    rev = bad.filter(bad.reason == "reversal_line")
    if int(eng.to_pandas(rev.aggregate(n=rev.row.count()))["n"].iloc[0]) == 0:  # nothing to net: as before
        return bad, orders, None
    rev = rev.cache()
    buys = t.filter(t.reason.isnull())
    buys = buys.cache() if keep_lines else buys
    credits = _ret.customer_credits(rev, buys, orders).cache()  # matched against the orders before netting
    orders, gone, led.returns = _ret.net_returns(rev, buys, orders, eng)
    lost = buys.semi_join(gone, buys.order_id == gone.gone_id)
    lost = lost.mutate(reason=ibis.literal("order_fully_reversed", "string"))
    return bad.union(lost.select(*bad.columns)), orders, credits


def load_export(source, engine: str | Engine | None = None, *, columns=None, observation_end=None,
                timezone: str | None = None, decimal: str = ".", dayfirst: bool | None = None, now=None,
                keep_pii: bool = False, chunk_rows: int = CHUNK_ROWS, sheet: str | None = None,
                returns: str | None = None) -> tuple[OrderTable, Ledger]:
    """Validate an order export into ``engine``: the orders and the ledger (see the module doc
    and :func:`crmlab.ingest.readers.load_orders` for the parameters).

    Raises
    ------
    CrmlabInputError
        Unreadable input, missing columns, unreadable slash dates, no usable row.
    """
    zone, tzname = _v._zone(timezone)
    _v._check_decimal(decimal)
    mode = _ret.check_mode(returns)
    obs_end = _v.parse_observation_end(observation_end, tzname)
    now_ts = _v._now(now, zone)
    eng = get_engine(engine)
    raw = eng.con.con if eng.name == "duckdb" else local_duckdb()
    out = f"crmlab_lines_{os.getpid()}_{next(_stages)}"
    try:
        n, ex = _stage(source, columns, chunk_rows, raw, out, zone=zone, tzname=tzname, dayfirst=dayfirst,
                       decimal=decimal, now=now_ts, keep_pii=keep_pii, sheet=sheet)
        lines = _screened_lines(eng, raw, out)
        settings = settings_for(eng, tzname)
        led = Ledger(file=ex.name, input_rows=n, sha256=ex.sha256, kind="orders", settings=settings)
        led.timezone, led.warnings = tzname, list(ex.warnings)
        rev_mask = _ret.reversal_mask(lines, mode)
        if rev_mask is not None:
            lines = lines.mutate(reason=ibis.ifelse(rev_mask, "reversal_line", lines.reason))
        t, per_order = _mark_set_level(lines, obs_end)
        kept = t.filter(t.reason.isnull())
        # the reversal lines, read from the screened lines (no joins): marking only turns a copy of
        # a reversal line into a duplicate, whose time is its first copy's
        n_rev, r_end = 0, None
        if rev_mask is not None:
            rv = lines.filter(lines.reason == "reversal_line")
            r = eng.to_pandas(rv.aggregate(n=rv.row.count(), end=rv.order_time.max()))
            n_rev, r_end = int(r["n"].iloc[0]), r["end"].iloc[0]
        if obs_end is None:
            whole = per_order.filter(per_order.lo == per_order.hi)
            end = eng.to_pandas(whole.last.max().name("end").as_table())["end"].iloc[0]
            if n_rev:  # a credit note is a document of the export: its time counts too
                end = end if pd.isna(r_end) else r_end if pd.isna(end) else max(end, r_end)
            obs_end = None if pd.isna(end) else pd.Timestamp(end)
        elif obs_end > now_ts:
            led.warnings.append(f"observation end {obs_end} is after the time of the run "
                                f"({now_ts:%Y-%m-%d %H:%M} {tzname})")
        led.observation_end = obs_end
        orders, credits = _orders(per_order), None
        bad = excluded = _excluded(t, every_column=n_rev > 0)  # the returns read every column
        if n_rev:
            small = eng.name == "duckdb" and n <= LINES_MARKED_IN_MEMORY
            bad, orders, credits = _netted(eng, t, excluded, orders, obs_end, led, small)
        _count_reasons(eng, bad, led)
        led.check()
        if led.used_rows == 0:
            raise CrmlabInputError(f"{ex.name}: no usable rows left after exclusions ({led.excluded})")
        _outlier_warnings(eng, lines, excluded, kept, led)
        _phone_ids_warning(eng, kept, led)
        orders = orders.cache()
        raw.execute(f"DROP TABLE IF EXISTS {out}")  # the orders are materialised: the lines can go
        size = eng.to_pandas(orders.aggregate(n=orders.line.count(), c=orders.customer_id.nunique()))
        led.orders, led.customers = int(size["n"].iloc[0]), int(size["c"].iloc[0])
    finally:
        raw.execute(f"DROP TABLE IF EXISTS {out}")
    ot = OrderTable(orders, obs_end, eng, ex.name, settings, credits=credits)
    led.truncation = _truncation(ot)
    return ot, led
