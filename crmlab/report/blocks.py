"""Page blocks of a report's first screen and its navigation, as escaped HTML (no script).

* :func:`results_table_html`: one results table (GrowthBook/Optimizely style): a row per arm or
  metric, text cells already formatted, and interval columns drawn as a small bar in pure
  HTML/CSS — the interval on a shared scale, a zero line and the estimate — beside the
  formatted ``estimate [low, high]``; the chosen row highlighted; optionally the next steps
  beside it (:func:`beside_html`).
* :func:`warnings_html`: every warning of a page in ONE box: the first as its headline, the
  others as a list (a page never repeats a warning box).
* :func:`toc_html`: a small table of contents linking the page's sections (``#anchor``).
* :func:`fold_html`: a detail block folded in ``<details>`` (no script needed).
* :func:`section_html`: a section's heading (``<h2 id=...>``), for a section a notebook shows
  only when it applies (a markdown cell would always show), with its one-line lead or the one
  line saying why it was skipped (:func:`skipped_html`).

Every value from the data is escaped; the only markup is this module's. The pages' CSP
(``crmlab.report.html.CSP``) allows inline styles, which place the bars.
"""
from __future__ import annotations

import html as _html
from typing import Callable, Iterable, Mapping, Sequence

import pandas as pd

from crmlab.present import formatting as fmt

__all__ = ["Interval", "interval_bar_html", "results_table_html", "beside_html", "warnings_html", "toc_html",
           "fold_html", "section_html", "skipped_html"]

esc = _html.escape


class Interval:
    """An interval column of :func:`results_table_html`: per row the estimate and its interval
    (numbers, NaN for a row without one) and the function that writes a value.

    Parameters
    ----------
    estimate, low, high : pandas.Series
        Indexed like the table's rows.
    write : callable
        Number -> text (e.g. ``Formatter.money`` or ``lambda v: fmt.pp(v, 2)``).
    bar : bool
        Draw the bar (False: the text ``estimate [low, high]`` only).
    """

    def __init__(self, estimate: pd.Series, low: pd.Series, high: pd.Series, write: Callable[[float], str],
                 bar: bool = True) -> None:
        self.estimate, self.low, self.high, self.write, self.bar = estimate, low, high, write, bar

    def scale(self) -> tuple[float, float]:
        """The shared axis of the column's bars: every interval and zero."""
        vals = [v for v in [*self.low, *self.high, *self.estimate, 0.0] if not fmt.is_missing(v)]
        lo, hi = min(vals), max(vals)
        return (lo, hi) if hi > lo else (lo - 1.0, hi + 1.0)

    def text(self, key) -> str:
        e, lo, hi = self.estimate.get(key), self.low.get(key), self.high.get(key)
        if fmt.is_missing(e):
            return fmt.MISSING
        if fmt.is_missing(lo) or fmt.is_missing(hi):
            return self.write(e)
        return f"{self.write(e)} [{self.write(lo)}, {self.write(hi)}]"


def _at(v: float, lo: float, hi: float) -> float:
    return round(100 * (v - lo) / (hi - lo), 1)


def interval_bar_html(estimate: float, low: float, high: float, scale: tuple[float, float], label: str) -> str:
    """One interval drawn on ``scale`` (min, max): green when it is above zero, red below, grey
    when it includes zero; ``label`` is its text alternative (``aria-label``)."""
    if any(fmt.is_missing(v) for v in (estimate, low, high)):
        return ""
    a, b = scale
    tone = "up" if low > 0 else "down" if high < 0 else "flat"
    zero = (f'<span class="crmlab-ibar-zero" style="left:{_at(0.0, a, b)}%"></span>' if a <= 0 <= b else "")
    left, width = _at(low, a, b), max(_at(high, a, b) - _at(low, a, b), 0.8)
    return (f'<span class="crmlab-ibar crmlab-ibar-{tone}" role="img" aria-label="{esc(label)}">{zero}'
            f'<span class="crmlab-ibar-ci" style="left:{left}%;width:{width}%"></span>'
            f'<span class="crmlab-ibar-est" style="left:{_at(estimate, a, b)}%"></span></span>')


def _cell(key, name: str, col, scales: Mapping) -> str:
    if isinstance(col, Interval):
        text = col.text(key)
        bar = (interval_bar_html(col.estimate.get(key), col.low.get(key), col.high.get(key), scales[name],
                                 f"{name}: {text}") if col.bar else "")
        return (f'<td class="crmlab-num{" crmlab-missing" if text == fmt.MISSING else ""}" data-label="{esc(name)}">'
                f'{esc(text)}{bar}</td>')
    v = col.get(key) if isinstance(col, pd.Series) else col
    text = fmt.MISSING if fmt.is_missing(v) else str(v)
    return f'<td class="crmlab-num{" crmlab-missing" if text == fmt.MISSING else ""}" data-label="{esc(name)}">{esc(text)}</td>'


def results_table_html(columns: Mapping[str, pd.Series | Interval], index: Sequence, highlight: Iterable = (),
                       caption: str | None = None, row_label: str = "arm", notes: Mapping | None = None) -> str:
    """One results table: a row per ``index`` entry, ``columns`` (header -> formatted text
    Series, or an :class:`Interval` — or its arguments as a tuple — drawn as a bar with its text); rows in ``highlight`` are
    marked as the choice (★); ``notes``: a short word under a row's name (``"control"``)."""
    chosen = {str(k) for k in highlight}
    columns = {n: Interval(*c) if isinstance(c, tuple) else c for n, c in columns.items()}
    scales = {n: c.scale() for n, c in columns.items() if isinstance(c, Interval)}
    head = f'<th scope="col">{esc(row_label)}</th>' + "".join(f'<th scope="col">{esc(n)}</th>' for n in columns)
    rows = []
    for key in index:
        mark = str(key) in chosen
        note = (notes or {}).get(key)
        name = (("★ " if mark else "") + str(key))
        th = f'<th scope="row">{esc(name)}' + (f'<br><small>{esc(str(note))}</small>' if note else "") + "</th>"
        cells = "".join(_cell(key, n, c, scales) for n, c in columns.items())
        rows.append(f'<tr{" class=" + chr(34) + "crmlab-chosen" + chr(34) if mark else ""}>{th}{cells}</tr>')
    cap = f"<caption>{esc(caption)}</caption>" if caption else ""
    return (f'<div class="crmlab-scroll"><table class="crmlab-table crmlab-results">{cap}<thead><tr>{head}</tr>'
            f'</thead><tbody>{"".join(rows)}</tbody></table></div>')


def beside_html(main: str, title: str, lines: Sequence[str], tone: str = "neutral") -> str:
    """``main`` (escaped HTML) with a short list beside it (the next steps): side by side on a
    wide screen, the list under it on a phone. ``lines`` are plain text (escaped)."""
    items = "".join(f"<li>{esc(str(s))}</li>" for s in lines)
    return (f'<div class="crmlab-beside"><div class="crmlab-beside-main">{main}</div>'
            f'<aside class="crmlab-steps crmlab-steps-{esc(tone)}"><h2>{esc(title)}</h2><ol>{items}</ol></aside></div>')


def warnings_html(lines: Sequence[str], title: str | None = None) -> str:
    """Every warning of a page in one box (empty string when there is none): one warning as its
    sentence; several: ``title`` (default: the first) and the rest as a list. Duplicates dropped."""
    seen: list[str] = []
    for s in lines:
        s = str(s).strip()
        if s and s.lower() not in (x.lower() for x in seen):
            seen.append(s)
    if not seen:
        return ""
    first, rest = (title, seen) if title else (seen[0], seen[1:])
    body = f"<p>⚠ {esc(first)}</p>" + (f'<ul>{"".join(f"<li>{esc(s)}</li>" for s in rest)}</ul>' if rest else "")
    return f'<div class="crmlab-warning crmlab-warnings" role="note">{body}</div>'


def toc_html(entries: Mapping[str, str], label: str = "On this page 本页") -> str:
    """A table of contents: ``{anchor: section name}`` as links to ``#anchor``."""
    links = " · ".join(f'<a href="#{esc(a, quote=True)}">{esc(t)}</a>' for a, t in entries.items())
    return f'<nav class="crmlab-toc" aria-label="{esc(label)}"><strong>{esc(label)}:</strong> {links}</nav>'


def fold_html(summary: str, inner: str, anchor: str | None = None) -> str:
    """``inner`` (HTML) folded under a one-line ``summary``: the reader opens it when needed."""
    ident = f' id="{esc(anchor, quote=True)}"' if anchor else ""
    return f'<details class="crmlab-fold"{ident}><summary>{esc(summary)}</summary>{inner}</details>'



def section_html(anchor: str, title: str, lead: str | None = None) -> str:
    """A section heading linked from :func:`toc_html` (``#anchor``) and, optionally, its
    one-sentence ``lead`` under it (plain text, escaped)."""
    head = f'<h2 id="{esc(anchor, quote=True)}">{esc(title)}</h2>'
    return head + (f'<p class="crmlab-section-lead">{esc(lead)}</p>' if lead else "")


def skipped_html(reason: str) -> str:
    """The one line of a section that cannot answer: ``Skipped: <reason>`` (escaped)."""
    return f'<p class="crmlab-section-skipped">Skipped 未生成: {esc(reason)}</p>'
