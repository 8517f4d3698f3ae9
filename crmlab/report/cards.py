"""The first screen of a report as HTML: KPI cards, the verdict, key findings, warnings, badges.

Pure functions (values in, HTML strings out; every value from the data escaped); the notebook
helpers (:mod:`crmlab.report.notebook`) display them.
"""
from __future__ import annotations

import html as _html
from typing import Iterable, Mapping

from crmlab.present import formatting as fmt
from crmlab.report.text import inline_html

__all__ = ["kpi", "card_html", "kpis_html", "badge", "findings_html", "verdict_html", "warning_html", "TONES"]

#: the verdict's tones (:func:`verdict_html`)
TONES = ("good", "bad", "wait", "neutral")


def kpi(value, compare: str | None = None, note: str | None = None, tone: str | None = None) -> dict:
    """One KPI card for :func:`crmlab.report.notebook.record_headlines`: the value shown big, a
    comparison under it (``"+88% vs 2024"``), a note. ``tone``: ``"good"``, ``"bad"`` or None
    (from the sign of ``compare`` otherwise: ▲ / ▼)."""
    return {"value": str(value), "compare": compare, "note": note, "tone": tone}


def card_html(label: str, v) -> str:
    """One KPI card: ``v`` a :func:`kpi` or a plain value (formatted for ``label``)."""
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


def kpis_html(cards: Mapping[str, object]) -> str:
    """A row of KPI cards: ``{label: value or kpi(...)}``."""
    return '<div class="crmlab-kpis">' + "".join(card_html(k, v) for k, v in cards.items()) + "</div>"


def badge(ok: bool, yes: str = "pass", no: str = "fail") -> str:
    """An inline pass/fail badge (HTML)."""
    cls, text = ("pass", f"✓ {yes}") if ok else ("fail", f"✗ {no}")
    return f'<span class="crmlab-badge crmlab-{cls}">{_html.escape(text)}</span>'


def findings_html(lines: Iterable[str], title: str) -> str:
    """The key findings as a list (inline markdown allowed)."""
    items = "".join(f"<li>{inline_html(s)}</li>" for s in lines)
    return f'<section class="crmlab-findings"><h2>{_html.escape(title)}</h2><ul>{items}</ul></section>'


def verdict_html(text: str, tone: str = "neutral") -> str:
    """The page's one-line answer (inline markdown allowed); an unknown ``tone`` is neutral."""
    tone = tone if tone in TONES else "neutral"
    return f'<p class="crmlab-verdict crmlab-verdict-{tone}" role="status">{inline_html(text)}</p>'


def warning_html(text: str) -> str:
    """A red warning box (inline markdown allowed)."""
    return f'<div class="crmlab-warning">⚠ {inline_html(text)}</div>'
