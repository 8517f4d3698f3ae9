"""The report's appendix and headlines: parameters, provenance, the ledger, the glossary, and
the ``{report}.headlines.json`` the runner's index pages read.

Pure functions (HTML strings and plain values out) plus the headlines file writer; the
notebook helpers (:mod:`crmlab.report.notebook`) display them.
"""
from __future__ import annotations

import datetime as _dt
import html as _html
import json
import os
from typing import Iterable, Mapping

import numpy as np
import pandas as pd

from crmlab._version import __version__
from crmlab.ingest.readers import Ledger
from crmlab.present import formatting as fmt

__all__ = ["frame_html", "param_value", "run_info_html", "plain_headlines", "write_headlines"]

_SUMMARY = ('<details class="crmlab-appendix"><summary>Appendix 附录: parameters 参数, provenance 数据来源, '
            'ledger 数据台账, terms 术语</summary>')


def frame_html(df: pd.DataFrame, caption: str | None = None) -> str:
    """A small table of text cells, every header and cell escaped (headers in words)."""
    cap = f"<caption>{_html.escape(caption)}</caption>" if caption else ""
    head = "".join(f"<th>{_html.escape(fmt.label(c))}</th>" for c in df.columns)
    body = "".join("<tr>" + "".join(f"<td>{_html.escape(str(v))}</td>" for v in row) + "</tr>"
                   for row in df.itertuples(index=False))
    return f'<table class="crmlab-table">{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def param_value(name: str, v) -> str:
    """A notebook parameter as the appendix shows it (file paths as their file names)."""
    if v is None:
        return "— (default)"
    if isinstance(v, str):
        if name in ("orders", "sends") or "/" in v or "\\" in v:
            return os.path.basename(v) or v
        return v if v else "— (none)"
    if isinstance(v, bool):
        return fmt.boolean(v)
    return str(v)


def _provenance(ledgers: list[Ledger]) -> pd.DataFrame:
    rows = []
    for led in ledgers:
        rows.append({"input": os.path.basename(str(led.file)), "sha256": (led.sha256 or "")[:16] or fmt.MISSING,
                     "input rows": fmt.integer(led.input_rows), "used rows": fmt.integer(led.used_rows),
                     "observation end": f"{led.observation_end:%Y-%m-%d %H:%M}" if led.observation_end is not None
                     else fmt.MISSING})
    return pd.DataFrame(rows)


def run_info_html(parameters: Mapping[str, object], ledgers: Iterable[Ledger | None]) -> str:
    """The appendix as one ``<details>`` element: parameters, provenance (files, sha256, rows,
    observation end, version, time), the ledger of every input row, and the glossary."""
    ledgers = [x for x in ledgers if x is not None]
    p = pd.DataFrame({"parameter": list(parameters.keys()),
                      "value": [param_value(k, v) for k, v in parameters.items()]})
    parts = ['<h2>Parameters 参数</h2>', frame_html(p)]
    prov = _provenance(ledgers)
    parts += ['<h2>Provenance 数据来源</h2>', frame_html(prov) if len(prov) else "<p>—</p>",
              f"<p>crmlab {_html.escape(__version__)}, run at {_dt.datetime.now():%Y-%m-%d %H:%M:%S}.</p>",
              "<h2>Ledger 数据台账: every input row used or excluded, with the reason</h2>"]
    for led in ledgers:
        t = led.to_frame().reset_index()
        t["count"] = t["count"].map(fmt.integer)
        t["share"] = t["share"].map(lambda x: fmt.pct(x, 2))
        t["example rows"] = t["example rows"].replace("", fmt.MISSING)
        parts.append(frame_html(t, os.path.basename(str(led.file))))
        for w in getattr(led, "warnings", []) or []:
            parts.append(f"<p>⚠ {_html.escape(str(w))}</p>")
    parts += ["<h2>Terms 术语</h2>", frame_html(fmt.glossary_table())]
    return _SUMMARY + "".join(parts) + "</details>"


def _plain(v):
    if isinstance(v, Mapping):
        return {k: _plain(x) for k, x in v.items() if x is not None}
    if hasattr(v, "item"):
        v = v.item()
    if isinstance(v, bool):
        return fmt.boolean(v)
    if isinstance(v, float) and not np.isfinite(v):
        return fmt.MISSING
    if isinstance(v, int):
        return fmt.integer(v)
    return v if isinstance(v, (float, str, type(None))) else str(v)


def plain_headlines(headlines: Mapping[str, object]) -> dict:
    """The headlines as JSON values: booleans ✓/✗, integers with separators, missing ``—``;
    a :func:`crmlab.report.cards.kpi` keeps its keys (None ones dropped)."""
    return {k: _plain(v) for k, v in headlines.items()}


def write_headlines(report: str, headlines: Mapping[str, object], directory: str = ".") -> dict:
    """Write ``{report}.headlines.json`` (:func:`plain_headlines`) and return what was written."""
    out = plain_headlines(headlines)
    with open(os.path.join(directory, f"{report}.headlines.json"), "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=1)
    return out
