"""The HTML of a run: each report through crmlab's nbconvert template, the run's index page,
the list of runs, the notice that replaces a report withheld for personal data.

Every page uses the one stylesheet ``templates/crmlab/crmlab.css``, carries a
``<meta name="viewport">`` (it reads on a phone: nothing is wider than the screen), the
Content-Security-Policy :data:`CSP` (no script runs, nothing is fetched) and a
header with the way back to the index and on to the previous and next report. A report's
appendix (the outputs :func:`crmlab.report.notebook.run_info` marks: parameters, provenance,
ledger, terms) is moved to the end of the page, folded in a ``<details>`` element; the
period the data covers goes under the title. Pages embed the subset of the CJK font their
text uses (:func:`embed_cjk_font`), so Chinese renders offline on a machine without one.
"""
from __future__ import annotations

import html
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

from crmlab.present.figures import cjk_font_path
from crmlab.report.notebook import APPENDIX, _markdown

__all__ = ["TEMPLATES", "STYLESHEET", "INDEX_MARKER", "CSP", "CSP_META", "Nav", "to_html", "embed_cjk_font",
           "stylesheet", "page", "nav_html", "index_page", "history_page", "notice_page", "skipped_page",
           "notebook_title", "report_description", "DESCRIPTIONS"]

TEMPLATES = Path(__file__).resolve().parent / "templates"
STYLESHEET = TEMPLATES / "crmlab" / "crmlab.css"
#: tag in every index page the runner writes
INDEX_MARKER = '<meta name="generator" content="crmlab">'
_VIEWPORT = '<meta name="viewport" content="width=device-width, initial-scale=1">'
#: the Content-Security-Policy of every page: no script of any kind runs (a value from the
#: data that slipped through as markup stays inert), nothing is fetched; what the pages use
#: is inline: styles, PNG charts and the CJK font as ``data:`` URLs. Links are navigation.
CSP = ("default-src 'none'; script-src 'none'; object-src 'none'; img-src data:; style-src 'unsafe-inline'; "
       "font-src data:; base-uri 'none'; form-action 'none'")
CSP_META = f'<meta http-equiv="Content-Security-Policy" content="{html.escape(CSP)}">'

#: one sentence per report for the index (a notebook not listed: its first sentence)
DESCRIPTIONS = {
    "01_store_overview": "Sales, buyers and average order by month, year on year; first-time vs returning "
                         "buyers; regions, channels and order statuses.",
    "02_retention_repurchase": "How many new buyers come back and when: cohort retention, next-month "
                               "repurchase (次月复购率), lifecycle stages and the wake-up list.",
    "03_magic_number": "The order count from which customers keep coming back (复购魔法数字), and the "
                       "active customers below it.",
    "04_clv": "What today's customers are expected to spend (CLV, with its range), how well the models "
              "predicted a holdout, and who is probably still a customer.",
    "05_sms_ab_test": "Which SMS copy and send time to use, and whether the campaign paid, against a "
                      "no-message holdout.",
    "06_big_promotion": "The big promotion (Double 11, 618): this year's targets from last year, and the "
                        "review by phase for new and old customers.",
}


@dataclass
class Nav:
    """Where a page sits in its run: links to the index and the neighbouring reports."""
    index: str | None = "index.html"
    prev: tuple[str, str] | None = None  # (href, label)
    next: tuple[str, str] | None = None
    here: str = ""


def stylesheet() -> str:
    return STYLESHEET.read_text(encoding="utf-8")


def nav_html(nav: Nav | None, tag: str = "header") -> str:
    if nav is None:
        return ""
    parts = []
    if nav.index:
        parts.append(f'<a class="crmlab-home" href="{html.escape(nav.index)}">☰ All reports 报告目录</a>')
    elif nav.here:
        parts.append(f'<span class="crmlab-home">{html.escape(nav.here)}</span>')
    if nav.prev:
        parts.append(f'<a class="crmlab-prev" rel="prev" href="{html.escape(nav.prev[0])}">← '
                     f'{html.escape(nav.prev[1])}</a>')
    if nav.next:
        parts.append(f'<a class="crmlab-next" rel="next" href="{html.escape(nav.next[0])}">'
                     f'{html.escape(nav.next[1])} →</a>')
    return f'<{tag} class="crmlab-nav"><nav>{"".join(parts)}</nav></{tag}>'


def page(title: str, body: str, nav: Nav | None = None, generator: bool = False) -> str:
    """A page in crmlab's style (the index pages, the notice)."""
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'>{CSP_META}{_VIEWPORT}"
            f"{INDEX_MARKER if generator else ''}<title>{html.escape(title)}</title>"
            f"<style>{stylesheet()}</style></head><body class='crmlab-page'>{nav_html(nav)}"
            f"<main>{body}</main>{nav_html(nav, 'footer')}</body></html>")


# ----------------------------------------------------------------------- a report

def notebook_title(nb_path: Path) -> str:
    """The first ``# heading`` of a notebook, else its file name."""
    import nbformat

    try:
        nb = nbformat.read(str(nb_path), as_version=4)
    except Exception:
        return Path(nb_path).stem
    for c in nb.cells:
        if c.cell_type == "markdown":
            m = re.search(r"^#\s+(.+)$", c.source, flags=re.M)
            if m:
                return m.group(1).strip()
    return Path(nb_path).stem


def report_description(nb_path: Path) -> str:
    """:data:`DESCRIPTIONS`, else the first sentence of the notebook's first paragraph."""
    stem = Path(nb_path).stem
    if stem in DESCRIPTIONS:
        return DESCRIPTIONS[stem]
    import nbformat

    try:
        nb = nbformat.read(str(nb_path), as_version=4)
    except Exception:
        return ""
    for c in nb.cells:
        if c.cell_type == "markdown":
            paras = [p.strip() for p in re.split(r"\n\s*\n", c.source) if p.strip() and not p.lstrip().startswith("#")]
            if paras:
                text = re.sub(r"\s+", " ", paras[0])
                m = re.match(r"(.+?[.!?。])(\s|$)", text)
                return (m.group(1) if m else text)[:300]
    return ""


def _move_appendix(nb) -> None:
    """Outputs marked for the appendix (:data:`crmlab.report.notebook.APPENDIX`) go to a last cell."""
    from nbformat.v4 import new_code_cell

    moved = []
    for c in nb.cells:
        if c.cell_type != "code":
            continue
        keep = []
        for o in c.get("outputs", []):
            (moved if o.get("metadata", {}).get(APPENDIX) else keep).append(o)
        c.outputs = keep
    if moved:
        cell = new_code_cell(source="", outputs=moved)
        cell.metadata["tags"] = ["crmlab-appendix"]
        nb.cells.append(cell)


def to_html(nb_path: Path, html_path: Path, nav: Nav | None = None, period: str | None = None,
            title: str | None = None) -> None:
    """Export an executed notebook to self-contained HTML with crmlab's template: code hidden,
    no network needed, the appendix at the end, ``period`` under the title, ``nav`` links."""
    import nbformat
    from nbconvert import HTMLExporter
    from traitlets.config import Config

    nb = nbformat.read(str(nb_path), as_version=4)
    _move_appendix(nb)
    cfg = Config()
    cfg.CSSHTMLHeaderPreprocessor.enabled = False
    exp = HTMLExporter(config=cfg, template_name="crmlab", extra_template_basedirs=[str(TEMPLATES)])
    exp.exclude_input = True
    exp.exclude_input_prompt = True
    exp.exclude_output_prompt = True
    exp.embed_images = True
    exp.register_filter("crmlab_markdown", _markdown_output)
    resources = {"crmlab": {"css": stylesheet(), "header": nav_html(nav), "footer": nav_html(nav, "footer"),
                            "csp": CSP_META},
                 "metadata": {"name": title or notebook_title(nb_path)}}
    body, _ = exp.from_notebook_node(nb, resources=resources)
    # no network needed: no CDN scripts (the template has none; the CSP forbids every script)
    body = re.sub(r'<script[^>]+src="https?://[^"]+"[^>]*>\s*</script>', "", body)
    if period:
        p = f'<p class="crmlab-period">{html.escape(period)}</p>'
        body = re.sub(r"(</h1>)", lambda m: m.group(1) + p, body, count=1) if "</h1>" in body else body
    Path(html_path).write_text(embed_cjk_font(body), encoding="utf-8")


def _markdown_output(text) -> str:
    """A ``text/markdown`` output (``display(Markdown(...))``): raw HTML escaped, no links."""
    return _markdown()(str(text))


def notice_page(name: str, notice: str, nav: Nav | None = None) -> str:
    """What replaces a report that is not shared."""
    return page(name, f"<h1>{html.escape(name)}</h1><p>{html.escape(notice)}</p>", nav)


def skipped_page(title: str, reason: str, nav: Nav | None = None, period: str | None = None) -> str:
    """The page of a report that does not apply to the data: its title and why it was skipped."""
    per = f'<p class="crmlab-period">{html.escape(period)}</p>' if period else ""
    return page(title, f"<h1>{html.escape(title)}</h1>{per}<section class='crmlab-skipped'><h2>Skipped 未生成</h2>"
                       f"<p>{html.escape(reason)}</p></section>", nav)


# ----------------------------------------------------------------------- the font

_DATA = re.compile(r"data:[a-z]+/[a-z0-9.+-]+;base64,[A-Za-z0-9+/=\s]+")
# the embedded CJK subset comes first: it declares a CJK unicode-range, so Latin text falls
# through to the system fonts (headless Chromium never reached a web font placed after them)
_FONT_STACK = ("'crmlab CJK', -apple-system, BlinkMacSystemFont, 'Segoe UI', Helvetica, Arial, 'PingFang SC', "
               "'Microsoft YaHei', sans-serif")


def embed_cjk_font(html_text: str) -> str:
    """Embed the Noto Sans CJK SC glyphs this page uses (a subset, a few tens of KB), so
    Chinese text renders on a reader's machine that has no CJK font, offline."""
    import base64
    import io

    chars = {c for c in _DATA.sub("", html_text) if ord(c) >= 0x2E80}
    path = cjk_font_path()
    if not chars or path is None:
        return html_text
    from fontTools import subset

    opts = subset.Options()
    opts.desubroutinize = True
    font = subset.load_font(path, opts)
    sub = subset.Subsetter(opts)
    sub.populate(text="".join(sorted(chars)))
    sub.subset(font)
    buf = io.BytesIO()
    font.save(buf)
    b64 = base64.b64encode(buf.getvalue()).decode()
    css = (f"<style>@font-face{{font-family:'crmlab CJK';src:url(data:font/otf;base64,{b64}) format('opentype');"
           f"unicode-range:U+2E80-9FFF,U+F900-FAFF,U+FE30-FE4F,U+FF00-FFEF;}}"
           f"body,table{{font-family:{_FONT_STACK};}}</style>")
    return html_text.replace("</head>", css + "</head>", 1) if "</head>" in html_text else css + html_text


# ----------------------------------------------------------------------- index pages

def _value(v) -> str:
    if isinstance(v, Mapping):
        return str(v.get("value", ""))
    return "—" if v is None else str(v)


def _heads(h: Mapping[str, object]) -> str:
    items = []
    for k, v in h.items():
        comp = v.get("compare") if isinstance(v, Mapping) else None
        items.append(f"<div><dt>{html.escape(str(k))}</dt><dd>{html.escape(_value(v))}"
                     + (f" <small>{html.escape(str(comp))}</small>" if comp else "") + "</dd></div>")
    return f'<dl class="crmlab-heads">{"".join(items)}</dl>' if items else ""


def _status(r: Mapping) -> str:
    st = r.get("status") or ("ok" if r.get("ok") else "failed")
    note = r.get("error") if st == "failed" else r.get("reason") if st == "skipped" else None
    label = {"ok": "✓ ok", "failed": "✗ FAILED", "skipped": "skipped"}.get(st, st)
    secs = f" · {r['seconds']} s" if st != "skipped" and r.get("seconds") is not None else ""
    return (f"<p class='crmlab-status {html.escape(st)}'>{html.escape(label)}{secs}"
            f"{'<br><small>' + html.escape(str(note)) + '</small>' if note else ''}</p>")


def period_text(period: Mapping | None) -> str:
    if not period or not period.get("first"):
        return ""
    return f"Data 数据期间: {period['first']} → {period['last']}"


def index_page(run: Mapping) -> str:
    """The run's ``index.html``: each report with a sentence, its status and headline numbers."""
    items = []
    for r in run["reports"]:
        n = html.escape(r["name"])
        title = html.escape(r.get("title") or r["name"])
        linked = r.get("status") != "skipped" or r.get("page")  # a skipped report may have a page saying why
        head = f"<h2><a href='{n}.html'>{title}</a></h2>" if linked else f"<h2>{title}</h2>"
        desc = f"<p>{html.escape(r['description'])}</p>" if r.get("description") else ""
        items.append(f"<li>{head}{desc}{_status(r)}{_heads(r.get('headlines') or {})}</li>")
    inputs = html.escape(str(run["orders"])) + (f", {html.escape(run['sends'])}" if run.get("sends") else "")
    per = period_text(run.get("period"))
    body = ("<h1>crmlab reports 报告</h1>"
            + (f"<p class='crmlab-period'>{html.escape(per)}</p>" if per else "")
            + f"<p><small>Inputs {inputs} · run at {html.escape(run['run_at'])} · crmlab "
            f"{html.escape(run['crmlab'])} · {run['seconds']} s</small></p>"
            f"<ul class='crmlab-reports'>{''.join(items)}</ul>")
    return page("crmlab reports", body, Nav(index=None, here="crmlab reports 报告"), generator=True)


def history_page(runs: Sequence[tuple[str, Mapping]]) -> str:
    """``reports/index.html``: every run with its headline numbers side by side."""
    keys: list[tuple[str, str]] = []
    for _, r in runs:
        for rep in r["reports"]:
            for k in rep["headlines"]:
                if (rep["name"], k) not in keys:
                    keys.append((rep["name"], k))
    head = "".join(f"<th><a href='{html.escape(n)}/index.html'>{html.escape(n)}</a><br><small>"
                   f"{html.escape(str(r['run_at']))}</small></th>" for n, r in runs)
    status = "".join(f"<td class='{'ok' if r.get('ok') else 'failed'}'>{'✓ ok' if r.get('ok') else '✗ FAILED'}</td>"
                     for _, r in runs)
    periods = "".join(f"<td>{html.escape(period_text(r.get('period')).split(': ', 1)[-1])}</td>" for _, r in runs)
    body = ""
    for rep, k in keys:
        cells = ""
        for _, r in runs:
            v = next((x["headlines"].get(k) for x in r["reports"] if x["name"] == rep), None)
            ch = next((c for c in (r.get("since_last_run") or {}).get("changes", [])
                       if c.get("report") == rep and c.get("headline") == k and c.get("direction") in ("up", "down")), None)
            since = (f"<br><small>{'▲' if ch['direction'] == 'up' else '▼'} {html.escape(str(ch.get('change', '')))}"
                     f"{' ⚠' if ch.get('beyond_interval') else ''}</small>") if ch else ""
            cells += f"<td>{'' if v is None else html.escape(_value(v))}{since}</td>"
        body += f"<tr><th><small>{html.escape(rep)}</small><br>{html.escape(k)}</th>{cells}</tr>"
    doc = (f"<h1>crmlab runs 历次报告</h1><div class='crmlab-scroll'><table><thead><tr><th>headline</th>{head}"
           f"</tr></thead><tbody><tr><th>status</th>{status}</tr><tr><th>data 数据期间</th>{periods}</tr>{body}"
           f"</tbody></table></div>")
    return page("crmlab runs", doc, Nav(index=None, here="crmlab runs 历次报告"), generator=True)
