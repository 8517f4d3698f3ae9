"""The few aggregate builders every analysis uses, as Ibis expressions.

One implementation each, for every engine. They take an :class:`OrderTable` and return
expressions; analyses narrow them further and execute only small results (per cohort x
day, per k, per month, distinct RFM rows).

* :func:`paid_orders`: paid orders up to the observation end (the only purchases);
* :func:`order_sequence`: each paid order's place in its customer's sequence (``k``),
  the customer's first order time, the next order's time and the day number;
* :func:`cohort_sequence`: the same, for customers first seen on or after the lead-in;
* :func:`customer_table`: one row per customer (buyers and potentials);
* :func:`purchase_days`: paid sales per customer per calendar day (lifetimes' unit).

Kaplan–Meier has one implementation, :func:`crmlab.analyses.magic.km_factors` (engine log factors
per group and day, weighted or not) used by the magic curve and the dormancy percentile.
"""
from __future__ import annotations

import datetime as _dt

import ibis
import pandas as pd

from crmlab.engine.sources import OrderTable
from crmlab.present.spreadsheet import FORMULA_LEADS

__all__ = ["ts", "paid_orders", "order_sequence", "cohort_sequence", "customer_table", "customer_frame", "purchase_days",
           "day_number", "double", "write_rows", "neutralise_strings"]


def ts(value) -> ibis.Expr:
    """A timestamp literal (store-local, naive)."""
    v = pd.Timestamp(value)
    return ibis.literal(_dt.datetime(v.year, v.month, v.day, v.hour, v.minute, v.second, v.microsecond),
                        type="timestamp")


def double(value) -> ibis.Expr:
    """A float64 constant that is a double in every engine.

    A plain float literal is a DECIMAL in Spark SQL (``0.5``): decimal arithmetic there
    rounds differently and a decimal column comes back; a string cast to DOUBLE parses to
    the same double as Python's float (repr round-trips) in DuckDB and Spark."""
    return ibis.literal(repr(float(value)), type="string").cast("float64")


def day_number(value) -> ibis.Expr:
    return ibis.literal(pd.Timestamp(value).date(), type="date")


def paid_orders(orders: OrderTable) -> ibis.Table:
    """Paid orders up to the observation end."""
    t = orders.table
    return t.filter((t.status == "paid") & (t.order_time <= ts(orders.observation_end)))


def order_sequence(orders: OrderTable) -> ibis.Table:
    """Paid orders with ``k`` (1 = first), ``n_orders``, ``first_time``, ``next_time`` (null
    for the last) and ``day`` (whole calendar days since the first order's date).

    Orders at the same moment are ordered by ``line`` (the loader's order)."""
    p = paid_orders(orders)
    seq = ibis.window(group_by=p.customer_id, order_by=[p.order_time, p.line])
    whole = ibis.window(group_by=p.customer_id)
    s = p.mutate(k=ibis.row_number().over(seq) + 1, next_time=p.order_time.lead().over(seq),
                 first_time=p.order_time.min().over(whole), n_orders=p.line.count().over(whole))
    return s.mutate(day=s.order_time.date().delta(s.first_time.date(), unit="day"))


def cohort_sequence(orders: OrderTable) -> ibis.Table:
    """:func:`order_sequence` of the customers whose first paid order (over the whole export)
    is on or after ``orders.history_start`` (all customers when it is None).

    Customers first seen in the lead-in (before ``history_start``) bought before the export
    began, as far as anyone can tell: their ``k`` is not their place in their real sequence,
    so cohorts, first-time/returning splits and X-order counts leave them out."""
    s = order_sequence(orders)
    if orders.history_start is None:
        return s
    return s.filter(s.first_time >= ts(orders.history_start))


def customer_table(orders: OrderTable) -> ibis.Table:
    """One row per customer with any order up to the observation end.

    Columns: ``customer_id``, ``paid_orders``, ``sales`` (paid), ``first_time``,
    ``last_time`` (paid; null for potentials), ``unpaid_orders``, ``recency_days``
    (calendar days from the last paid order's date to the observation end's date), and
    ``first_channel`` / ``first_region`` (of the first paid order) where present.
    """
    t = orders.table
    t = t.filter(t.order_time <= ts(orders.observation_end))
    paid = t.status == "paid"
    c = t.group_by("customer_id").aggregate(
        paid_orders=t.line.count(where=paid), sales=t.amount.sum(where=paid).fill_null(0.0),
        first_time=t.order_time.min(where=paid), last_time=t.order_time.max(where=paid),
        unpaid_orders=t.line.count(where=t.status == "unpaid"))
    c = c.mutate(recency_days=day_number(orders.observation_end).delta(c.last_time.date(), unit="day")
                 .cast("float64"))
    extra = [x for x in ("channel", "region") if orders.has(x)]
    if extra:
        s = order_sequence(orders)
        firsts = s.filter(s.k == 1).select("customer_id", *[s[x].name(f"first_{x}") for x in extra])
        c = c.left_join(firsts, "customer_id").drop("customer_id_right")
    return c


def purchase_days(orders: OrderTable, end=None) -> ibis.Table:
    """Paid sales per customer per calendar day: ``customer_id``, ``day`` (date), ``amount``."""
    o = orders if end is None else orders.until(end)
    p = paid_orders(o)
    return p.group_by(["customer_id", p.order_time.date().name("day")]).aggregate(amount=p.amount.sum())


def customer_frame(orders: OrderTable) -> pd.DataFrame:
    """:func:`customer_table` in pandas, indexed by ``customer_id`` (sorted): per-customer
    outputs (lifecycle stages, RFM scores, target lists) start here."""
    df = orders.engine.to_pandas(customer_table(orders))
    df = df.sort_values("customer_id").set_index("customer_id")
    df["paid_orders"] = df["paid_orders"].astype(int)
    df["unpaid_orders"] = df["unpaid_orders"].astype(int)
    df.attrs["observation_end"] = orders.observation_end
    return df


def neutralise_strings(expr: ibis.Table) -> ibis.Table:
    """``expr`` with every text column neutralised for spreadsheets, in the engine (DuckDB
    and Spark alike): a value starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage
    return gets a leading ``'`` (:func:`crmlab.present.spreadsheet.neutralise_cell`); numbers and
    other text are untouched, nulls stay null."""
    cols = []
    for name, typ in expr.schema().items():
        c = expr[name]
        if typ.is_string():
            c = ibis.ifelse(c.substr(0, 1).isin(list(FORMULA_LEADS)), ibis.literal("'").concat(c), c).name(name)
        cols.append(c)
    return expr.select(*cols)


def write_rows(engine, expr: ibis.Table, path: str, *, raw: bool = False) -> None:
    """Write an expression's rows from the engine, never through pandas: Parquet, or CSV
    (with a header) when ``path`` ends in ``.csv``.

    A CSV is for people and spreadsheets: its text cells are neutralised against formula
    injection (:func:`neutralise_strings`) unless ``raw``; Parquet keeps every value as is.
    DuckDB writes either with ``COPY``; from Spark, Arrow record batches are streamed into
    one file (Spark itself would write a folder of parts)."""
    if not str(path).lower().endswith(".csv"):
        engine.to_parquet(expr, path)
        return
    if not raw:
        expr = neutralise_strings(expr)
    if engine.name == "duckdb":
        engine.con.to_csv(expr, path)
        return
    import pyarrow.csv as pacsv

    reader = engine.con.to_pyarrow_batches(expr)
    with pacsv.CSVWriter(path, reader.schema) as w:
        for batch in reader:
            w.write_batch(batch)
