"""Text alternatives for charts: what a screen reader (or a reader whose images are blocked)
is told about a figure.

A chart's alt text names what it shows from the figure itself: its title (or the titles of
its panels), what each axis measures and the series in its legend — "Chart: Sales by month.
x: month; y: sales (£); series: first-time, returning." A notebook can pass its own words to
:func:`crmlab.report.notebook.show` instead. Never empty, never the converter's "No
description has been provided" (WCAG 2.1, success criterion 1.1.1).
"""
from __future__ import annotations

__all__ = ["describe"]

#: the longest alt text: screen readers read it whole, so it stays a sentence or two
MAX_CHARACTERS = 300


def _clean(text: str) -> str:
    return " ".join(str(text).replace("$", "").split())


def _panel(ax) -> str:
    """One panel: its title, axes and series."""
    parts = []
    title = _clean(ax.get_title())
    if title:
        parts.append(title)
    axes = [f"{name}: {_clean(label)}" for name, label in (("x", ax.get_xlabel()), ("y", ax.get_ylabel()))
            if _clean(label)]
    if axes:
        parts.append("; ".join(axes))
    legend = ax.get_legend()
    if legend is not None:
        names = [_clean(t.get_text()) for t in legend.get_texts() if _clean(t.get_text())]
        if names:
            parts.append("series: " + ", ".join(names[:6]) + (" …" if len(names) > 6 else ""))
    return ". ".join(parts)


def describe(fig, default: str = "Chart") -> str:
    """The alt text of a Matplotlib figure.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure, fully drawn (titles, labels and legends set).
    default : str
        What the chart is called when it has no title of its own.

    Returns
    -------
    str
        ``"Chart: <title>. x: …; y: …; series: …"``, one panel after another, at most
        :data:`MAX_CHARACTERS` characters.
    """
    head = _clean(fig._suptitle.get_text()) if getattr(fig, "_suptitle", None) is not None else ""
    panels = [p for p in (_panel(ax) for ax in fig.get_axes() if ax.get_visible() and ax.axison) if p]
    if len(panels) > 1:
        panels = [f"panel {i}: {p}" for i, p in enumerate(panels, 1)]
    text = ". ".join(x for x in [head, *panels] if x) or "no title"
    text = f"{default}: {text}"
    return text if len(text) <= MAX_CHARACTERS else text[:MAX_CHARACTERS - 1].rstrip() + "…"
