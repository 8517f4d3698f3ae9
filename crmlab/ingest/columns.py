"""Export columns: a mapping of headers to crmlab's names, the header test that finds the
header row and the sheet, and the checks on what the columns hold (phone-shaped customer ids).
"""
from __future__ import annotations

from typing import Mapping, Sequence

import pandas as pd

from crmlab.ingest.tables import _listed, _short
from crmlab.privacy import PHONE_PATTERN
from crmlab.schema import CrmlabInputError

__all__ = ["parse_columns", "phone_shaped_ids", "NOTICE_PREFIXES"]


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
    out = df.rename(columns=rename, copy=False)  # the values are never written: no copy
    origin = {canon: header for header, canon in rename.items()}
    dup = out.columns.duplicated()
    return (out.loc[:, ~dup] if dup.any() else out), notes, origin


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


#: customer ids checked for a phone-number shape (the first distinct ones)
_ID_SAMPLE = 2000


def phone_shaped_ids(ids: Sequence, rows: Sequence[int] | None = None) -> str | None:
    """A warning when customer ids look like phone numbers (``+86 138 0013 8000``), else None.

    Reports never show a phone-shaped string: such ids are masked (or the report withheld),
    so the user is told once, at loading, instead of by several failed reports."""
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

