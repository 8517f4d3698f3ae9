"""A chart laid out again for a phone screen.

A chart drawn 8–12 inches wide for a laptop shrinks to about 40% on a 390 px phone, and its
11 pt text to 5–6 px: unreadable. :func:`phone_layout` re-lays out a drawn figure for a phone
instead: the figure becomes :data:`PHONE_WIDTH_IN` wide (text keeps its point size, so it
reads at ~13 px), panels side by side are stacked one per row, and a heat map's cell labels
(unreadable at that size) are hidden — the table beside it carries the numbers. The report
page offers both renderings (``<picture>``): the browser picks by screen width.
"""
from __future__ import annotations

import textwrap

from matplotlib.figure import Figure
from matplotlib.gridspec import GridSpec

__all__ = ["PHONE_WIDTH_IN", "PHONE_MEDIA", "needs_phone_layout", "phone_layout"]

#: the phone rendering's width: 390 px of screen less the page's margins, at 100 px per inch
PHONE_WIDTH_IN = 3.7
#: the media query that picks the phone rendering
PHONE_MEDIA = "(max-width: 600px)"
#: a title longer than this (characters) is wrapped onto two lines on a phone
TITLE_CHARACTERS = 30
#: an axis label longer than this (characters) is wrapped on a phone
LABEL_CHARACTERS = 38
#: more cell labels than this in one panel: a heat map, too dense to label on a phone
MAX_LABELS = 30


def _panels(fig: Figure) -> list:
    """The figure's visible panels, without colour bars."""
    return [ax for ax in fig.get_axes() if ax.get_visible() and getattr(ax, "_colorbar", None) is None]


def needs_phone_layout(fig: Figure) -> bool:
    """Whether the figure is much wider than a phone (else one rendering serves both)."""
    return fig.get_size_inches()[0] > PHONE_WIDTH_IN * 1.25


def phone_layout(fig: Figure) -> bool:
    """Lay ``fig`` out again for a phone, in place.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        A drawn figure (already rendered for a laptop: it is changed).

    Returns
    -------
    bool
        True when the figure was re-laid out; False when it cannot be (colour bars beside
        several panels, or a layout that is not a simple grid), then the laptop rendering
        serves both.
    """
    panels = _panels(fig)
    if not panels or (len(panels) > 1 and len(panels) < len(fig.get_axes())):
        return False
    w, h = fig.get_size_inches()
    rows = len(panels)
    if rows > 1:
        if any(ax.get_subplotspec() is None for ax in panels):
            return False
        grid = GridSpec(rows, 1, figure=fig)
        for i, ax in enumerate(panels):
            ax.set_subplotspec(grid[i, 0])
        per_panel = min(max(h * 0.8, 2.6), 3.4)
    else:
        per_panel = min(max(h * 0.8, 2.6), 6.0)
    for ax in panels:
        title = ax.get_title()
        if len(title) > TITLE_CHARACTERS and "\n" not in title:
            ax.set_title(textwrap.fill(title, TITLE_CHARACTERS, break_long_words=False))
        for axis in (ax.xaxis, ax.yaxis):
            label = axis.get_label().get_text()
            if len(label) > LABEL_CHARACTERS and "\n" not in label:
                axis.set_label_text(textwrap.fill(label, LABEL_CHARACTERS, break_long_words=False))
        if len(ax.texts) > MAX_LABELS:
            for t in ax.texts:
                t.set_visible(False)
    fig.set_size_inches(PHONE_WIDTH_IN, per_panel * rows, forward=False)
    return True
