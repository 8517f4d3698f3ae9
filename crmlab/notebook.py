"""Presentation helpers for the report notebooks (display only; nothing is computed here).

Each report opens with its key findings, then the parameters, the provenance and the
ledger (:func:`run_info`); headline numbers go to ``headlines.json`` beside the report
(:func:`record_headlines`) for the runner's index pages.
"""
from __future__ import annotations

import datetime as _dt
import io
import json
import os
from typing import Iterable, Mapping

import pandas as pd

from crmlab import __version__
from crmlab.figures import style
from crmlab.io import Ledger

__all__ = ["show", "findings", "run_info", "table", "record_headlines", "warning", "pct"]


def _display(obj) -> None:
    from IPython.display import display

    display(obj)


def pct(x: float, digits: int = 1) -> str:
    """``0.1234`` -> ``"12.3%"``; NaN -> ``"n/a"``."""
    return "n/a" if x is None or pd.isna(x) else f"{100 * x:.{digits}f}%"


def show(fig) -> None:
    """Display a Figure as an embedded PNG, rendered in crmlab's style (CJK font)."""
    from IPython.display import Image

    buf = io.BytesIO()
    with style():
        fig.savefig(buf, format="png", dpi=100)
    _display(Image(buf.getvalue()))


def findings(lines: Iterable[str], title: str = "Key findings 关键结论") -> None:
    from IPython.display import Markdown

    _display(Markdown(f"## {title}\n\n" + "\n".join(f"- {s}" for s in lines)))


def warning(text: str) -> None:
    """A red warning box at the top of a report."""
    from IPython.display import HTML

    _display(HTML(f'<div style="border:2px solid #b8433d;background:#fdecea;padding:8px 12px;'
                  f'color:#7a1f1a;font-weight:bold">⚠ {text}</div>'))


def table(df: pd.DataFrame, percent: Iterable[str] = (), money: Iterable[str] = (), digits: int = 3,
          caption: str | None = None) -> None:
    """Display a table with percent and money columns formatted."""
    fmt = {c: "{:.1%}" for c in percent if c in df.columns}
    fmt.update({c: "¥{:,.2f}" for c in money if c in df.columns})
    for c in df.columns:
        if c not in fmt and pd.api.types.is_float_dtype(df[c]):
            fmt[c] = f"{{:,.{digits}f}}"
    st = df.style.format(fmt, na_rep="—")
    if caption:
        st = st.set_caption(caption)
    _display(st)


def run_info(parameters: Mapping[str, object], ledgers: Iterable[Ledger | None]) -> None:
    """Parameters, provenance (files, sha256, rows, observation end, version, time), ledger."""
    from IPython.display import Markdown

    ledgers = [x for x in ledgers if x is not None]
    _display(Markdown("## Parameters 参数"))
    p = pd.DataFrame({"value": [str(v) for v in parameters.values()]}, index=list(parameters.keys()))
    p.index.name = "parameter"
    _display(p)
    _display(Markdown("## Provenance 数据来源"))
    rows = []
    for led in ledgers:
        rows.append({"input": led.file, "sha256": (led.sha256 or "")[:16], "input rows": led.input_rows,
                     "used rows": led.used_rows, "observation end": str(led.observation_end or "")})
    prov = pd.DataFrame(rows)
    _display(prov.set_index("input") if len(prov) else prov)
    _display(Markdown(f"crmlab {__version__}, run at {_dt.datetime.now().strftime('%Y-%m-%d %H:%M:%S')}."))
    _display(Markdown("## Ledger 数据台账: every input row used or excluded, with the reason"))
    for led in ledgers:
        t = led.to_frame()
        _display(t.style.format({"share": "{:.2%}"}).set_caption(led.file))


def record_headlines(report: str, headlines: Mapping[str, object], directory: str = ".") -> None:
    """Write ``{report}.headlines.json`` for the runner's index page."""
    def plain(v):
        if hasattr(v, "item"):
            return v.item()
        return v if isinstance(v, (int, float, str, type(None), bool)) else str(v)

    with open(os.path.join(directory, f"{report}.headlines.json"), "w", encoding="utf-8") as f:
        json.dump({k: plain(v) for k, v in headlines.items()}, f, ensure_ascii=False, indent=1)
