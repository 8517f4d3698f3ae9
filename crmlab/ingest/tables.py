"""Reading an export file into a raw frame: CSV (encodings, delimiters, title rows), Parquet,
Excel (the sheet holding the export), or a DataFrame; inputs are checked before they are read.

Every input is a regular file (never a device, FIFO or folder), has no line longer than
:data:`MAX_LINE_BYTES` and no more than :data:`MAX_COLUMNS` columns; messages echo at most
:data:`ECHO_CHARS` characters of a value.
"""
from __future__ import annotations

import csv
import hashlib
import os
import re
import stat
from pathlib import Path

import pandas as pd

from crmlab.schema import CrmlabInputError

__all__ = ["read_table", "check_file", "MAX_LINE_BYTES", "MAX_COLUMNS", "ECHO_CHARS", "EXCEL_SUFFIXES"]


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
    Returns the raw frame, the input's name and its sha256 (None for a DataFrame, whose values
    the returned frame shares: crmlab never writes into them).

    Raises :class:`CrmlabInputError` for a missing, empty-named or non-regular file (a device
    or FIFO is never read), a line over :data:`MAX_LINE_BYTES`, more than
    :data:`MAX_COLUMNS` columns, or an unreadable file.
    """
    if isinstance(source, pd.DataFrame):
        return source.copy(deep=False), "<DataFrame>", None  # its own labels; values never written
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

