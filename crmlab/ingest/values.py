"""Reading values from an export: times in the store's time zone, amounts with a stated
decimal mark, blanks.

* Times with an offset (``...+08:00``, ``...Z``, tz-aware Parquet) are converted to the
  store's time zone and made naive; times without one are taken as store-local. Slash
  dates are read day-first or month-first as told, else as the column shows; never guessed.
* Amounts: with decimal ``"."`` a comma only groups thousands (``1,234.50``); ``12,50`` is
  ambiguous and flagged, never read as 1250. ``nan``/``inf`` written as text are flagged.
"""
from __future__ import annotations

import warnings as _warnings
import zoneinfo

import numpy as np
import pandas as pd

from crmlab.schema import CrmlabInputError
from crmlab.settings import DEFAULT, configure, current

#: The store time zone when none is given (the default settings'): times with an offset are
#: converted to it.
DEFAULT_TIMEZONE = DEFAULT.timezone


def set_timezone(timezone: str | None) -> str:
    """Set the session's store time zone once, e.g. at the top of a notebook (a shortcut for
    ``crmlab.settings.configure(timezone=...)``).

    Every loader called without ``timezone=`` then reads times in this zone (times with an
    offset are converted to it), and so do observation ends given with an offset.
    ``None`` goes back to the default, ``Asia/Shanghai``. Returns the zone's name.

    Raises
    ------
    CrmlabInputError
        Not an IANA time zone name.
    """
    _, name = _zone(DEFAULT_TIMEZONE if timezone is None else timezone)
    configure(timezone=name)
    return name


def get_timezone() -> str:
    """The time zone a loader uses without ``timezone=``: the session's
    (:func:`crmlab.settings.current`), by default :data:`DEFAULT_TIMEZONE`."""
    return current().timezone


def _zone(timezone):
    """Validate a time zone name (None: :func:`get_timezone`); returns ``(ZoneInfo, name)``."""
    tzname = get_timezone() if timezone is None else str(timezone).strip()
    try:
        return zoneinfo.ZoneInfo(tzname), tzname
    except Exception:  # not found, a directory of zones, a malformed key
        raise CrmlabInputError(
            f"timezone {tzname!r}: unknown time zone (use an IANA name such as Asia/Shanghai or UTC)") from None


def _local(ts: pd.Timestamp, zone) -> pd.Timestamp:
    """A time with an offset converted to the store zone and made naive; a naive time as is."""
    if ts.tzinfo is not None:
        ts = ts.tz_convert(zone).tz_localize(None)
    return ts


def parse_observation_end(value, timezone=None, what: str = "observation_end") -> pd.Timestamp | None:
    """A date without a time means the end of that day (``2025-12-31`` -> 23:59:59.999999).

    A time with an offset is converted to the store time zone ``timezone`` (default:
    :func:`get_timezone`); a naive time is store-local already. Raises :class:`CrmlabInputError` for anything else (one line).
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    zone, _ = _zone(timezone)
    text = value.strip() if isinstance(value, str) else value
    try:
        ts = pd.Timestamp(text)
        if pd.isna(ts):
            raise ValueError("not a time")
        ts = _local(ts, zone)
        if isinstance(text, str) and len(text) <= 10:
            ts = ts.normalize() + pd.Timedelta(days=1) - pd.Timedelta(microseconds=1)
        ts = ts.as_unit("ns")
    except (ValueError, TypeError, OverflowError):  # incl. parse errors and out of bounds
        raise CrmlabInputError(f"{what} {value!r}: not a date or time between 1678 and 2261 "
                               "(e.g. 2025-12-31 or 2025-12-31T18:00:00+08:00)") from None
    return ts


def _text(s: pd.Series) -> pd.Series:
    """As Arrow-backed strings (vectorised ``.str`` methods), stripped of surrounding blanks."""
    if not isinstance(s.dtype, pd.StringDtype) or s.dtype.storage != "pyarrow":
        s = s.astype("string[pyarrow]")
    return s.str.strip()


def _flag(x) -> np.ndarray:
    """A nullable boolean result as a NumPy bool array (missing -> False)."""
    return np.asarray(pd.Series(x).fillna(False), dtype=bool)


#: A time of day followed by an offset or a UTC marker at the end of the value.
_OFFSET_RE = r"\d:\d{2}(?::\d{2}(?:[.,]\d+)?)?\s*(?:[Zz]|UTC|GMT|[+-]\d{2}(?::?\d{2})?)$"
#: d/m/y or m/d/y (also with . or -), 2- or 4-digit year, optionally a time after it.
_DMY_RE = r"^(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{4}|\d{2})((?:[\s,T].*)?)$"
_DMY_TEST_RE = r"^\d{1,2}[/.\-]\d{1,2}[/.\-](?:\d{4}|\d{2})(?:[\s,T].*)?$"


def _naive_ns(t: pd.Series, zone) -> pd.Series:
    """Datetimes -> naive store-local ``datetime64[ns]`` (out-of-range values -> NaT)."""
    if isinstance(t.dtype, pd.DatetimeTZDtype):
        t = t.dt.tz_convert(zone).dt.tz_localize(None)
    try:
        return t.astype("datetime64[ns]")
    except (OverflowError, ValueError):  # e.g. year 2300 in a Parquet datetime64[us] column
        ok = (t >= pd.Timestamp.min) & (t <= pd.Timestamp.max)
        return t.where(ok).astype("datetime64[ns]")


_SPLIT_OFFSET_RE = r"^(?P<wall>.*\d)\s*(?P<offset>[Zz]|UTC|GMT|[+-]\d{2}(?::?\d{2})?)$"


def _arrow(s: pd.Series):
    import pyarrow as pa

    a = s.array.__arrow_array__()
    return a if isinstance(a, pa.ChunkedArray) else pa.chunked_array([a])


def _offset_times(s: pd.Series, zone, fmt: str) -> pd.Series:
    """Strings ending in an offset: wall time minus offset is UTC, then the store zone.

    Vectorised with Arrow (pandas parses offsets per value, several times slower)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    x = pc.extract_regex(_arrow(s), pattern=_SPLIT_OFFSET_RE)
    wall = pd.Series(pd.arrays.ArrowStringArray(pc.struct_field(x, [0]).cast(pa.large_string())), index=s.index)
    off = pc.replace_substring(pc.utf8_upper(pc.struct_field(x, [1])), ":", "")
    signed = pc.match_substring_regex(off, r"^[+-]")
    hh = pc.cast(pc.if_else(signed, pc.utf8_slice_codeunits(off, 1, 3), "0"), pa.int64())
    mm = pc.utf8_slice_codeunits(off, 3, 5)
    mm = pc.cast(pc.if_else(pc.equal(pc.utf8_length(mm), 0), "0", mm), pa.int64())
    minutes = pc.multiply(pc.if_else(pc.starts_with(off, "-"), -1, 1), pc.add(pc.multiply(hh, 60), mm))
    minutes = minutes.to_numpy().astype(float) if minutes.null_count == 0 else \
        np.asarray(minutes.to_pandas(), dtype=float)
    with _warnings.catch_warnings():
        _warnings.simplefilter("ignore")
        base = pd.to_datetime(wall, errors="coerce", format=fmt)
    if isinstance(base.dtype, pd.DatetimeTZDtype):  # pragma: no cover - the offset was stripped
        base = base.dt.tz_localize(None)
    utc = base.astype("datetime64[ns]") - pd.to_timedelta(minutes, unit="min")
    out = utc.dt.tz_localize("UTC").dt.tz_convert(zone).dt.tz_localize(None).astype("datetime64[ns]")
    slow = _flag(out.isna())
    if slow.any():  # forms the split does not cover: let pandas try
        with _warnings.catch_warnings():
            _warnings.simplefilter("ignore")
            out[slow] = _naive_ns(pd.to_datetime(s[slow], errors="coerce", format=fmt, utc=True), zone)
    return out


def _to_datetime(s: pd.Series, zone, fmt: str) -> pd.Series:
    """Parse strings; those with an offset converted to the zone, naive ones kept as written."""
    if not len(s):
        return pd.Series(pd.NaT, index=s.index, dtype="datetime64[ns]")
    head = s.dropna().head(1000)
    if not _flag(head.str.contains(_OFFSET_RE, regex=True)).any():
        t = None
        try:
            with _warnings.catch_warnings():
                _warnings.simplefilter("ignore")
                t = pd.to_datetime(s, errors="coerce", format=fmt)
        except (ValueError, TypeError):  # mixed offsets (an error in future pandas)
            pass
        if t is not None and pd.api.types.is_datetime64_dtype(t.dtype) and not isinstance(t.dtype, pd.DatetimeTZDtype):
            return t.astype("datetime64[ns]")  # no value had an offset: the common, fast path
    # some values have offsets: pandas would give naive values the offset of the others
    aware = _flag(s.str.contains(_OFFSET_RE, regex=True))
    out = pd.Series(pd.NaT, index=s.index, dtype="datetime64[ns]")
    if (~aware).any():
        with _warnings.catch_warnings():
            _warnings.simplefilter("ignore")
            out[~aware] = _naive_ns(pd.to_datetime(s[~aware], errors="coerce", format=fmt), zone)
    if aware.any():
        out[aware] = _offset_times(s[aware] if not aware.all() else s, zone, fmt)
    return out


def _rows(s: pd.Series, mask: np.ndarray, k: int = 2) -> str:
    """``row 3 '13/02/2024', row 7 ...`` for error messages (1-based data rows)."""
    idx = np.flatnonzero(mask)[:k]
    return ", ".join(f"row {int(s.index[i]) + 1} {s.iloc[i]!r}" for i in idx)


def _infer_dayfirst(s: pd.Series, where: str) -> bool:
    """Whether a column's slash dates are day-first, as its values show; an error when they
    show both or cannot tell (never guessed)."""
    parts = s.str.extract(_DMY_RE)
    a = pd.to_numeric(parts[0]).to_numpy()
    b = pd.to_numeric(parts[1]).to_numpy()
    day_first = (a > 12) & (b <= 12)
    month_first = (b > 12) & (a <= 12)
    if day_first.any() and month_first.any():
        raise CrmlabInputError(
            f"{where} mixes day-first and month-first dates ({_rows(s, day_first, 1)} is day-first, "
            f"{_rows(s, month_first, 1)} month-first): fix the export, or pass --dayfirst or --monthfirst")
    if day_first.any() or month_first.any():
        return bool(day_first.any())
    either = (a != b) & (a <= 12) & (b <= 12)
    if either.any():
        raise CrmlabInputError(
            f"{where} has dates that read either day-first or month-first ({_rows(s, either)}): "
            "pass --dayfirst or --monthfirst (keyword dayfirst=True or False)")
    return False  # every value reads the same both ways


def _parse_dmy(s: pd.Series, dayfirst: bool | None, where: str, zone) -> pd.Series:
    """Slash dates: day-first or month-first as told, else as the column shows; never guessed."""
    parts = s.str.extract(_DMY_RE)
    a = pd.to_numeric(parts[0]).to_numpy()
    b = pd.to_numeric(parts[1]).to_numpy()
    if dayfirst is None:
        dayfirst = _infer_dayfirst(s, where)
    day, month = (parts[0], parts[1]) if dayfirst else (parts[1], parts[0])
    dn, mn = (a, b) if dayfirst else (b, a)
    year = parts[2].where(parts[2].str.len() == 4, "20" + parts[2])
    iso = year + "-" + month.str.zfill(2) + "-" + day.str.zfill(2) + parts[3].fillna("")
    valid = (mn >= 1) & (mn <= 12) & (dn >= 1) & (dn <= 31)  # never let a parser swap them
    out = pd.Series(pd.NaT, index=s.index, dtype="datetime64[ns]")
    if valid.any():
        t = _to_datetime(iso[valid], zone, "ISO8601")
        again = _flag(t.isna())
        if again.any():  # e.g. "13/02/2024 1:00 PM": year-first now, safe for the flexible parser
            t[again] = _to_datetime(iso[valid][again], zone, "mixed")
        out[valid] = t
    return out


def _parse_time(s: pd.Series, timezone=None, dayfirst: bool | None = None,
                where: str = "time column") -> pd.Series:
    """Times as naive store-local ``datetime64[ns]`` (NaT where unreadable)."""
    zone, _ = _zone(timezone)
    if pd.api.types.is_datetime64_any_dtype(s):
        return _naive_ns(s, zone)
    index = s.index
    s = _text(s).reset_index(drop=True)  # labels are row positions from here on
    t = _to_datetime(s, zone, "ISO8601")
    bad = _flag(t.isna()) & _flag(s.fillna("") != "")
    if bad.any():
        sb = s[bad]
        dmy = _flag(sb.str.contains(_DMY_TEST_RE, regex=True))
        if dmy.any():
            t[sb.index[dmy]] = _parse_dmy(sb[dmy], dayfirst, where, zone)
        if (~dmy).any():
            t[sb.index[~dmy]] = _to_datetime(sb[~dmy], zone, "mixed")
    t.index = index
    return t


_THOUSANDS_RE = {".": r"[+-]?\d{1,3}(?:,\d{3})+(?:\.\d+)?", ",": r"[+-]?\d{1,3}(?:\.\d{3})+(?:,\d+)?"}
_NUMBERISH_RE = r"[+-]?[\d.,]+"


def _parse_number(s: pd.Series, decimal: str = ".") -> tuple[pd.Series, np.ndarray, np.ndarray]:
    """Numbers with ``decimal`` as the decimal mark; the other mark only as thousands separator.

    Returns the values (float, NaN where unreadable), a mask of values whose separator is
    ambiguous (``12,50`` with ``decimal="."``; ``12.50`` with ``decimal=","``; their value is
    NaN) and a mask of ``nan`` written as text.
    """
    n = len(s)
    if pd.api.types.is_numeric_dtype(s):
        return s.astype(float), np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
    s = _text(s).str.replace("¥", "", regex=False).str.replace("￥", "", regex=False).str.strip()
    other = "," if decimal == "." else "."
    ambiguous = np.zeros(n, dtype=bool)
    has_other = _flag(s.str.contains(other, regex=False))
    if has_other.any():
        grouped = _flag(s.str.fullmatch(_THOUSANDS_RE[decimal]))
        ambiguous = has_other & ~grouped & _flag(s.str.fullmatch(_NUMBERISH_RE))
        s = s.str.replace(other, "", regex=False)
    if decimal == ",":
        s = s.str.replace(",", ".", regex=False)
    values = pd.to_numeric(s, errors="coerce").astype(float)
    if ambiguous.any():
        values[ambiguous] = np.nan
    nan_text = np.zeros(n, dtype=bool)
    if values.isna().any():
        nan_text = _flag(s.str.lower().isin(["nan", "+nan", "-nan"]))
    return values, ambiguous, nan_text


def _blank(s: pd.Series) -> np.ndarray:
    return (_text(s).fillna("") == "").to_numpy(dtype=bool)


def _check_decimal(decimal: str) -> str:
    if decimal not in (".", ","):
        raise CrmlabInputError(f"decimal {decimal!r}: expected '.' or ','")
    return decimal


def _now(now, zone) -> pd.Timestamp:
    """The moment of the run in store-local time (``now`` given: converted like any time)."""
    if now is None:
        return pd.Timestamp.now(tz=zone).tz_localize(None)
    return _local(pd.Timestamp(now), zone)
