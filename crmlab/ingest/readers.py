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

import csv
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from crmlab.schema import CrmlabInputError
from crmlab.ingest.values import (DEFAULT_TIMEZONE, _blank, _check_decimal, _parse_number, _parse_time, _text, _zone,
                           parse_observation_end)

__all__ = [
    "CrmlabInputError",
    "Ledger",
    "load_orders",
    "load_sends",
    "parse_columns",
    "parse_observation_end",
    "DEFAULT_TIMEZONE",
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
        End of the observation window used for the exclusion (store-local time).
    timezone : str or None
        The store time zone the times were read in (times with an offset converted to it).
    warnings : list of str
        Things the rows were not excluded for but a reader should know: title rows skipped
        above the header, a column replaced by an explicit mapping, times far outside the
        bulk of the data, an observation end later than the run.
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
    timezone: str | None = None
    warnings: list[str] = field(default_factory=list)

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
            "timezone": self.timezone,
            "warnings": list(self.warnings),
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


#: Longest line of a CSV export crmlab reads (bytes): a longer one is not an export (a binary
#: or a corrupt file) and would have to be held whole in memory.
MAX_LINE_BYTES = 64 * 2**20
#: Most columns an export may have (a 5,000-column export reads; a binary file split on
#: commas would give millions).
MAX_COLUMNS = 10_000
#: Longest value echoed in a message (a header of 50 MB must not come back on the terminal).
ECHO_CHARS = 80


def _short(value, n: int = ECHO_CHARS) -> str:
    """``value`` as text, cut to ``n`` characters (with the full length said) for a message."""
    s = " ".join(str(value).split())
    return s if len(s) <= n else f"{s[:n]}... ({len(str(value)):,} characters)"


def _listed(names, limit: int = 30) -> str:
    """Column or sheet names for a message: each cut short, at most ``limit`` of them."""
    names = [_short(n, 40 if len(names) > 5 else ECHO_CHARS) for n in names]
    more = len(names) - limit
    return ", ".join(names[:limit]) + (f", ... ({more:,} more)" if more > 0 else "")


def check_file(source) -> str:
    """The path of a file input, checked: not empty, existing, a regular file (never a
    device, FIFO, socket or folder: ``/dev/zero`` would be read for ever). Returns it."""
    import stat

    if source is None:
        raise CrmlabInputError("no input given (expected the path of an export or a DataFrame, got None)")
    try:
        path = os.fspath(source)
    except TypeError:
        raise CrmlabInputError(f"expected the path of an export or a DataFrame, got {type(source).__name__}") from None
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if not path.strip():
        raise CrmlabInputError("empty file name: expected the path of an export")
    name = _short(_name(path.rstrip("/\\")) or path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise CrmlabInputError(f"{name}: file not found ({_short(path)})") from None
    except OSError as e:
        raise CrmlabInputError(f"{name}: cannot open ({e.strerror or e})") from None
    if stat.S_ISDIR(st.st_mode):
        raise CrmlabInputError(f"{name}: is a directory, not a file ({_short(path)})")
    if not stat.S_ISREG(st.st_mode):
        kind = ("a character device" if stat.S_ISCHR(st.st_mode) else "a block device" if stat.S_ISBLK(st.st_mode)
                else "a FIFO (named pipe)" if stat.S_ISFIFO(st.st_mode) else "a socket" if stat.S_ISSOCK(st.st_mode)
                else "not a regular file")
        raise CrmlabInputError(f"{name}: is {kind}, not a regular file; crmlab reads exports saved as files "
                               f"({_short(path)})")
    return path


def _sha256(path: str, lines: bool = False) -> str:
    """The file's sha256; with ``lines``, also refuse a line longer than :data:`MAX_LINE_BYTES`
    (checked while hashing, before any parser holds the line in memory)."""
    import hashlib

    h = hashlib.sha256()
    last, pos, n_lines = -1, 0, 0  # offset of the last line break, bytes read, breaks seen
    size = min(1 << 23, max(MAX_LINE_BYTES, 1))  # a line over the limit then spans a block boundary
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(size), b""):
            h.update(block)
            if lines:
                nl, cr = block.find(b"\n"), block.find(b"\r")
                first = min(i for i in (nl, cr, len(block)) if i >= 0)
                if pos + first - last - 1 > MAX_LINE_BYTES:
                    raise CrmlabInputError(
                        f"{_short(_name(path))}: line {n_lines + 1} is longer than {MAX_LINE_BYTES // 2**20} MB, "
                        "crmlab's limit for one line of a CSV (is this file a CSV export?)")
                if first < len(block):
                    last = pos + max(block.rfind(b"\n"), block.rfind(b"\r"))
                    n_lines += block.count(b"\n") or block.count(b"\r")
            pos += len(block)
    return h.hexdigest()


def _check_width(n: int, name: str) -> None:
    if n > MAX_COLUMNS:
        raise CrmlabInputError(f"{_short(name)}: {n:,} columns, more than crmlab's limit of {MAX_COLUMNS:,} "
                               "(is this file an export of orders or sends?)")


_DELIMITERS = (",", "\t", ";")
_HEADER_SCAN = 10  # rows searched for the header below title rows


def _encoding(head: bytes) -> str:
    if head.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"  # the BOM gives the byte order (Excel's "Unicode text")
    sample = head[:4096]
    if b"\x00" in sample:  # UTF-16 without a BOM: every other byte of ASCII text is zero
        if sample[1::2].count(0) > len(sample) // 4:
            return "utf-16-le"
        if sample[0::2].count(0) > len(sample) // 4:
            return "utf-16-be"
    try:
        # a cut at the block end may split a multibyte character: decode whole lines
        cut = head.rfind(b"\n") if len(head) == (1 << 16) else len(head)
        head[: cut if cut > 0 else len(head)].decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        return "gb18030"  # superset of GBK and GB2312


def _fields(line: str, sep: str) -> list[str]:
    return next(csv.reader([line], delimiter=sep), [])


def _sniff(text: str, header_ok) -> tuple[str, int]:
    """Delimiter (comma, tab or semicolon) and the number of title lines above the header.

    The header is the first of the first lines that, split on one of the delimiters, holds
    the required columns; without one, line 1 split on its most frequent delimiter.
    """
    lines = re.split(r"\r\n|\n|\r", text)[: _HEADER_SCAN + 1]

    def by_count(line: str) -> list[str]:
        return sorted(_DELIMITERS, key=lambda d: -line.count(d))  # stable: comma on ties

    if header_ok is not None:
        for i, line in enumerate(lines[:_HEADER_SCAN]):
            for sep in by_count(line):
                if line.count(sep) and header_ok(_fields(line, sep)):
                    return sep, i
    return by_count(lines[0] if lines else "")[0], 0


def _head_width(text: str, sep: str, skip: int, name: str) -> None:
    """Refuse a header of more than :data:`MAX_COLUMNS` fields before pandas reads it."""
    lines = re.split(r"\r\n|\n|\r", text, maxsplit=skip + 1)
    _check_width(lines[min(skip, len(lines) - 1)].count(sep) + 1, name)


def _read_csv(path: str, header_ok=None) -> pd.DataFrame:
    with open(path, "rb") as f:
        head = f.read(1 << 16)
    encoding = _encoding(head)
    text = head.decode(encoding, errors="replace").lstrip("\ufeff")
    sep, skip = _sniff(text, header_ok)
    _head_width(text, sep, skip, _name(path))
    kw = dict(dtype=str, keep_default_na=False, na_values=[""], engine="c", sep=sep, skiprows=skip or None)
    try:
        df = pd.read_csv(path, encoding=encoding, **kw)
    except UnicodeDecodeError:
        if encoding.startswith("utf-16"):
            raise
        df = pd.read_csv(path, encoding="gb18030", **kw)
    if skip:
        df.attrs["crmlab_notes"] = [f"header found on row {skip + 1}; the {skip} title row(s) above it were skipped"]
    return df


def _find_header_row(df: pd.DataFrame, header_ok) -> pd.DataFrame:
    """Excel with title rows above the header: move the header up (a ledger note says so)."""
    if header_ok is None or header_ok(list(df.columns)):
        return df
    for i in range(min(_HEADER_SCAN, len(df))):
        names = ["" if pd.isna(v) else str(v) for v in df.iloc[i]]
        if header_ok(names):
            out = df.iloc[i + 1:].reset_index(drop=True)
            out.columns = names
            out.attrs["crmlab_notes"] = [f"header found on row {i + 2}; the {i + 1} title row(s) above it were "
                                         "skipped"]
            return out
    return df


def _sheet_fits(xl, sheet: str, header_ok) -> bool:
    """Whether the sheet's header (or one of the rows below its title rows) has the required columns."""
    head = xl.parse(sheet, header=None, nrows=_HEADER_SCAN + 1, dtype=str)
    return any(header_ok(["" if pd.isna(v) else str(v) for v in head.iloc[i]]) for i in range(len(head)))


def _read_excel(path: str, name: str, header_ok, sheet: str | None, sheet_option: str) -> pd.DataFrame:
    """The sheet of a workbook that holds the export: ``sheet`` if given; else the only sheet,
    or the only one with the required columns (a warning names it); several such sheets and
    no ``sheet`` is an error listing them (the first sheet is never taken silently: a refunds
    sheet first and the orders second gave wrong numbers)."""
    with pd.ExcelFile(path) as xl:
        names = [str(n) for n in xl.sheet_names]
        notes: list[str] = []
        if sheet is not None:
            if str(sheet) not in names:
                raise CrmlabInputError(f"{name}: {sheet_option} {_short(sheet)!r}: no such sheet (sheets: "
                                       f"{_listed(names)})")
            chosen = str(sheet)
        elif len(names) <= 1 or header_ok is None:
            chosen = names[0] if names else 0
        else:
            fits = [n for n in names if _sheet_fits(xl, n, header_ok)]
            if len(fits) > 1:
                raise CrmlabInputError(f"{name}: {len(fits)} sheets have the required columns ({_listed(fits)}); "
                                       f"choose one with {sheet_option} NAME")
            if not fits:
                raise CrmlabInputError(f"{name}: no sheet has the required columns (sheets: {_listed(names)}); "
                                       f"choose one with {sheet_option} NAME and map its headers with --columns")
            chosen = fits[0]
            notes.append(f"sheet {chosen!r} read: the only one of the workbook's {len(names)} sheets "
                         f"({_listed(names)}) with the required columns (choose another with {sheet_option})")
        df = _find_header_row(xl.parse(chosen, dtype=str), header_ok)
    df.attrs["crmlab_notes"] = notes + list(df.attrs.get("crmlab_notes", []))
    return df


EXCEL_SUFFIXES = (".xlsx", ".xlsm", ".xls")


def read_table(source, header_ok=None, *, sheet: str | None = None,
               sheet_option: str = "--sheet") -> tuple[pd.DataFrame, str, str | None]:
    """Read a CSV (UTF-8, UTF-8 with BOM, UTF-16 or GBK; comma, tab or semicolon), Parquet or
    Excel file, or a DataFrame.

    ``header_ok(names) -> bool``, if given, finds the header below title rows (CSV, Excel)
    and, in a workbook of several sheets, the sheet with the export (``sheet`` chooses it;
    ``sheet_option`` is how messages name that choice).
    Returns the raw frame, the input's name and its sha256 (None for a DataFrame).

    Raises :class:`CrmlabInputError` for a missing, empty-named or non-regular file (a device
    or FIFO is never read), a line over :data:`MAX_LINE_BYTES`, more than
    :data:`MAX_COLUMNS` columns, or an unreadable file.
    """
    if isinstance(source, pd.DataFrame):
        return source.copy(), "<DataFrame>", None
    path = check_file(source)
    name = _short(_name(path.rstrip("/\\")) or path)
    suffix = Path(path).suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            df = pd.read_parquet(path)
            sha = _sha256(path)
        elif suffix in EXCEL_SUFFIXES:
            df = _read_excel(path, name, header_ok, sheet, sheet_option)
            sha = _sha256(path)
        else:
            sha = _sha256(path, lines=True)  # before parsing: a huge line is refused unread
            df = _read_csv(path, header_ok)
    except CrmlabInputError:
        raise
    except Exception as e:  # unreadable: report one line
        raise CrmlabInputError(f"{name}: cannot read file ({type(e).__name__}: {_short(e, 200)})") from None
    _check_width(len(df.columns), name)
    df.columns = [str(c).strip().lstrip("\ufeff") for c in df.columns]
    return df, name, sha


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
                 name: str) -> tuple[pd.DataFrame, list[str], dict[str, str]]:
    """Rename to canonical names. An explicit mapping wins over a column already named like
    its target (that column is dropped, with a note). Returns the frame, the notes and
    canonical name -> header in the file."""
    found = list(df.columns)
    rename: dict[str, str] = {}
    notes: list[str] = []
    for canon, header in columns.items():
        if header not in df.columns:
            raise CrmlabInputError(
                f"{name}: mapped column {canon}={_short(header)!r} not found (columns found: {_listed(found)})")
        rename[header] = canon
    shadowed = [c for c, h in columns.items() if h != c and c in df.columns and c not in rename]
    if shadowed:
        df = df.drop(columns=shadowed)
        notes += [f"column '{c}' ignored: the mapping {c}={columns[c]} replaces it" for c in shadowed]
    for canon, names in aliases.items():
        if canon in rename.values() or canon in df.columns:
            continue
        for alias in names:
            if alias in df.columns and alias not in rename:
                rename[alias] = canon
                break
    out = df.rename(columns=rename)
    origin = {canon: header for header, canon in rename.items()}
    return out.loc[:, ~out.columns.duplicated()], notes, origin


def _header_test(columns: Mapping[str, str], aliases: Mapping[str, Sequence[str]], required: Sequence[str],
                 alternatives: Sequence[Sequence[str]] = ()):
    """``names -> bool``: would a header of these names give the required columns?"""
    def ok(names) -> bool:
        names = {str(n).strip().lstrip("\ufeff") for n in names}
        have = set(names) | {c for c, h in columns.items() if h in names}
        have |= {c for c, al in aliases.items() if any(a in names for a in al)}
        return all(r in have for r in required) and (
            not alternatives or any(all(c in have for c in alt) for alt in alternatives))
    return ok


def _require(df: pd.DataFrame, cols: Sequence[str], name: str, found: Sequence[str]) -> None:
    for c in cols:
        if c not in df.columns:
            raise CrmlabInputError(
                f"{name}: missing column '{c}' (columns found: {_listed(list(map(str, found)))})")


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


#: customer ids checked for a phone-number shape (the first distinct ones)
_ID_SAMPLE = 2000


def phone_shaped_ids(ids: Sequence, rows: Sequence[int] | None = None) -> str | None:
    """A warning when customer ids look like phone numbers (``+86 138 0013 8000``), else None.

    Reports never show a phone-shaped string: such ids are masked (or the report withheld),
    so the user is told once, at loading, instead of by several failed reports."""
    from crmlab.privacy import PHONE_PATTERN

    hits = [i for i, v in enumerate(ids) if isinstance(v, str) and PHONE_PATTERN.search(v)]
    if not hits:
        return None
    where = ", ".join(str(int(rows[i]) + 1) for i in hits[:5]) if rows is not None else ""
    return (f"customer ids look like phone numbers ({len(hits):,} of the {len(ids):,} checked"
            + (f", e.g. rows {where}" if where else "") + "): reports never show phone-shaped text, so these ids "
            "are masked in per-customer tables; map a non-phone customer id with --columns customer_id=HEADER")


#: ledger warnings the CLI also prints on stderr (``crmlab: warning: ...``): they change what
#: the reports show
NOTICE_PREFIXES = ("sheet ", "customer ids look like phone numbers")


def _where(name: str, origin: Mapping[str, str], canon: str) -> str:
    header = origin.get(canon, canon)
    return f"{name}: column {header!r}" + (f" ({canon})" if header != canon else "")


# ---------------------------------------------------------------------------- orders

def load_orders(source, columns: Mapping[str, str] | str | None = None, observation_end=None,
                keep_pii: bool = False, *, timezone: str | None = None, decimal: str = ".",
                dayfirst: bool | None = None, now=None, sheet: str | None = None) -> tuple[pd.DataFrame, Ledger]:
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
    from crmlab.engine.connection import connect
    from crmlab.ingest.export import load_export

    eng = connect("duckdb")  # validation runs in an embedded DuckDB; the result comes back to pandas
    o, led = load_export(source, eng, columns=columns, observation_end=observation_end, timezone=timezone,
                         decimal=decimal, dayfirst=dayfirst, now=now, keep_pii=keep_pii, sheet=sheet)
    orders = eng.to_pandas(o.table.order_by(["order_time", "line"])).drop(columns="line").reset_index(drop=True)
    front = ["order_id", "customer_id", "order_time", "amount", "status"]
    orders = orders[front + [c for c in orders.columns if c not in front]]
    orders["order_time"] = orders["order_time"].astype("datetime64[ns]")
    orders["customer_id"] = orders["customer_id"].astype("category")
    orders["status"] = pd.Categorical(orders["status"], categories=list(STATUSES))
    orders["order_id"] = orders["order_id"].astype(str)
    for c in ("channel", "region", "product", "category"):
        if c in orders.columns:
            orders[c] = orders[c].astype("category")
    orders.attrs["observation_end"] = led.observation_end
    orders.attrs["source"] = led.file
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
    drop, keep = screen.drop, screen.keep  # drop() narrows keep in place

    drop("exact_duplicate_line", df.duplicated(keep="first").to_numpy())
    drop("missing_customer_id", _blank(df["customer_id"]))
    drop("missing_campaign_id", _blank(df["campaign_id"]))
    drop("missing_variant", _blank(df["variant"]))
    t = _parse_time(df["send_time"], zone, dayfirst, _where(name, origin, "send_time"))
    drop("unparseable_send_time", t.isna().to_numpy())
    delivered = _parse_bool(df["delivered"]) if "delivered" in df.columns else pd.Series(True, index=df.index, dtype=object)
    drop("unreadable_delivered_flag", delivered.isna().to_numpy())
    numbers = {}
    for c in ("cost", "segments"):
        if c in df.columns:
            numbers[c] = _parse_number(df[c], decimal)
            drop(f"negative_{c}", (numbers[c][0] < 0).fillna(False).to_numpy(dtype=bool))
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
            v, ambiguous, _ = numbers[c]
            if (ambiguous & keep).any():
                rows = ", ".join(str(r + 1) for r in np.flatnonzero(ambiguous & keep)[:5])
                led.warnings.append(f"{int((ambiguous & keep).sum())} {c} value(s) with an ambiguous decimal "
                                    f"separator read as missing (rows {rows}); check the decimal mark "
                                    "(--decimal, decimal=)")
            sends[c] = v[keep].to_numpy()
    extra = ["copy"] + (["phone", "nickname"] if keep_pii else [])
    for c in extra:
        if c in df.columns:
            sends[c] = df[c].astype("string")[keep].to_numpy()
    first = pd.Series(np.flatnonzero(keep)).groupby(cust[keep].to_numpy(), sort=False).first()[:_ID_SAMPLE]
    note = phone_shaped_ids(list(first.index), first.to_numpy())
    if note:
        led.warnings.append(note)
    sends = sends.sort_values(["send_time", "customer_id"], kind="stable").reset_index(drop=True)
    led.orders = len(sends)
    led.customers = int(sends["customer_id"].nunique())
    sends.attrs["source"] = name
    return sends, led
