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

This module displays; the HTML is built by :mod:`crmlab.report.text` (markdown),
:mod:`crmlab.report.cards` (KPI cards, verdict, findings, warnings),
:mod:`crmlab.report.tables` (tables, customer lists) and :mod:`crmlab.report.appendix`
(parameters, provenance, ledger, headlines). Their public names are re-exported here: the
notebooks use ``from crmlab.report import notebook as nb`` only.
"""
from __future__ import annotations

import base64
import html as _html
import io
from typing import Iterable, Mapping, Sequence

import pandas as pd

from crmlab.ingest.readers import Ledger
from crmlab.present import chart_text, formatting as fmt, phone, ticks
from crmlab.present.figures import style
from crmlab.report import blocks
from crmlab.report.appendix import run_info_html, write_headlines
from crmlab.report.blocks import Interval
from crmlab.report.cards import badge, findings_html, kpi, kpis_html, verdict_html, warning_html
from crmlab.report.tables import ID_COLUMNS, escaped, mask_frame as _mask, styled_table, write_list
from crmlab.report.text import block_html, inline_html as _md, markdown_renderer as _markdown, md_escape

__all__ = ["show", "findings", "run_info", "table", "record_headlines", "warning", "warnings", "pct", "kpi", "kpis",
           "badge", "verdict", "results_table", "Interval", "toc", "markdown", "md_escape", "escaped", "ID_COLUMNS",
           "APPENDIX", "write_list"]

#: output metadata key: outputs carrying it are moved to the report's appendix by the runner
APPENDIX = "crmlab_appendix"


def _display(obj, **kw) -> None:
    from IPython.display import display

    display(obj, **kw)


def _html_out(text: str, appendix: bool = False) -> None:
    from IPython.display import HTML

    _display(HTML(text), metadata={APPENDIX: True} if appendix else None)


def markdown(text: str) -> None:
    """Display markdown (a block: lists, paragraphs) safely: raw HTML escaped, no links."""
    _html_out(block_html(text))


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

def kpis(cards: Mapping[str, object]) -> None:
    """Display KPI cards: ``{label: value or kpi(...)}``."""
    _html_out(kpis_html(cards))


def findings(lines: Iterable[str], title: str = "Key findings 关键结论") -> None:
    """The key findings as a list (inline markdown allowed)."""
    _html_out(findings_html(lines, title))


def verdict(text: str, tone: str = "neutral") -> None:
    """The page's one-line answer, first on its first screen: what to do, or why nothing
    (inline markdown allowed; data values escaped). ``tone``: ``"good"`` (act), ``"bad"``
    (stop, fix first), ``"wait"`` (keep running, not enough evidence) or ``"neutral"``."""
    _html_out(verdict_html(text, tone))


def warning(text: str) -> None:
    """A red warning box at the top of a report (several warnings: :func:`warnings`, one box)."""
    _html_out(warning_html(text))


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

def table(df: pd.DataFrame, percent: Iterable[str] = (), money: Iterable[str] = (), digits: int = 3,
          caption: str | None = None, pp: Iterable[str] = (), integers: Iterable[str] = (),
          pvalues: Iterable[str] = (), ratio: Iterable[str] = (), days: Iterable[str] = (),
          ids: Sequence[str] = ID_COLUMNS, labels: bool = True, appendix: bool = False,
          fold: str | None = None) -> None:
    """Display a table formatted for a reader (:func:`crmlab.report.tables.styled_table`).

    ``percent``: shares (``12.3%``); ``pp``: differences of shares (``+1.8 pp``); ``money``:
    the store's currency, rounded to the yuan (2 decimals when every value is below 10);
    ``integers``, ``days``: whole numbers; ``pvalues`` (also any column named ``p_value``,
    ``p_holm``, ``p-value``): ``< 0.001``; ``ratio``: ``46.7×``. Other float columns get
    ``digits`` decimals, or none when every value is whole; booleans ✓/✗; missing ``—``.
    Customer ids (``ids`` columns or index) are masked. Headers in words when ``labels``.
    ``fold``: the table folded under this one-line summary (``<details>``).
    """
    st = styled_table(df, percent, money, digits, caption, pp, integers, pvalues, ratio, days, ids, labels)
    if appendix or fold:
        _html_out(blocks.fold_html(fold, st.to_html()) if fold else st.to_html(), appendix=appendix)
    else:
        _display(st)


# ------------------------------------------------------------------------- the appendix, headlines

def run_info(parameters: Mapping[str, object], ledgers: Iterable[Ledger | None]) -> None:
    """The appendix: parameters, provenance (files, sha256, rows, observation end, version,
    time), the ledger of every input row, and the glossary — folded in a ``<details>``
    element that the runner moves to the end of the report."""
    _html_out(run_info_html(parameters, ledgers), appendix=True)


def record_headlines(report: str, headlines: Mapping[str, object], directory: str = ".",
                     cards: bool = True) -> None:
    """Write ``{report}.headlines.json`` for the runner's index pages and (``cards``) show
    the headlines as KPI cards. A value may be a :func:`kpi` (value and comparison)."""
    out = write_headlines(report, headlines, directory)
    if cards:
        kpis(out)
