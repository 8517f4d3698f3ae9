"""Tables formatted for a reader, and the customer lists written for operations.

Column headers in words (:data:`crmlab.present.formatting.LABELS`), thousands separators,
counts as integers, money in the store's currency rounded to the yuan, p-values as
``< 0.001``, ✓/✗ for booleans, ``—`` for a missing value, and customer ids masked
(:func:`crmlab.privacy.mask_ids`, the run's salt); the CSV lists keep real ids unless asked.
Every cell and label is text from the data, never markup: escaped after formatting.
The notebook helper :func:`crmlab.report.notebook.table` displays :func:`styled_table`.
"""
from __future__ import annotations

import html as _html
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from crmlab.present import formatting as fmt
from crmlab.present.spreadsheet import write_csv
from crmlab.privacy import mask_ids

__all__ = ["ID_COLUMNS", "mask_frame", "write_list", "formatters", "styled_table", "escaped"]

#: columns (or index names) holding customer ids: masked in every table a report shows
ID_COLUMNS = ("customer_id", "customer", "buyer_id", "member_id")


def mask_frame(df: pd.DataFrame, ids: Sequence[str]) -> pd.DataFrame:
    """``df`` with the customer ids in its ``ids`` columns or index levels masked."""
    ids = set(ids)
    names = [n for n in df.index.names if n in ids]
    if names:
        df = df.copy()
        if isinstance(df.index, pd.MultiIndex):
            df.index = df.index.set_levels([mask_ids(df.index.levels[i].astype(str)) if n in ids else df.index.levels[i]
                                            for i, n in enumerate(df.index.names)], verify_integrity=False)
        else:
            df.index = mask_ids(df.index.astype(str).rename(df.index.name))
    cols = [c for c in df.columns if c in ids]
    if cols:
        df = df.copy()
        for c in cols:
            df[c] = mask_ids(df[c].map(lambda x: x if fmt.is_missing(x) else str(x)))
    return df


def write_list(frame: pd.DataFrame, path: str, masked: bool = False, ids: Sequence[str] = ID_COLUMNS,
               **to_csv_kw) -> None:
    """Write a customer list (``wakeup_list.csv`` ...) as CSV, formula cells neutralised
    (:func:`crmlab.present.spreadsheet.write_csv`; ``to_csv_kw`` go to ``DataFrame.to_csv``).

    With ``masked`` the customer ids (``ids`` columns or index) are written masked
    (:func:`crmlab.privacy.mask_ids`): the runner sets the notebooks' ``mask_ids`` parameter
    when the ids look like phone numbers, so the lists can be shared with the report. By
    default the real ids, for operations.
    """
    write_csv(mask_frame(frame, ids) if masked else frame, path, **to_csv_kw)


def _money_digits(s: pd.Series) -> int:
    v = pd.to_numeric(s, errors="coerce").abs()
    v = v[np.isfinite(v)]
    return 0 if len(v) == 0 or v.max() >= 10 else 2


def _pct_digits(s: pd.Series) -> int:
    v = pd.to_numeric(s, errors="coerce").abs()
    v = v[np.isfinite(v) & (v > 0)]
    return 1 if len(v) == 0 or v.max() >= 0.01 else 2


def _whole(s: pd.Series) -> bool:
    v = pd.to_numeric(s, errors="coerce")
    v = v[np.isfinite(v)]
    return len(v) > 0 and bool((v == v.round()).all()) and bool((v.abs() < 1e15).all())


def _datetime(x) -> str:
    return fmt.MISSING if fmt.is_missing(x) else (f"{x:%Y-%m-%d}" if x == x.normalize() else f"{x:%Y-%m-%d %H:%M}")


def _by_dtype(c, s: pd.Series, digits: int):
    """The writer of a column the caller did not name, from its values (:func:`formatters`)."""
    if pd.api.types.is_integer_dtype(s) or (pd.api.types.is_float_dtype(s) and _whole(s)
                                            and not fmt._PVALUE.search(str(c).lower())):
        return fmt.integer
    if pd.api.types.is_bool_dtype(s):
        return fmt.boolean
    if pd.api.types.is_float_dtype(s):
        return fmt.pvalue if fmt._PVALUE.search(str(c).lower()) else (lambda x, d=digits: fmt.number(x, d))
    if pd.api.types.is_datetime64_any_dtype(s):
        return _datetime
    return lambda x, c=c: fmt.auto(c, x)


def formatters(df: pd.DataFrame, percent: Iterable[str], money: Iterable[str], digits: int, pp: Iterable[str],
               integers: Iterable[str], pvalues: Iterable[str], ratio: Iterable[str], days: Iterable[str]) -> dict:
    """column -> the function that writes its values for a reader (:func:`styled_table`)."""
    kinds: dict[object, object] = {}
    for c in df.columns:
        s = df[c]
        if c in set(pp):
            kinds[c] = lambda x: fmt.pp(x)
        elif c in set(percent):
            d = _pct_digits(s)
            kinds[c] = lambda x, d=d: fmt.pct(x, d)
        elif c in set(money):
            d = _money_digits(s)
            kinds[c] = lambda x, d=d: fmt.money(x, d)
        elif c in set(pvalues):
            kinds[c] = fmt.pvalue
        elif c in set(ratio):
            kinds[c] = fmt.ratio
        elif c in set(days):
            kinds[c] = lambda x: fmt.days(x, unit=False)
        elif c in set(integers):
            kinds[c] = fmt.integer
        else:
            kinds[c] = _by_dtype(c, s, digits)
    return kinds


def _styler(df: pd.DataFrame, kinds: Mapping, named_index: bool, labels: bool, right: set):
    """The escaped, aligned Styler of a formatted table (:func:`styled_table`)."""
    # every cell and label is text from the data, never markup: escaped after formatting
    esc = _html.escape
    df = df.rename_axis(index=[None if n is None else esc(str(n)) for n in df.index.names],
                        columns=[None if n is None else esc(str(n)) for n in df.columns.names])
    st = df.style.format({c: (lambda x, f=f: esc(str(f(x)))) for c, f in kinds.items()}, na_rep=fmt.MISSING)
    st = st.format_index(lambda x: fmt.MISSING if fmt.is_missing(x) else esc(str(x)), axis=0)
    st = st.format_index((lambda x: esc(fmt.label(x))) if labels else (lambda x: esc(str(x))), axis=1)
    if named_index or isinstance(df.index, pd.RangeIndex):
        st = st.hide(axis="index")
    num = [c for c, f in kinds.items() if pd.api.types.is_numeric_dtype(df[c]) or c in right]
    if num:
        st = st.set_properties(subset=num, **{"text-align": "right"})
    short = [c for c in df.columns if len(df) and max(len(str(x)) for x in df[c]) <= 24]
    if short:  # numbers, dates, short labels on one line; long text wraps
        st = st.set_properties(subset=short, **{"white-space": "nowrap"})
    long = [c for c in df.columns if c not in short and len(df) and not pd.api.types.is_numeric_dtype(df[c])]
    if long:  # ... in a column wide enough to read (on a phone the table scrolls), not one word a line
        st = st.set_properties(subset=long, **{"min-width": "16em"})
    return st


def styled_table(df: pd.DataFrame, percent: Iterable[str] = (), money: Iterable[str] = (), digits: int = 3,
                 caption: str | None = None, pp: Iterable[str] = (), integers: Iterable[str] = (),
                 pvalues: Iterable[str] = (), ratio: Iterable[str] = (), days: Iterable[str] = (),
                 ids: Sequence[str] = ID_COLUMNS, labels: bool = True):
    """The pandas Styler of ``df`` formatted for a reader (arguments: :func:`crmlab.report.notebook.table`)."""
    df = mask_frame(pd.DataFrame(df), ids)
    named_index = any(n is not None for n in df.index.names)
    if named_index:
        df = df.reset_index()
    kinds = formatters(df, percent, money, digits, pp, integers, pvalues, ratio, days)
    st = _styler(df, kinds, named_index, labels, set(money) | set(percent))
    st = st.set_table_attributes('class="crmlab-table"')
    if caption:
        st = st.set_caption(_html.escape(caption))
    return st


def escaped(styler):
    """A pandas Styler with its index, column labels and caption HTML-escaped (a Styler built
    elsewhere, e.g. :func:`crmlab.promotion.season.attainment_style`); its cells should be
    numbers formatted by the Styler (text cells: use :func:`crmlab.report.notebook.table`)."""
    esc = _html.escape
    data = styler.data
    data = data.rename_axis(index=[None if n is None else esc(str(n)) for n in data.index.names],
                            columns=[None if n is None else esc(str(n)) for n in data.columns.names])
    styler.data, styler.index, styler.columns = data, data.index, data.columns
    st = styler.format_index(escape="html", axis=0).format_index(escape="html", axis=1)
    cap = getattr(styler, "caption", None)
    if isinstance(cap, str):
        st = st.set_caption(_html.escape(cap))
    return st
