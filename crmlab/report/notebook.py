"""Presentation helpers for the report notebooks (display only; nothing is computed here).

A report reads, top to bottom: its title and the period the data covers (the runner's page
header), 3–5 KPI cards with a comparison (:func:`kpi` values given to
:func:`record_headlines`, which also writes ``headlines.json`` for the runner's index
pages), the key findings in plain words (:func:`findings`), then the charts and tables.
Parameters, provenance and the ledger (:func:`run_info`) go to a folded appendix that the
runner moves to the end of the page.

Tables (:func:`table`) show column headers in words (:data:`crmlab.present.formatting.LABELS`),
thousands separators, counts as integers, money in the store's currency rounded to the
yuan, p-values as ``< 0.001``, ✓/✗ for booleans, ``—`` for a missing value, and customer
ids masked (:func:`crmlab.privacy.mask_ids`, the run's salt); the CSV lists keep real ids.
"""
from __future__ import annotations

import base64
import datetime as _dt
import html as _html
import io
import json
import os
import re
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from crmlab._version import __version__
from crmlab.present import chart_text, formatting as fmt, phone, ticks
from crmlab.ingest.readers import Ledger
from crmlab.present.figures import style
from crmlab.present.spreadsheet import write_csv
from crmlab.privacy import mask_ids
from crmlab.report import blocks
from crmlab.report.blocks import Interval

__all__ = ["show", "findings", "run_info", "table", "record_headlines", "warning", "warnings", "pct", "kpi", "kpis",
           "badge", "verdict", "results_table", "Interval", "toc", "markdown", "md_escape", "escaped", "ID_COLUMNS",
           "APPENDIX"]

#: columns (or index names) holding customer ids: masked in every table a report shows
ID_COLUMNS = ("customer_id", "customer", "buyer_id", "member_id")
#: output metadata key: outputs carrying it are moved to the report's appendix by the runner
APPENDIX = "crmlab_appendix"


def _display(obj, **kw) -> None:
    from IPython.display import display

    display(obj, **kw)


def _html_out(text: str, appendix: bool = False) -> None:
    from IPython.display import HTML

    _display(HTML(text), metadata={APPENDIX: True} if appendix else None)


def _markdown():
    import mistune

    class Renderer(mistune.HTMLRenderer):
        """Raw HTML escaped (it is text), links and images rendered as their words: a value from
        the data is never markup, and ``[x](javascript:...)`` never becomes a live link."""

        def link(self, text: str, url: str, title: str | None = None) -> str:
            return text

        def image(self, text: str, url: str, title: str | None = None) -> str:
            return _html.escape(text)

    md = getattr(_markdown, "md", None)
    if md is None:
        md = _markdown.md = mistune.create_markdown(escape=True, renderer=Renderer(escape=True),
                                                    plugins=["strikethrough"])
    return md


def _md(text: str) -> str:
    """Inline markdown (``**bold**``, ``*em*``, `` `code` ``) to HTML. Raw HTML in ``text`` is
    escaped and shown as text; links and images show their words only (no ``href``/``src``)."""
    out = _markdown()(str(text)).strip()
    if out.startswith("<p>") and out.endswith("</p>") and out.count("<p>") == 1:
        out = out[3:-4]
    return out


def md_escape(value) -> str:
    """``value`` as literal text inside markdown for :func:`findings` / :func:`warning`: the
    characters markdown reads as markup (``*``, ``_``, `` ` ``, ``[``, ...) backslash-escaped."""
    return re.sub(r"([\\`*_{}\[\]()#+\-.!|<>~])", r"\\\1", str(value))


def markdown(text: str) -> None:
    """Display markdown (a block: lists, paragraphs) safely: raw HTML escaped, no links."""
    _html_out(f'<div class="crmlab-markdown">{_markdown()(str(text))}</div>')


def escaped(styler):
    """A pandas Styler with its index, column labels and caption HTML-escaped (a Styler built
    elsewhere, e.g. :func:`crmlab.promotion.season.attainment_style`); its cells should be
    numbers formatted by the Styler (text cells: use :func:`table`)."""
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


def pct(x: float, digits: int | None = 1) -> str:
    """``0.1234`` -> ``"12.3%"``; missing -> ``"—"`` (:func:`crmlab.present.formatting.pct`)."""
    return fmt.pct(x, digits)


def _png(fig, dpi: int) -> tuple[bytes, int, int]:
    """The figure as PNG bytes (rendered at ``dpi``) and its CSS size (100 px per inch)."""
    buf = io.BytesIO()
    with style():
        fig.savefig(buf, format="png", dpi=dpi)
    w_in, h_in = fig.get_size_inches()
    return buf.getvalue(), int(round(w_in * 100)), int(round(h_in * 100))


def show(fig, dpi: int = 200, alt: str | None = None) -> None:
    """Display a Figure as a sharp PNG (rendered at 2×, shown at 1×), in crmlab's style;
    percent axes get :class:`crmlab.present.ticks.PercentTicks` on nice steps.

    A chart much wider than a phone is rendered twice: for laptops, and laid out again for
    phones (:func:`crmlab.present.phone.phone_layout`: one panel per row, readable text); the
    page's ``<picture>`` lets the browser pick. ``alt``: the chart's text alternative
    (default: :func:`crmlab.present.chart_text.describe` — its titles, axes and series)."""
    from IPython.display import Image

    ticks.fix_percent_axes(fig)
    alt = alt or chart_text.describe(fig)
    wide, w, h = _png(fig, dpi)
    if not (phone.needs_phone_layout(fig) and phone.phone_layout(fig)):
        _display(Image(wide, width=w, height=h, alt=alt))
        return
    narrow, pw, ph = _png(fig, dpi)
    src = "data:image/png;base64,"
    _html_out(f'<picture><source media="{phone.PHONE_MEDIA}" srcset="{src}{base64.b64encode(narrow).decode()}" '
              f'width="{pw}" height="{ph}"><img src="{src}{base64.b64encode(wide).decode()}" width="{w}" '
              f'height="{h}" alt="{_html.escape(alt)}"></picture>')


# ------------------------------------------------------------------------- the first screen

def kpi(value, compare: str | None = None, note: str | None = None, tone: str | None = None) -> dict:
    """One KPI card for :func:`record_headlines`: the value shown big, a comparison under it
    (``"+88% vs 2024"``), a note. ``tone``: ``"good"``, ``"bad"`` or None (from the sign of
    ``compare`` otherwise: ▲ / ▼)."""
    return {"value": str(value), "compare": compare, "note": note, "tone": tone}


def _card_html(label: str, v) -> str:
    if not isinstance(v, Mapping):
        v = kpi(fmt.MISSING if fmt.is_missing(v) else v if isinstance(v, str) else fmt.auto(label, v))
    comp, note, tone = v.get("compare"), v.get("note"), v.get("tone")
    if tone is None and comp:
        c = str(comp).lstrip()
        tone = "up" if c.startswith("+") else "down" if c.startswith(("−", "-")) else None
    arrow = {"up": "▲ ", "down": "▼ "}.get(tone or "", "")
    card = "crmlab-kpi" + (f" crmlab-kpi-{tone}" if tone in ("good", "bad") else "")
    return (f'<div class="{card}"><div class="crmlab-kpi-label">{_html.escape(label)}</div>'
            f'<div class="crmlab-kpi-value">{_html.escape(str(v["value"]))}</div>'
            + (f'<div class="crmlab-kpi-compare crmlab-{_html.escape(tone or "flat")}">{arrow}'
               f'{_html.escape(str(comp))}</div>' if comp else "")
            + (f'<div class="crmlab-kpi-note">{_html.escape(str(note))}</div>' if note else "")
            + "</div>")


def kpis(cards: Mapping[str, object]) -> None:
    """Display KPI cards: ``{label: value or kpi(...)}``."""
    _html_out('<div class="crmlab-kpis">' + "".join(_card_html(k, v) for k, v in cards.items()) + "</div>")


def badge(ok: bool, yes: str = "pass", no: str = "fail") -> str:
    """An inline pass/fail badge (HTML)."""
    cls, text = ("pass", f"✓ {yes}") if ok else ("fail", f"✗ {no}")
    return f'<span class="crmlab-badge crmlab-{cls}">{_html.escape(text)}</span>'


def findings(lines: Iterable[str], title: str = "Key findings 关键结论") -> None:
    """The key findings as a list (inline markdown allowed)."""
    items = "".join(f"<li>{_md(s)}</li>" for s in lines)
    _html_out(f'<section class="crmlab-findings"><h2>{_html.escape(title)}</h2><ul>{items}</ul></section>')


def verdict(text: str, tone: str = "neutral") -> None:
    """The page's one-line answer, first on its first screen: what to do, or why nothing
    (inline markdown allowed; data values escaped). ``tone``: ``"good"`` (act), ``"bad"``
    (stop, fix first), ``"wait"`` (keep running, not enough evidence) or ``"neutral"``."""
    tone = tone if tone in ("good", "bad", "wait", "neutral") else "neutral"
    _html_out(f'<p class="crmlab-verdict crmlab-verdict-{tone}" role="status">{_md(text)}</p>')


def warning(text: str) -> None:
    """A red warning box at the top of a report (several warnings: :func:`warnings`, one box)."""
    _html_out(f'<div class="crmlab-warning">⚠ {_md(text)}</div>')


def warnings(lines: Sequence[str], title: str | None = None) -> None:
    """Every warning of the page in ONE box (:func:`crmlab.report.blocks.warnings_html`), if any."""
    if any(str(x).strip() for x in lines):
        _html_out(blocks.warnings_html(list(lines), title))


def results_table(columns: Mapping, index: Sequence, highlight: Iterable = (), caption: str | None = None,
                  row_label: str = "arm", notes: Mapping | None = None, aside: tuple | None = None) -> None:
    """One results table (:func:`crmlab.report.blocks.results_table_html`; :class:`Interval` columns
    drawn as bars, chosen rows ★) with ``aside`` = (title, lines, tone), the next steps, beside it."""
    t = blocks.results_table_html(columns, index, highlight, caption, row_label, notes)
    _html_out(blocks.beside_html(t, *aside) if aside else t)


def toc(entries: Mapping[str, str]) -> None:
    """A small table of contents: ``{anchor: section name}``."""
    _html_out(blocks.toc_html(entries))


# ------------------------------------------------------------------------- tables

def _mask(df: pd.DataFrame, ids: Sequence[str]) -> pd.DataFrame:
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
    write_csv(_mask(frame, ids) if masked else frame, path, **to_csv_kw)


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


def _formatters(df: pd.DataFrame, percent: Iterable[str], money: Iterable[str], digits: int, pp: Iterable[str],
                integers: Iterable[str], pvalues: Iterable[str], ratio: Iterable[str], days: Iterable[str]) -> dict:
    """column -> the function that writes its values for a reader (:func:`table`)."""
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
        elif c in set(integers) or pd.api.types.is_integer_dtype(s) or (pd.api.types.is_float_dtype(s) and _whole(s)
                                                                         and not fmt._PVALUE.search(str(c).lower())):
            kinds[c] = fmt.integer
        elif pd.api.types.is_bool_dtype(s):
            kinds[c] = fmt.boolean
        elif pd.api.types.is_float_dtype(s):
            if fmt._PVALUE.search(str(c).lower()):
                kinds[c] = fmt.pvalue
            else:
                kinds[c] = lambda x, d=digits: fmt.number(x, d)
        elif pd.api.types.is_datetime64_any_dtype(s):
            kinds[c] = lambda x: fmt.MISSING if fmt.is_missing(x) else (
                f"{x:%Y-%m-%d}" if x == x.normalize() else f"{x:%Y-%m-%d %H:%M}")
        else:
            kinds[c] = lambda x, c=c: fmt.auto(c, x)
    return kinds


def _styler(df: pd.DataFrame, kinds: Mapping, named_index: bool, labels: bool, right: set):
    """The escaped, aligned Styler of a formatted table (:func:`table`)."""
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


def table(df: pd.DataFrame, percent: Iterable[str] = (), money: Iterable[str] = (), digits: int = 3,
          caption: str | None = None, pp: Iterable[str] = (), integers: Iterable[str] = (),
          pvalues: Iterable[str] = (), ratio: Iterable[str] = (), days: Iterable[str] = (),
          ids: Sequence[str] = ID_COLUMNS, labels: bool = True, appendix: bool = False,
          fold: str | None = None) -> None:
    """Display a table formatted for a reader.

    ``percent``: shares (``12.3%``); ``pp``: differences of shares (``+1.8 pp``); ``money``:
    the store's currency, rounded to the yuan (2 decimals when every value is below 10);
    ``integers``, ``days``: whole numbers; ``pvalues`` (also any column named ``p_value``,
    ``p_holm``, ``p-value``): ``< 0.001``; ``ratio``: ``46.7×``. Other float columns get
    ``digits`` decimals, or none when every value is whole; booleans ✓/✗; missing ``—``.
    Customer ids (``ids`` columns or index) are masked. Headers in words when ``labels``.
    ``fold``: the table folded under this one-line summary (``<details>``).
    """
    df = _mask(pd.DataFrame(df), ids)
    named_index = any(n is not None for n in df.index.names)
    if named_index:
        df = df.reset_index()
    kinds = _formatters(df, percent, money, digits, pp, integers, pvalues, ratio, days)
    st = _styler(df, kinds, named_index, labels, set(money) | set(percent))
    st = st.set_table_attributes('class="crmlab-table"')
    if caption:
        st = st.set_caption(_html.escape(caption))
    if appendix or fold:
        _html_out(blocks.fold_html(fold, st.to_html()) if fold else st.to_html(), appendix=appendix)
    else:
        _display(st)


# ------------------------------------------------------------------------- the appendix

def _frame_html(df: pd.DataFrame, caption: str | None = None) -> str:
    cap = f"<caption>{_html.escape(caption)}</caption>" if caption else ""
    head = "".join(f"<th>{_html.escape(fmt.label(c))}</th>" for c in df.columns)
    body = "".join("<tr>" + "".join(f"<td>{_html.escape(str(v))}</td>" for v in row) + "</tr>"
                   for row in df.itertuples(index=False))
    return f'<table class="crmlab-table">{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _param_value(name: str, v) -> str:
    if v is None:
        return "— (default)"
    if isinstance(v, str):
        if name in ("orders", "sends") or "/" in v or "\\" in v:
            return os.path.basename(v) or v
        return v if v else "— (none)"
    if isinstance(v, bool):
        return fmt.boolean(v)
    return str(v)


def run_info(parameters: Mapping[str, object], ledgers: Iterable[Ledger | None]) -> None:
    """The appendix: parameters, provenance (files, sha256, rows, observation end, version,
    time), the ledger of every input row, and the glossary — folded in a ``<details>``
    element that the runner moves to the end of the report."""
    ledgers = [x for x in ledgers if x is not None]
    p = pd.DataFrame({"parameter": list(parameters.keys()),
                      "value": [_param_value(k, v) for k, v in parameters.items()]})
    parts = ['<h2>Parameters 参数</h2>', _frame_html(p)]
    rows = []
    for led in ledgers:
        rows.append({"input": os.path.basename(str(led.file)), "sha256": (led.sha256 or "")[:16] or fmt.MISSING,
                     "input rows": fmt.integer(led.input_rows), "used rows": fmt.integer(led.used_rows),
                     "observation end": f"{led.observation_end:%Y-%m-%d %H:%M}" if led.observation_end is not None
                     else fmt.MISSING})
    parts += ['<h2>Provenance 数据来源</h2>', _frame_html(pd.DataFrame(rows)) if rows else "<p>—</p>",
              f"<p>crmlab {_html.escape(__version__)}, run at {_dt.datetime.now():%Y-%m-%d %H:%M:%S}.</p>",
              "<h2>Ledger 数据台账: every input row used or excluded, with the reason</h2>"]
    for led in ledgers:
        t = led.to_frame().reset_index()
        t["count"] = t["count"].map(fmt.integer)
        t["share"] = t["share"].map(lambda x: fmt.pct(x, 2))
        t["example rows"] = t["example rows"].replace("", fmt.MISSING)
        parts.append(_frame_html(t, os.path.basename(str(led.file))))
        for w in getattr(led, "warnings", []) or []:
            parts.append(f"<p>⚠ {_html.escape(str(w))}</p>")
    parts += ["<h2>Terms 术语</h2>", _frame_html(fmt.glossary_table())]
    _html_out('<details class="crmlab-appendix"><summary>Appendix 附录: parameters 参数, provenance 数据来源, '
              'ledger 数据台账, terms 术语</summary>' + "".join(parts) + "</details>", appendix=True)


# ------------------------------------------------------------------------- headlines

def record_headlines(report: str, headlines: Mapping[str, object], directory: str = ".",
                     cards: bool = True) -> None:
    """Write ``{report}.headlines.json`` for the runner's index pages and (``cards``) show
    the headlines as KPI cards. A value may be a :func:`kpi` (value and comparison)."""
    def plain(v):
        if isinstance(v, Mapping):
            return {k: plain(x) for k, x in v.items() if x is not None}
        if hasattr(v, "item"):
            v = v.item()
        if isinstance(v, bool):
            return fmt.boolean(v)
        if isinstance(v, float) and not np.isfinite(v):
            return fmt.MISSING
        if isinstance(v, int):
            return fmt.integer(v)
        return v if isinstance(v, (float, str, type(None))) else str(v)

    out = {k: plain(v) for k, v in headlines.items()}
    with open(os.path.join(directory, f"{report}.headlines.json"), "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=1)
    if cards:
        kpis(out)
