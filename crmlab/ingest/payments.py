"""Reading what payment reminders (催付) need: orders with their created and paid times, and
the reminder sends that name their order.

Every other command reads ``order_time`` (订单付款时间, else 订单创建时间) and leaves unpaid
orders out of sales; reminders need the other view of the same export, one row per order:
``order_id, customer_id, created_time, paid_time, closed_time, status, amount``
(:data:`crmlab.schema.PAYMENT_ALIASES`: 订单创建时间, 订单付款时间, 订单关闭时间 are
recognised). The send log's reminder rows are those with an ``order_id``
(:data:`crmlab.schema.REMINDER_SEND_ALIASES`). Both are read in chunks (bounded memory, as
:mod:`crmlab.ingest.screening` reads exports); a bad input is one line naming the file, the
column and the first rows (:class:`crmlab.schema.CrmlabInputError`).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from crmlab.ingest import columns as _cols
from crmlab.ingest import values as _v
from crmlab.ingest.screening import CHUNK_ROWS, mapped_chunks, status_of
from crmlab.schema import PAYMENT_ALIASES, REMINDER_SEND_ALIASES, CrmlabInputError

__all__ = ["load_payment_orders", "load_reminder_sends", "ORDER_COLUMNS", "SEND_COLUMNS"]

#: the columns of :func:`load_payment_orders`'s frame
ORDER_COLUMNS = ("order_id", "customer_id", "created_time", "paid_time", "closed_time", "status", "amount")
#: the columns of :func:`load_reminder_sends`'s frame
SEND_COLUMNS = ("order_id", "customer_id", "campaign_id", "variant", "send_time", "delivered", "segments", "cost")
_ORDER_REQUIRED = ("customer_id", "order_id", "created_time", "amount")
_SEND_REQUIRED = ("customer_id", "order_id", "variant", "send_time")
_HINT = {"created_time": "the order's created time, 订单创建时间", "order_id": "the order a reminder is about, 订单编号",
         "amount": "the order's amount, 实付金额", "customer_id": "买家会员名", "variant": "the arm, e.g. none or 6h",
         "send_time": "发送时间"}
_FALSE = {"false", "0", "no", "n", "f", "否", "失败", "未送达", "failed"}


def _rows(mask: np.ndarray, first_row: int) -> str:
    return ", ".join(str(first_row + int(i) + 2) for i in np.flatnonzero(mask)[:5])  # +2: header, 1-based


def _chunks(source, columns, aliases, required, sheet, chunk_rows, how: str = "map it with --columns {c}=HEADER"):
    """Mapped chunks of ``source`` (:func:`crmlab.ingest.screening.mapped_chunks`), its name and
    where each column came from; a missing column names what payment reminders need it for."""
    def check(mapped: pd.DataFrame, name: str, found: list[str]) -> None:
        try:
            _cols._require(mapped, required, name, found)
        except CrmlabInputError as e:
            missing = next((c for c in required if c not in mapped.columns), "")
            raise CrmlabInputError(f"{e}; payment reminders need it ({_HINT.get(missing, missing)}): "
                                   + how.format(c=missing, alias=aliases.get(missing, ("",))[0])) from None

    chunks, name, _, _, origin = mapped_chunks(source, columns, aliases, required, chunk_rows, sheet, check)
    return chunks, name, origin


def _times(df, col, zone, dayfirst, where, start, strict: bool) -> pd.Series:
    """A time column; unreadable non-blank values are an error (``strict``) naming the rows."""
    if col not in df.columns:
        return pd.Series(pd.NaT, index=df.index, dtype="datetime64[ns]")
    t = _v._parse_time(df[col], zone, dayfirst, where)
    bad = t.isna().to_numpy() & ~_v._blank(df[col])
    if strict and bad.any():
        raise CrmlabInputError(f"{where}: {int(bad.sum())} value(s) are not times (rows {_rows(bad, start)})")
    return t


def _order_chunk(df: pd.DataFrame, start: int, zone, dayfirst, decimal, name, origin, skipped: dict) -> pd.DataFrame:
    """One chunk as typed order lines; lines without ids or a created time are counted and dropped."""
    where = {c: _cols._where(name, origin, c) for c in ("created_time", "paid_time", "closed_time")}
    keep = ~(_v._blank(df["customer_id"]) | _v._blank(df["order_id"]))
    skipped["missing_id"] = skipped.get("missing_id", 0) + int((~keep).sum())
    created = _times(df, "created_time", zone, dayfirst, where["created_time"], start, strict=False)
    no_created = keep & created.isna().to_numpy()
    skipped["no_created_time"] = skipped.get("no_created_time", 0) + int(no_created.sum())
    keep &= ~no_created
    paid = _times(df, "paid_time", zone, dayfirst, where["paid_time"], start, strict=True)
    early = keep & (paid < created).to_numpy()  # paid before it was placed: a broken row, not a payment
    skipped["paid_before_created"] = skipped.get("paid_before_created", 0) + int(early.sum())
    keep &= ~early
    closed = _times(df, "closed_time", zone, dayfirst, where["closed_time"], start, strict=True)
    amount, ambiguous, _ = _v._parse_number(df["amount"], decimal)
    bad = keep & (amount.isna().to_numpy() | ambiguous)
    if bad.any():
        raise CrmlabInputError(f"{_cols._where(name, origin, 'amount')}: {int(bad.sum())} amount(s) not readable "
                               f"as numbers with decimal mark {decimal!r} (rows {_rows(bad, start)})")
    if "status" in df.columns:
        status, unknown = status_of(df["status"])
        status = status.where(~unknown, "unknown")
    else:
        status = pd.Series(np.where(paid.notna(), "paid", "unpaid"), index=df.index)
    out = pd.DataFrame({"order_id": _v._text(df["order_id"]).astype(str), "customer_id": _v._text(df["customer_id"]).astype(str),
                        "created_time": created.to_numpy("datetime64[ns]"), "paid_time": paid.to_numpy("datetime64[ns]"),
                        "closed_time": closed.to_numpy("datetime64[ns]"), "status": status.to_numpy(object),
                        "amount": amount.to_numpy(float)})
    return out[keep]


def load_payment_orders(source, columns=None, *, observation_end=None, timezone: str | None = None,
                        decimal: str = ".", dayfirst: bool | None = None, sheet: str | None = None,
                        chunk_rows: int = CHUNK_ROWS) -> pd.DataFrame:
    """The orders of an export as payment reminders read them, one row per order.

    Parameters
    ----------
    source : path or DataFrame
        The order export (CSV, Parquet, Excel) every command reads.
    columns : dict or str, optional
        ``created_time=订单创建时间,paid_time=...`` when the headers are not recognised.
    observation_end : str or Timestamp, optional
        Payments after it are not seen yet (default: the latest time in the file).
    timezone, decimal, dayfirst, sheet
        As in :func:`crmlab.ingest.readers.load_orders`.

    Returns
    -------
    DataFrame
        ``order_id, customer_id, created_time, paid_time (NaT: unpaid), closed_time (NaT:
        not given), status (paid, unpaid, refunded, cancelled), amount``; lines of one order
        rolled up (amount summed, earliest created and paid times). ``attrs``: ``source``,
        ``observation_end``, ``skipped`` (lines without ids or a created time, or paid before
        they were placed: counted, left out).

    Raises
    ------
    CrmlabInputError
        No created time column (订单创建时间) or amount, a paid or closed time that is not a
        time, an unreadable amount, or no order with a created time.
    """
    zone, tzname = _v._zone(timezone)
    _v._check_decimal(decimal)
    chunks, name, origin = _chunks(source, columns, PAYMENT_ALIASES, _ORDER_REQUIRED, sheet, chunk_rows)
    skipped: dict = {}
    parts, start = [], 0
    for df in chunks:
        df = df.reset_index(drop=True)
        parts.append(_order_chunk(df, start, zone, dayfirst, decimal, name, origin, skipped))
        start += len(df)
    lines = pd.concat(parts, ignore_index=True)
    if lines.empty:
        raise CrmlabInputError(f"{_cols._where(name, origin, 'created_time')}: no order with a readable created time")
    g = lines.groupby("order_id", sort=False)
    orders = g.agg(customer_id=("customer_id", "first"), created_time=("created_time", "min"),
                   paid_time=("paid_time", "min"), closed_time=("closed_time", "min"), status=("status", "first"),
                   amount=("amount", "sum")).reset_index()
    end = _v.parse_observation_end(observation_end, tzname)
    if end is None:
        end = pd.Series([orders[c].max() for c in ("created_time", "paid_time", "closed_time")]).max()
    else:  # not yet seen at the observation end
        orders = orders[orders["created_time"] <= end].copy()
        late = orders["paid_time"] > end
        orders.loc[late, "paid_time"] = pd.NaT
        orders.loc[late, "status"] = "unpaid"
        shut = orders["closed_time"] > end
        orders.loc[shut, "closed_time"] = pd.NaT
        orders.loc[shut & orders["paid_time"].isna(), "status"] = "unpaid"
    orders.attrs.update(source=name, observation_end=pd.Timestamp(end), skipped=skipped, timezone=tzname)
    return orders[list(ORDER_COLUMNS)]


def load_reminder_sends(source, columns=None, *, timezone: str | None = None, decimal: str = ".",
                        dayfirst: bool | None = None, sheet: str | None = None,
                        chunk_rows: int = CHUNK_ROWS) -> pd.DataFrame:
    """The reminder rows of an SMS send log: the rows that name an ``order_id`` (订单编号).

    Each row is one order's arm (``variant``: ``none``/``holdout``/``control`` or a delay such
    as ``6h``) and its reminder (``delivered`` false: not sent, e.g. the order was paid
    before its delay, or the no-reminder arm). Rows without an order id are other campaigns'
    and are skipped.

    Returns
    -------
    DataFrame
        ``order_id, customer_id, campaign_id, variant, send_time, delivered, segments, cost``
        (``segments``/``cost`` NaN when the log has no such column); ``attrs["source"]``.

    Raises
    ------
    CrmlabInputError
        No ``order_id`` column, an unreadable send time on a reminder row, or no reminder row.
    """
    zone, _ = _v._zone(timezone)
    chunks, name, origin = _chunks(source, columns, REMINDER_SEND_ALIASES, _SEND_REQUIRED, sheet, chunk_rows,
                                   how="name the column {c} (or {alias}) in the send log")
    parts, start = [], 0
    for df in chunks:
        df = df.reset_index(drop=True)
        keep = ~_v._blank(df["order_id"])
        where = _cols._where(name, origin, "send_time")
        t = _times(df, "send_time", zone, dayfirst, where, start, strict=False)
        bad = keep & t.isna().to_numpy()
        if bad.any():
            raise CrmlabInputError(f"{where}: {int(bad.sum())} reminder row(s) without a readable send time "
                                   f"(rows {_rows(bad, start)})")
        t = t[keep]
        part = pd.DataFrame({"order_id": _v._text(df["order_id"]).astype(str)[keep],
                             "customer_id": _v._text(df["customer_id"]).astype(str)[keep],
                             "campaign_id": (_v._text(df["campaign_id"]).astype(str)[keep] if "campaign_id" in df.columns
                                             else ""),
                             "variant": _v._text(df["variant"]).astype(str)[keep], "send_time": t})
        flag = _v._text(df["delivered"]).str.lower()[keep] if "delivered" in df.columns else None
        part["delivered"] = True if flag is None else ~flag.isin(_FALSE).fillna(False).to_numpy(bool)
        for c in ("segments", "cost"):
            part[c] = _v._parse_number(df[c], decimal)[0][keep].to_numpy(float) if c in df.columns else np.nan
        parts.append(part)
        start += len(df)
    sends = pd.concat(parts, ignore_index=True)
    if sends.empty:
        raise CrmlabInputError(f"{name}: no reminder row (no send names an order in column "
                               f"{origin.get('order_id', 'order_id')!r})")
    sends = sends.drop_duplicates("order_id", keep="first").reset_index(drop=True)
    sends.attrs["source"] = name
    return sends[list(SEND_COLUMNS)]
