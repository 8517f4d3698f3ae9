"""Loading and validating a store's exports: the order table and the SMS send log.

Every load returns ``(table, ledger)``. The ledger accounts for every input row: it was
either used or excluded for a named reason (``used + excluded == input``, always).

Orders (one row per order or per order line)
    required ``customer_id``, ``order_id``, ``order_time`` and either ``amount`` or
    ``quantity`` + ``unit_price``; optional ``status``, ``channel``, ``region``,
    ``product``, ``category``, ``quantity``, ``nickname``, ``phone``.
Sends (SMS log, one row per message)
    required ``customer_id``, ``campaign_id``, ``variant``, ``send_time``; optional
    ``delivered``, ``cost``, ``segments``, ``copy``, ``phone``.

Lines sharing an ``order_id`` roll up to one order (amount summed, time = earliest line,
status, channel, region, product and category of the earliest line, quantity summed).
``customer_id`` comes back as a pandas categorical: the one-time integer encoding that
makes per-customer aggregation fast everywhere else in crmlab.

Personal data (``nickname``, ``phone``) is dropped from the returned tables unless
``keep_pii=True``; reports never need it.

Times are store-local: a time with an offset (``2024-01-02T13:00:00+08:00``, ``...Z``, a
tz-aware Parquet column) is converted to the store's time zone (``timezone=``, default
``Asia/Shanghai``) and then written without an offset; a time without an offset is taken as
already local. Different offsets in one column are fine. Slash dates (``01/02/2024``) follow
``dayfirst=`` or must be unambiguous within their column; ISO dates are never affected.
Amounts are read with ``.`` as the decimal mark (``1,234.50`` and ``1,234`` have thousands
separators) unless ``decimal=","``; ``12,50`` under ``.`` is excluded, never guessed.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from crmlab.engine.connection import connect
from crmlab.engine.frames import categorical, fetch_arrow
from crmlab.ingest.columns import (NOTICE_PREFIXES, _ID_SAMPLE, _header_test, _map_columns, _require, _where,
                                   parse_columns, phone_shaped_ids)
from crmlab.ingest.export import load_export
from crmlab.ingest.ledger import Ledger
from crmlab.ingest.tables import (ECHO_CHARS, EXCEL_SUFFIXES, MAX_COLUMNS, MAX_LINE_BYTES, _listed, _name, _short,
                                  check_file, read_table)
from crmlab.ingest.values import (DEFAULT_TIMEZONE, _blank, _check_decimal, _parse_number, _parse_time, _text, _zone,
                                  parse_observation_end)
from crmlab.schema import ORDER_ALIASES, PII_COLUMNS, SEND_ALIASES, STATUS_MAP, STATUSES, CrmlabInputError
from crmlab.settings import current

__all__ = [
    "CrmlabInputError",
    "Ledger",
    "load_orders",
    "load_sends",
    "parse_columns",
    "parse_observation_end",
    "read_table",
    "check_file",
    "phone_shaped_ids",
    "DEFAULT_TIMEZONE",
    "ORDER_ALIASES",
    "SEND_ALIASES",
    "STATUS_MAP",
    "STATUSES",
    "PII_COLUMNS",
    "NOTICE_PREFIXES",
]

_TRUE = {"true", "1", "yes", "y", "t", "是", "成功", "已送达", "delivered"}
_FALSE = {"false", "0", "no", "n", "f", "否", "失败", "未送达", "failed"}

class _Screen:
    """Row screening: each row is excluded once, under the first reason that applies to it."""

    def __init__(self, led: Ledger, n: int) -> None:
        self.led = led
        self.keep = np.ones(n, dtype=bool)
        self.rows = np.arange(n)

    def drop(self, reason: str, mask) -> None:
        mask = np.asarray(mask, dtype=bool) & self.keep
        self.keep &= self.led.exclude(reason, mask, self.rows)


def _open(source, columns, aliases: Mapping[str, Sequence[str]], required: Sequence[str], kind: str,
          alternatives: Sequence[Sequence[str]] = (), sheet: str | None = None,
          sheet_option: str = "--sheet") -> tuple[pd.DataFrame, str, list, Ledger, _Screen, dict]:
    """Read, map and check the required columns; start the ledger and the screen.

    Also returns canonical name -> header in the file (for messages)."""
    cols = parse_columns(columns)
    raw, name, sha = read_table(source, header_ok=_header_test(cols, aliases, required, alternatives), sheet=sheet,
                                sheet_option=sheet_option)
    notes = list(raw.attrs.get("crmlab_notes", []))
    found = list(raw.columns)
    df, mapped, origin = _map_columns(raw, cols, aliases, name)
    _require(df, required, name, found)
    df = df.reset_index(drop=True)
    led = Ledger(file=name, input_rows=len(df), sha256=sha, kind=kind)
    led.warnings += notes + mapped
    return df, name, found, led, _Screen(led, len(df)), origin


# ---------------------------------------------------------------------------- orders

def load_orders(source, columns: Mapping[str, str] | str | None = None, observation_end=None,
                keep_pii: bool = False, *, timezone: str | None = None, decimal: str = ".",
                dayfirst: bool | None = None, now=None, sheet: str | None = None,
                returns: str | None = None) -> tuple[pd.DataFrame, Ledger]:
    """Load an order export, validate it, roll lines up to orders.

    Parameters
    ----------
    source : path or DataFrame
        CSV (UTF-8, UTF-8 BOM, UTF-16 or GBK; comma, tab or semicolon separated; title rows
        above the header are skipped), Parquet, Excel, or a DataFrame.
    columns : dict or str, optional
        Mapping canonical name -> header in the file, e.g. ``{"customer_id": "买家会员名"}``
        (or the CLI's ``"customer_id=买家会员名,..."``). Common Chinese headers are
        recognised without it (see :data:`ORDER_ALIASES`). A mapping wins over a column
        already named like its target (that column is dropped; the ledger warns).
    observation_end : str or Timestamp, optional
        Orders after it are excluded. Defaults to the latest valid order time. A bare date
        means the end of that day.
    keep_pii : bool
        Keep ``nickname`` and ``phone`` (default: dropped).
    timezone : str, optional
        The store's IANA time zone (default: the one given to :func:`crmlab.set_timezone`,
        else ``Asia/Shanghai``). Times with an offset are converted to it and made naive;
        naive times are taken as store-local.
    decimal : ``"."`` or ``","``
        The decimal mark of amounts. With ``"."``, ``1,234.50`` has a thousands separator
        and ``12,50`` is excluded as ``ambiguous_decimal_comma``; with ``","``, ``12,50`` is
        12.5, ``1.234,50`` is 1234.5 and ``12.50`` is excluded as ``ambiguous_decimal_point``.
    dayfirst : bool, optional
        Slash dates (``01/02/2024``) day-first (True) or month-first (False). Default: as the
        column shows (a day above 12); an error if it shows both or cannot tell.
    now : str or Timestamp, optional
        The moment of the run (default: now in ``timezone``); later orders are excluded as
        ``in_the_future``.
    sheet : str, optional
        The sheet of an Excel workbook holding the orders. Default: the only sheet, or the
        only one with the required columns (the ledger warns which); an error when several
        sheets have them.
    returns : ``"net"``, ``"ignore"`` or None
        Reversal documents (negative lines: credit notes, ``C`` invoices) netted against the
        customer's purchases, see :mod:`crmlab.ingest.returns`; ``ledger.returns`` counts them.

    Returns
    -------
    orders : DataFrame
        One row per order: ``order_id, customer_id (categorical), order_time, amount,
        status`` and the optional columns present. ``orders.attrs["observation_end"]``
        holds the observation end.
    ledger : Ledger

    Raises
    ------
    CrmlabInputError
        File missing, not a regular file or unreadable, a required column absent, an unknown
        time zone, slash dates that cannot be read unambiguously, or no row left.
    """
    eng = connect("duckdb")  # validation runs in an embedded DuckDB; the result comes back to pandas
    o, led = load_export(source, eng, columns=columns, observation_end=observation_end, timezone=timezone,
                         decimal=decimal, dayfirst=dayfirst, now=now, keep_pii=keep_pii, sheet=sheet,
                         returns=returns)
    led.settings = o.settings.replace(engine=current().engine)  # the frame's results run in the session's engine
    orders = _order_frame(fetch_arrow(eng, o.table.order_by(["order_time", "line"])))
    orders.attrs["observation_end"] = led.observation_end
    orders.attrs["source"] = led.file
    orders.attrs["timezone"] = led.timezone
    return orders, led


def _order_frame(table) -> pd.DataFrame:
    """The validated orders (an Arrow table, in time order) as pandas types: categorical customer
    ids, statuses and attributes (encoded in Arrow, never through Python objects), text order ids."""
    front = ["order_id", "customer_id", "order_time", "amount", "status"]
    names = front + [c for c in table.column_names if c not in front and c != "line"]
    out = {}
    for c in names:
        col = table.column(c)
        if c in ("customer_id", "channel", "region", "product", "category"):
            out[c] = categorical(col)
        elif c == "status":
            out[c] = categorical(col, STATUSES)
        elif c == "order_id":  # text, never missing here: Python strings as they are (no astype pass)
            out[c] = col.to_pandas().to_numpy()
        else:  # a copy: Arrow's buffers are read-only, and the analyst's frame is theirs to edit
            out[c] = col.to_pandas(coerce_temporal_nanoseconds=True).to_numpy(copy=True)
    orders = pd.DataFrame(out, copy=False)
    orders["order_time"] = orders["order_time"].astype("datetime64[ns]")
    return orders


# ---------------------------------------------------------------------------- sends

def _parse_bool(s: pd.Series) -> pd.Series:
    if pd.api.types.is_bool_dtype(s):
        return s.astype(object)
    v = _text(s).str.lower()
    out = pd.Series(np.nan, index=s.index, dtype=object)
    out[v.isin(_TRUE).fillna(False).to_numpy()] = True
    out[v.isin(_FALSE).fillna(False).to_numpy()] = False
    out[v.isna().to_numpy() | (v == "").fillna(True).to_numpy()] = True  # default: delivered
    return out


def load_sends(source, columns: Mapping[str, str] | str | None = None, observation_end=None,
               keep_pii: bool = False, *, timezone: str | None = None, decimal: str = ".",
               dayfirst: bool | None = None, sheet: str | None = None) -> tuple[pd.DataFrame, Ledger]:
    """Load an SMS send log (one row per message).

    Exclusions: exact duplicate lines, missing customer id, missing campaign or variant,
    unparseable send time, unreadable ``delivered`` value, a negative ``cost`` or
    ``segments`` (``negative_cost``, ``negative_segments``), sends after the observation end,
    and a customer appearing in two variants of one campaign (all of that customer's
    sends in the campaign are excluded: the randomisation is broken for them). A repeat
    send of the same customer in the same variant is kept as one targeted customer and
    counted in billing.

    ``timezone``, ``decimal`` (for ``cost``) and ``dayfirst`` as in :func:`load_orders`; a
    ``cost`` whose decimal separator is ambiguous is read as missing (the ledger warns).
    ``sheet`` chooses the sheet of a workbook as in :func:`load_orders`.

    Returns
    -------
    sends : DataFrame
        ``customer_id, campaign_id, variant, send_time, delivered`` and optional
        ``cost, segments, copy`` (``phone`` only with ``keep_pii``).
    ledger : Ledger
    """
    zone, tzname = _zone(timezone)
    _check_decimal(decimal)
    obs_end = parse_observation_end(observation_end, tzname)
    df, name, _, led, screen, origin = _open(source, columns, SEND_ALIASES,
                                             ["customer_id", "campaign_id", "variant", "send_time"], "sends",
                                             sheet=sheet, sheet_option="--sends-sheet")
    led.timezone = tzname
    led.settings = current().replace(timezone=tzname)
    cols = _screen_sends(df, screen, zone, dayfirst, decimal, obs_end, _where(name, origin, "send_time"))
    led.observation_end = obs_end
    led.check()
    keep = screen.keep
    if not keep.any():
        raise CrmlabInputError(f"{name}: no usable rows left after exclusions ({led.excluded})")
    sends = pd.DataFrame({c: cols[c][keep].to_numpy() for c in ("customer_id", "campaign_id", "variant",
                                                                "send_time")})
    sends["delivered"] = cols["delivered"][keep].astype(bool).to_numpy()
    if "opt_out" in cols:
        sends["opt_out"] = cols["opt_out"][keep].astype(bool).to_numpy()
    for c in ("cost", "segments"):
        if c in cols:
            sends[c] = _kept_number(c, cols[c], keep, led)
    for c in ["copy"] + (["phone", "nickname"] if keep_pii else []):
        if c in df.columns:
            sends[c] = df[c].astype("string")[keep].to_numpy()
    first = pd.Series(np.flatnonzero(keep)).groupby(sends["customer_id"].to_numpy(), sort=False).first()[:_ID_SAMPLE]
    note = phone_shaped_ids(list(first.index), first.to_numpy())
    if note:
        led.warnings.append(note)
    sends = sends.sort_values(["send_time", "customer_id"], kind="stable").reset_index(drop=True)
    led.orders = len(sends)
    led.customers = int(sends["customer_id"].nunique())
    sends.attrs["source"] = name
    return sends, led


def _screen_sends(df: pd.DataFrame, screen: _Screen, zone, dayfirst, decimal: str, obs_end,
                  where: str) -> dict:
    """Exclude the send log's bad rows (each under its first reason); returns the parsed
    columns by name (``cost``/``segments`` as :func:`_parse_number`'s triples)."""
    drop = screen.drop  # narrows screen.keep in place
    drop("exact_duplicate_line", df.duplicated(keep="first").to_numpy())
    drop("missing_customer_id", _blank(df["customer_id"]))
    drop("missing_campaign_id", _blank(df["campaign_id"]))
    drop("missing_variant", _blank(df["variant"]))
    t = _parse_time(df["send_time"], zone, dayfirst, where)
    drop("unparseable_send_time", t.isna().to_numpy())
    delivered = _parse_bool(df["delivered"]) if "delivered" in df.columns else pd.Series(True, index=df.index, dtype=object)
    drop("unreadable_delivered_flag", delivered.isna().to_numpy())
    out = {"send_time": t, "delivered": delivered}
    if "opt_out" in df.columns:  # 退订: a blank is "did not unsubscribe"; never a reason to drop a send
        blank = _blank(df["opt_out"])
        opt = _parse_bool(df["opt_out"].where(~blank, "0"))
        num = pd.to_numeric(df["opt_out"], errors="coerce")  # 1.0 / 0.0: a yes/no column saved with blanks
        opt = opt.where(opt.notna(), num.map({1.0: True, 0.0: False}))
        bad = np.flatnonzero(opt.isna().to_numpy())
        if len(bad):
            screen.led.warnings.append(f"column opt_out: {len(bad):,} value(s) not read as yes/no (rows "
                                       f"{', '.join(str(r + 1) for r in bad[:5])}): the column is not used")
        else:
            out["opt_out"] = opt
    for c in ("cost", "segments"):
        if c in df.columns:
            out[c] = _parse_number(df[c], decimal)
            drop(f"negative_{c}", (out[c][0] < 0).fillna(False).to_numpy(dtype=bool))
    if obs_end is not None:
        drop("after_observation_end", (t > obs_end).to_numpy())
    cust, camp, var = _text(df["customer_id"]), _text(df["campaign_id"]), _text(df["variant"])
    keep = screen.keep
    k = pd.DataFrame({"c": cust[keep], "g": camp[keep], "v": var[keep]})
    nv = k.groupby(["g", "c"], sort=False)["v"].nunique()
    multi = nv[nv > 1].index
    if len(multi):
        drop("customer_in_several_variants", pd.MultiIndex.from_arrays([camp, cust]).isin(multi))
    out.update(customer_id=cust, campaign_id=camp, variant=var)
    return out


def _kept_number(c: str, parsed, keep: np.ndarray, led: Ledger) -> np.ndarray:
    """The kept values of a parsed number column; ambiguous decimals read as missing, with a warning."""
    v, ambiguous, _ = parsed
    if (ambiguous & keep).any():
        rows = ", ".join(str(r + 1) for r in np.flatnonzero(ambiguous & keep)[:5])
        led.warnings.append(f"{int((ambiguous & keep).sum())} {c} value(s) with an ambiguous decimal "
                            f"separator read as missing (rows {rows}); check the decimal mark "
                            "(--decimal, decimal=)")
    return v[keep].to_numpy()
