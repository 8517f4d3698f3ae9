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
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

__all__ = [
    "CrmlabInputError",
    "Ledger",
    "load_orders",
    "load_sends",
    "parse_columns",
    "parse_observation_end",
    "ORDER_ALIASES",
    "SEND_ALIASES",
    "STATUS_MAP",
    "PII_COLUMNS",
]

PII_COLUMNS = ("nickname", "phone")

#: Header names recognised without a mapping (besides the canonical English names).
#: Taobao/Tmall seller-centre exports and common Chinese headers.
ORDER_ALIASES: dict[str, tuple[str, ...]] = {
    "customer_id": ("买家会员名", "买家ID", "客户ID", "会员ID", "用户ID", "customer"),
    "order_id": ("订单编号", "订单号", "订单ID", "主订单编号"),
    "order_time": ("订单付款时间", "付款时间", "下单时间", "订单创建时间", "order_date"),
    "amount": ("买家实际支付金额", "实付金额", "支付金额", "订单金额", "金额"),
    "status": ("订单状态", "交易状态", "状态"),
    "channel": ("渠道", "来源渠道", "订单来源"),
    "region": ("地区", "省份", "收货省份"),
    "product": ("宝贝标题", "商品名称", "商品"),
    "category": ("宝贝种类", "类目", "品类"),
    "quantity": ("购买数量", "宝贝总数量", "数量"),
    "unit_price": ("单价", "宝贝单价"),
    "nickname": ("昵称", "买家昵称", "收货人姓名"),
    "phone": ("联系手机", "手机号", "手机"),
}
SEND_ALIASES: dict[str, tuple[str, ...]] = {
    "customer_id": ("买家会员名", "客户ID", "会员ID", "用户ID"),
    "campaign_id": ("活动ID", "活动编号", "活动名称"),
    "variant": ("分组", "版本", "arm"),
    "send_time": ("发送时间",),
    "delivered": ("发送成功", "是否成功", "发送状态"),
    "cost": ("费用", "成本"),
    "segments": ("计费条数",),
    "copy": ("短信内容", "文案"),
    "phone": ("手机号", "手机", "联系手机"),
}

#: Order status values (lower-cased English, or the Chinese export wording) -> crmlab status.
STATUS_MAP: dict[str, str] = {
    "paid": "paid", "已付款": "paid", "交易成功": "paid", "买家已付款": "paid",
    "卖家已发货": "paid", "等待卖家发货": "paid", "等待买家确认收货": "paid", "已完成": "paid",
    "unpaid": "unpaid", "等待付款": "unpaid", "未付款": "unpaid", "等待买家付款": "unpaid",
    "refunded": "refunded", "退款": "refunded", "退款成功": "refunded", "已退款": "refunded",
    "cancelled": "cancelled", "canceled": "cancelled", "交易关闭": "cancelled", "已取消": "cancelled",
}
STATUSES = ("paid", "unpaid", "refunded", "cancelled")

_TRUE = {"true", "1", "yes", "y", "t", "是", "成功", "已送达", "delivered"}
_FALSE = {"false", "0", "no", "n", "f", "否", "失败", "未送达", "failed"}


class CrmlabInputError(ValueError):
    """A fatal problem with an input: the CLI prints it on one line and exits 2."""


@dataclass
class Ledger:
    """Where every input row went.

    Attributes
    ----------
    file : str
        Name of the input (file name, or ``"<DataFrame>"``).
    input_rows : int
        Rows read.
    used_rows : int
        Rows kept (before lines roll up into orders).
    excluded : dict
        Reason -> number of rows excluded for it.
    examples : dict
        Reason -> first few row numbers excluded for it (1-based data rows, the header
        not counted; in a CSV that is line number minus one).
    orders, customers : int
        Orders and customers in the clean table (sends: messages and customers).
    observation_end : pandas.Timestamp or None
        End of the observation window used for the exclusion.
    """

    file: str
    input_rows: int
    used_rows: int = 0
    excluded: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[int]] = field(default_factory=dict)
    orders: int = 0
    customers: int = 0
    observation_end: pd.Timestamp | None = None
    sha256: str | None = None
    kind: str = "orders"

    def __post_init__(self) -> None:
        self.used_rows = self.input_rows

    def exclude(self, reason: str, mask: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Count rows of ``mask`` under ``reason``; return the complement (rows kept)."""
        n = int(mask.sum())
        if n:
            self.excluded[reason] = self.excluded.get(reason, 0) + n
            self.examples.setdefault(reason, [int(r) + 1 for r in rows[mask][:5]])
            self.used_rows -= n
        return ~mask

    @property
    def excluded_rows(self) -> int:
        return int(sum(self.excluded.values()))

    def check(self) -> None:
        """Assert the ledger balances (used + excluded == input)."""
        if self.used_rows + self.excluded_rows != self.input_rows:  # pragma: no cover
            raise AssertionError(f"ledger does not balance: {self.to_dict()}")

    def to_dict(self) -> dict:
        d = {
            "file": self.file,
            "input_rows": self.input_rows,
            "used_rows": self.used_rows,
            ("orders" if self.kind == "orders" else "messages"): self.orders,
            "customers": self.customers,
            "excluded": dict(self.excluded),
            "examples": {k: list(v) for k, v in self.examples.items()},
            "observation_end": None if self.observation_end is None else str(self.observation_end),
        }
        if self.sha256:
            d["sha256"] = self.sha256
        return d

    def to_frame(self) -> pd.DataFrame:
        """The ledger as a table for reports: one line per outcome, rows and share."""
        rows = [("used", self.used_rows, "")]
        rows += [(f"excluded: {k}", v, ", ".join(map(str, self.examples.get(k, []))))
                 for k, v in self.excluded.items()]
        rows.append(("input", self.input_rows, ""))
        df = pd.DataFrame(rows, columns=["rows", "count", "example rows"]).set_index("rows")
        df["share"] = df["count"] / max(self.input_rows, 1)
        return df


# ---------------------------------------------------------------------------- reading

def _name(source) -> str:
    if isinstance(source, pd.DataFrame):
        return "<DataFrame>"
    return os.path.basename(str(source))


def _sha256(path: str) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _read_csv(path: str) -> pd.DataFrame:
    with open(path, "rb") as f:
        head = f.read(1 << 16)
    if head.startswith(b"\xef\xbb\xbf"):
        encoding = "utf-8-sig"
    else:
        try:
            # a cut at the block end may split a multibyte character: decode whole lines
            cut = head.rfind(b"\n") if len(head) == (1 << 16) else len(head)
            head[: cut if cut > 0 else len(head)].decode("utf-8")
            encoding = "utf-8"
        except UnicodeDecodeError:
            encoding = "gb18030"  # superset of GBK and GB2312
    try:
        return pd.read_csv(path, dtype=str, encoding=encoding, keep_default_na=False,
                           na_values=[""], engine="c")
    except UnicodeDecodeError:
        return pd.read_csv(path, dtype=str, encoding="gb18030", keep_default_na=False,
                           na_values=[""], engine="c")


def read_table(source) -> tuple[pd.DataFrame, str, str | None]:
    """Read a CSV (UTF-8, UTF-8 with BOM or GBK), Parquet or Excel file, or a DataFrame.

    Returns the raw frame, the input's name and its sha256 (None for a DataFrame).
    """
    if isinstance(source, pd.DataFrame):
        return source.copy(), "<DataFrame>", None
    path = os.fspath(source)
    name = _name(path)
    if not os.path.exists(path):
        raise CrmlabInputError(f"{name}: file not found ({path})")
    suffix = Path(path).suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            df = pd.read_parquet(path)
        elif suffix in (".xlsx", ".xlsm", ".xls"):
            df = pd.read_excel(path, dtype=str)
        else:
            df = _read_csv(path)
    except CrmlabInputError:
        raise
    except Exception as e:  # unreadable: report one line
        raise CrmlabInputError(f"{name}: cannot read file ({type(e).__name__}: {e})") from None
    df.columns = [str(c).strip().lstrip("\ufeff") for c in df.columns]
    return df, name, _sha256(path)


def parse_columns(spec: str | Mapping[str, str] | None) -> dict[str, str]:
    """Parse ``"customer_id=买家会员名,order_time=订单付款时间"`` into a dict."""
    if spec is None:
        return {}
    if isinstance(spec, Mapping):
        return dict(spec)
    out: dict[str, str] = {}
    for part in str(spec).split(","):
        if not part.strip():
            continue
        if "=" not in part:
            raise CrmlabInputError(f"--columns: expected name=header, got {part!r}")
        k, v = part.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def _map_columns(df: pd.DataFrame, columns: Mapping[str, str], aliases: Mapping[str, Sequence[str]],
                 name: str) -> pd.DataFrame:
    found = list(df.columns)
    rename: dict[str, str] = {}
    for canon, header in columns.items():
        if header not in df.columns:
            raise CrmlabInputError(
                f"{name}: mapped column {canon}={header!r} not found (columns found: {', '.join(found)})")
        rename[header] = canon
    for canon, names in aliases.items():
        if canon in rename.values() or canon in df.columns:
            continue
        for alias in names:
            if alias in df.columns and alias not in rename:
                rename[alias] = canon
                break
    out = df.rename(columns=rename)
    return out.loc[:, ~out.columns.duplicated()]


def _require(df: pd.DataFrame, cols: Sequence[str], name: str, found: Sequence[str]) -> None:
    for c in cols:
        if c not in df.columns:
            raise CrmlabInputError(
                f"{name}: missing column '{c}' (columns found: {', '.join(map(str, found))})")


def parse_observation_end(value) -> pd.Timestamp | None:
    """A date without a time means the end of that day (``2025-12-31`` -> 23:59:59.999999)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    ts = pd.Timestamp(value)
    if ts.tzinfo is not None:
        ts = ts.tz_convert(None)
    if isinstance(value, str) and len(value.strip()) <= 10:
        ts = ts.normalize() + pd.Timedelta(days=1) - pd.Timedelta(microseconds=1)
    return ts


def _text(s: pd.Series) -> pd.Series:
    """As Arrow-backed strings (vectorised ``.str`` methods), stripped of surrounding blanks."""
    if not isinstance(s.dtype, pd.StringDtype) or s.dtype.storage != "pyarrow":
        s = s.astype("string[pyarrow]")
    return s.str.strip()


def _parse_time(s: pd.Series) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(s):
        t = s
        if getattr(t.dt, "tz", None) is not None:
            t = t.dt.tz_convert(None)
        return t.astype("datetime64[ns]")
    s = _text(s)
    t = pd.to_datetime(s, errors="coerce", format="ISO8601")
    bad = t.isna() & s.notna()
    if bad.any():
        t.loc[bad] = pd.to_datetime(s[bad], errors="coerce", format="mixed")
    if getattr(t.dt, "tz", None) is not None:
        t = t.dt.tz_convert(None)
    return t.astype("datetime64[ns]")


def _parse_number(s: pd.Series) -> pd.Series:
    if pd.api.types.is_numeric_dtype(s):
        return s.astype(float)
    s = _text(s).str.replace(",", "", regex=False).str.replace("¥", "", regex=False)
    return pd.to_numeric(s, errors="coerce").astype(float)


def _blank(s: pd.Series) -> np.ndarray:
    return (_text(s).fillna("") == "").to_numpy(dtype=bool)


class _Screen:
    """Row screening: each row is excluded once, under the first reason that applies to it."""

    def __init__(self, led: Ledger, n: int) -> None:
        self.led = led
        self.keep = np.ones(n, dtype=bool)
        self.rows = np.arange(n)

    def drop(self, reason: str, mask) -> None:
        mask = np.asarray(mask, dtype=bool) & self.keep
        self.keep &= self.led.exclude(reason, mask, self.rows)


def _open(source, columns, aliases: Mapping[str, Sequence[str]], required: Sequence[str],
          kind: str) -> tuple[pd.DataFrame, str, list, Ledger, _Screen]:
    """Read, map and check the required columns; start the ledger and the screen."""
    raw, name, sha = read_table(source)
    found = list(raw.columns)
    df = _map_columns(raw, parse_columns(columns), aliases, name)
    _require(df, required, name, found)
    led = Ledger(file=name, input_rows=len(df), sha256=sha, kind=kind)
    return df, name, found, led, _Screen(led, len(df))


# ---------------------------------------------------------------------------- orders

def load_orders(source, columns: Mapping[str, str] | str | None = None, observation_end=None,
                keep_pii: bool = False) -> tuple[pd.DataFrame, Ledger]:
    """Load an order export, validate it, roll lines up to orders.

    Parameters
    ----------
    source : path or DataFrame
        CSV (UTF-8, UTF-8 BOM or GBK), Parquet, Excel, or a DataFrame.
    columns : dict or str, optional
        Mapping canonical name -> header in the file, e.g. ``{"customer_id": "买家会员名"}``
        (or the CLI's ``"customer_id=买家会员名,..."``). Common Chinese headers are
        recognised without it (see :data:`ORDER_ALIASES`).
    observation_end : str or Timestamp, optional
        Orders after it are excluded. Defaults to the latest valid order time. A bare date
        means the end of that day.
    keep_pii : bool
        Keep ``nickname`` and ``phone`` (default: dropped).

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
        File missing or unreadable, a required column absent, or no row left.
    """
    df, name, found, led, screen = _open(source, columns, ORDER_ALIASES, ["customer_id", "order_id", "order_time"],
                                         "orders")
    if "amount" not in df.columns and not {"quantity", "unit_price"} <= set(df.columns):
        raise CrmlabInputError(
            f"{name}: missing column 'amount' (or 'quantity' and 'unit_price') (columns found: {', '.join(found)})")
    drop, keep = screen.drop, screen.keep  # drop() narrows keep in place

    drop("exact_duplicate_line", df.duplicated(keep="first").to_numpy())
    drop("missing_customer_id", _blank(df["customer_id"]))
    drop("missing_order_id", _blank(df["order_id"]))
    t = _parse_time(df["order_time"])
    drop("unparseable_order_time", t.isna().to_numpy())
    if "status" in df.columns:
        raw_status = _text(df["status"])
        status = raw_status.str.lower().map(STATUS_MAP)
        status = status.where(raw_status.notna() & (raw_status != ""), "paid")
        drop("unknown_status", status.isna().to_numpy())
        status = status.fillna("paid")
    else:
        status = pd.Series("paid", index=df.index)
    if "amount" in df.columns:
        amount = _parse_number(df["amount"])
    else:
        amount = _parse_number(df["quantity"]) * _parse_number(df["unit_price"])
    paid = (status == "paid").to_numpy()
    drop("non_numeric_amount", amount.isna().to_numpy())
    drop("negative_amount_on_paid_order", paid & (amount < 0).to_numpy())

    cust = _text(df["customer_id"])
    oid = _text(df["order_id"])
    # an order id shared by two customers is corrupt: drop all its lines
    k = pd.DataFrame({"o": oid[keep], "c": cust[keep]})
    n_cust = k.groupby("o", sort=False)["c"].nunique()
    shared = oid.isin(n_cust.index[n_cust > 1]).to_numpy()
    drop("order_id_shared_by_customers", shared)

    valid_t = t[keep]
    if observation_end is None:
        obs_end = valid_t.max() if len(valid_t) else None
    else:
        obs_end = parse_observation_end(observation_end)
        drop("after_observation_end", (t > obs_end).to_numpy())
    led.observation_end = obs_end
    led.check()
    if not keep.any():
        raise CrmlabInputError(f"{name}: no usable rows left after exclusions ({led.excluded})")

    def kept(x: pd.Series) -> pd.Series:
        return x[keep].reset_index(drop=True)

    lines = pd.DataFrame({"order_id": kept(oid), "customer_id": kept(cust), "order_time": kept(t),
                          "amount": kept(amount), "status": kept(status)})
    optional = ["channel", "region", "product", "category", "quantity"]
    if keep_pii:
        optional += list(PII_COLUMNS)
    for c in optional:
        if c in df.columns:
            lines[c] = kept(_parse_number(df[c]) if c == "quantity" else _text(df[c]))

    codes, uniq = pd.factorize(lines["order_id"])
    if len(uniq) == len(lines):
        orders = lines
    else:
        # roll lines up: amount and quantity summed, time the earliest line's, other
        # attributes from the order's first line in file order
        first = np.unique(codes, return_index=True)[1]
        orders = lines.iloc[first].reset_index(drop=True)
        orders["amount"] = np.bincount(codes, weights=lines["amount"].to_numpy(), minlength=len(uniq))
        if "quantity" in lines.columns:
            orders["quantity"] = np.bincount(codes, weights=lines["quantity"].fillna(0).to_numpy(),
                                             minlength=len(uniq))
        ti = lines["order_time"].to_numpy().view(np.int64).copy()
        earliest = np.full(len(uniq), np.iinfo(np.int64).max)
        np.minimum.at(earliest, codes, ti)
        orders["order_time"] = earliest.view("datetime64[ns]")
    order = np.argsort(orders["order_time"].to_numpy(), kind="stable")
    orders = orders.iloc[order].reset_index(drop=True)
    orders["customer_id"] = orders["customer_id"].astype("category")
    orders["status"] = pd.Categorical(orders["status"], categories=list(STATUSES))
    orders["order_id"] = orders["order_id"].astype(str)
    for c in ("channel", "region", "product", "category"):
        if c in orders.columns:
            orders[c] = orders[c].astype("category")
    led.orders = len(orders)
    led.customers = int(orders["customer_id"].nunique())
    orders.attrs["observation_end"] = obs_end
    orders.attrs["source"] = name
    return orders, led


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
               keep_pii: bool = False) -> tuple[pd.DataFrame, Ledger]:
    """Load an SMS send log (one row per message).

    Exclusions: exact duplicate lines, missing customer id, missing campaign or variant,
    unparseable send time, unreadable ``delivered`` value, sends after the observation end,
    and a customer appearing in two variants of one campaign (all of that customer's
    sends in the campaign are excluded: the randomisation is broken for them). A repeat
    send of the same customer in the same variant is kept as one targeted customer and
    counted in billing.

    Returns
    -------
    sends : DataFrame
        ``customer_id, campaign_id, variant, send_time, delivered`` and optional
        ``cost, segments, copy`` (``phone`` only with ``keep_pii``).
    ledger : Ledger
    """
    df, name, _, led, screen = _open(source, columns, SEND_ALIASES,
                                     ["customer_id", "campaign_id", "variant", "send_time"], "sends")
    drop, keep = screen.drop, screen.keep  # drop() narrows keep in place

    drop("exact_duplicate_line", df.duplicated(keep="first").to_numpy())
    drop("missing_customer_id", _blank(df["customer_id"]))
    drop("missing_campaign_id", _blank(df["campaign_id"]))
    drop("missing_variant", _blank(df["variant"]))
    t = _parse_time(df["send_time"])
    drop("unparseable_send_time", t.isna().to_numpy())
    delivered = _parse_bool(df["delivered"]) if "delivered" in df.columns else pd.Series(True, index=df.index, dtype=object)
    drop("unreadable_delivered_flag", delivered.isna().to_numpy())
    obs_end = parse_observation_end(observation_end)
    if obs_end is not None:
        drop("after_observation_end", (t > obs_end).to_numpy())
    cust = _text(df["customer_id"])
    camp = _text(df["campaign_id"])
    var = _text(df["variant"])
    k = pd.DataFrame({"c": cust[keep], "g": camp[keep], "v": var[keep]})
    nv = k.groupby(["g", "c"], sort=False)["v"].nunique()
    multi = nv[nv > 1].index
    if len(multi):
        key = pd.MultiIndex.from_arrays([camp, cust])
        drop("customer_in_several_variants", key.isin(multi))
    led.observation_end = obs_end
    led.check()
    if not keep.any():
        raise CrmlabInputError(f"{name}: no usable rows left after exclusions ({led.excluded})")
    sends = pd.DataFrame({"customer_id": cust[keep].to_numpy(), "campaign_id": camp[keep].to_numpy(),
                          "variant": var[keep].to_numpy(), "send_time": t[keep].to_numpy(),
                          "delivered": delivered[keep].astype(bool).to_numpy()})
    for c in ("cost", "segments"):
        if c in df.columns:
            sends[c] = _parse_number(df[c])[keep].to_numpy()
    extra = ["copy"] + (["phone", "nickname"] if keep_pii else [])
    for c in extra:
        if c in df.columns:
            sends[c] = df[c].astype("string")[keep].to_numpy()
    sends = sends.sort_values(["send_time", "customer_id"], kind="stable").reset_index(drop=True)
    led.orders = len(sends)
    led.customers = int(sends["customer_id"].nunique())
    sends.attrs["source"] = name
    return sends, led
