"""Markdown for the report pages: text from the data is never markup.

:func:`inline_html` turns inline markdown (``**bold**``, ``*em*``, `` `code` ``) into HTML with
raw HTML escaped and links/images shown as their words; :func:`md_escape` makes a data value
literal inside markdown. Pure functions (strings in, strings out); the notebook helpers
(:mod:`crmlab.report.notebook`) display the results.
"""
from __future__ import annotations

import html as _html
import re

__all__ = ["markdown_renderer", "inline_html", "block_html", "md_escape"]


def markdown_renderer():
    """The shared mistune renderer: raw HTML escaped, links and images as their words."""
    import mistune

    class Renderer(mistune.HTMLRenderer):
        """Raw HTML escaped (it is text), links and images rendered as their words: a value from
        the data is never markup, and ``[x](javascript:...)`` never becomes a live link."""

        def link(self, text: str, url: str, title: str | None = None) -> str:
            return text

        def image(self, text: str, url: str, title: str | None = None) -> str:
            return _html.escape(text)

    md = getattr(markdown_renderer, "md", None)
    if md is None:
        md = markdown_renderer.md = mistune.create_markdown(escape=True, renderer=Renderer(escape=True),
                                                            plugins=["strikethrough"])
    return md


def inline_html(text: str) -> str:
    """Inline markdown (``**bold**``, ``*em*``, `` `code` ``) to HTML. Raw HTML in ``text`` is
    escaped and shown as text; links and images show their words only (no ``href``/``src``)."""
    out = markdown_renderer()(str(text)).strip()
    if out.startswith("<p>") and out.endswith("</p>") and out.count("<p>") == 1:
        out = out[3:-4]
    return out


def block_html(text: str) -> str:
    """Markdown as a block (lists, paragraphs), safely: raw HTML escaped, no links."""
    return f'<div class="crmlab-markdown">{markdown_renderer()(str(text))}</div>'


def md_escape(value) -> str:
    """``value`` as literal text inside markdown for :func:`crmlab.report.notebook.findings` /
    :func:`crmlab.report.notebook.warning`: the characters markdown reads as markup (``*``,
    ``_``, `` ` ``, ``[``, ...) backslash-escaped."""
    return re.sub(r"([\\`*_{}\[\]()#+\-.!|<>~])", r"\\\1", str(value))
