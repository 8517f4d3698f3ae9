"""Telling people about a finished run: the notice (mail and chat) built from ``run.json``.

On success the success list gets one mail: the headline numbers of every report (exactly as
``run.json`` has them), what changed since the previous successful run of the same inputs
(:mod:`crmlab.report.changes`), the alerts the delivery file sets, the run's location, and
the pages as one zip (``attach: html``) or as PDFs (``attach: pdf``) when they fit under
``attach_max_mb`` (else the mail says where the run is). On failure only the failure list
gets a mail: each failing notebook with its cell and error line; nothing goes to the success
list. Each webhook gets one message either way.

No personal data leaves: every body and attachment is scanned like the shared files
(:func:`crmlab.privacy.find_pii`; local paths replaced by the run's location); a page that
shows a phone-shaped string is not attached (the mail says so), a body is redacted.
"""
from __future__ import annotations

import html
import io
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

from crmlab.privacy import find_pii, redact, scrub_paths
from crmlab.report.changes import changes_html, changes_text, check_alerts, previous_run, since_last_run
from crmlab.report.chat import post
from crmlab.report.delivery import Delivery
from crmlab.report.lock import _read_run, is_run_dir
from crmlab.report.mail import DeliveryError, build_mail, send_mail
from crmlab.report.pdf import PdfError, html_to_pdf
from crmlab.schema import CrmlabInputError

__all__ = ["Notice", "build_notice", "deliver_run", "deliver_not_run", "EXIT_NOT_DELIVERED"]

#: exit code of ``crmlab report -d`` / ``crmlab deliver`` when a notice could not be delivered
#: (the run itself is kept; ``crmlab deliver RUN -d FILE`` sends it again)
EXIT_NOT_DELIVERED = 3


@dataclass
class Notice:
    """What is sent about one run."""

    ok: bool
    subject: str
    text: str
    html: str
    markdown: str
    attachments: list[tuple[str, bytes, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what was not attached, and why


def _location(run_dir: Path, d: Delivery) -> str:
    if d.run_url:
        return d.run_url.rstrip("/") + f"/{run_dir.name}/index.html"
    return f"{run_dir.parent.name}/{run_dir.name}/index.html"


def _value(v) -> tuple[str, str]:
    if isinstance(v, Mapping):
        return str(v.get("value", "")), str(v.get("compare") or "")
    return ("—" if v is None else str(v)), ""


def _clean(text: str, run_dir: Path, where: str) -> str:
    roots = [(str(run_dir.resolve()), where.rsplit("/", 1)[0]), (str(run_dir.resolve().parent), "."),
             (os.path.expanduser("~"), "~"), (os.getcwd(), ".")]
    text = scrub_paths(text, roots)
    return redact(text) if find_pii(text) else text


def _failed(run: Mapping) -> list[Mapping]:
    return [r for r in run["reports"] if r.get("status") == "failed" or (r.get("status") is None and not r.get("ok"))]


def _texts(run: Mapping, where: str, changes, prev: str | None, alerts: list[str]) -> tuple[str, str, str]:
    """(plain, html, markdown) of the notice's body."""
    per = run.get("period") or {}
    head = f"crmlab reports {run.get('run_at', '')}" + (f" · data {per.get('first')} → {per.get('last')}"
                                                          if per.get("first") else "")
    plain = [head, f"Run 报告: {where}", ""]
    md = [f"### crmlab reports {'✓ ok' if run.get('ok') else '✗ FAILED'}", head, f"Run 报告: {where}", ""]
    body = [f"<h1 style='font-size:20px'>crmlab reports {'✓ ok' if run.get('ok') else '✗ FAILED'}</h1>"
            f"<p>{html.escape(head)}<br>Run 报告: <a href='{html.escape(where)}'>{html.escape(where)}</a></p>"]
    if alerts:
        plain += ["ALERTS 警报:"] + [f"  ! {a}" for a in alerts] + [""]
        md += ["**ALERTS 警报**"] + [f"- ❗ {a}" for a in alerts] + [""]
        body.append("<div style='border:2px solid #c00;padding:8px'><b>ALERTS 警报</b><ul>"
                    + "".join(f"<li>{html.escape(a)}</li>" for a in alerts) + "</ul></div>")
    for r in (_failed(run) if not run.get("ok") else run["reports"]):
        title = str(r.get("title") or r.get("name"))
        plain.append(title)
        md.append(f"**{title}**")
        rows = ""
        if r.get("status") == "failed" or not run.get("ok"):
            plain.append(f"  FAILED: {r.get('error')}")
            md.append(f"- FAILED: {r.get('error')}")
            rows = f"<tr><td colspan=2 style='color:#c00'>FAILED: {html.escape(str(r.get('error')))}</td></tr>"
        elif r.get("status") == "skipped":
            plain.append(f"  skipped: {r.get('reason')}")
            md.append(f"- skipped: {r.get('reason')}")
            rows = f"<tr><td colspan=2>skipped: {html.escape(str(r.get('reason')))}</td></tr>"
        for k, v in (r.get("headlines") or {}).items() if run.get("ok") else ():
            val, comp = _value(v)
            plain.append(f"  {k}: {val}" + (f" ({comp})" if comp else ""))
            md.append(f"- {k}: **{val}**" + (f" ({comp})" if comp else ""))
            rows += (f"<tr><th style='text-align:left;font-weight:normal'>{html.escape(str(k))}</th><td style="
                     f"'text-align:right'><b>{html.escape(val)}</b>"
                     + (f"<br><small>{html.escape(comp)}</small>" if comp else "") + "</td></tr>")
        body.append(f"<h2 style='font-size:16px'>{html.escape(title)}</h2><table style='width:100%'>{rows}</table>")
        plain.append("")
        md.append("")
    if run.get("ok") and changes:
        plain += changes_text(changes, prev) + [""]
        md += changes_text(changes, prev)
        body.append(changes_html(changes, prev))
    doc = ("<!doctype html><html><head><meta charset='utf-8'><meta name='viewport' content='width=device-width,"
           "initial-scale=1'></head><body style='font-family:-apple-system,Helvetica,Arial,\"PingFang SC\","
           "\"Microsoft YaHei\",sans-serif;max-width:600px;margin:auto;padding:8px'>" + "".join(body)
           + "</body></html>")
    return "\n".join(plain), doc, "\n".join(md)


def _pages(run_dir: Path, run: Mapping) -> list[Path]:
    names = ["index"] + [r["name"] for r in run["reports"] if r.get("status") != "skipped" or r.get("page")]
    return [run_dir / f"{n}.html" for n in names if (run_dir / f"{n}.html").is_file()]


def _attachments(run_dir: Path, run: Mapping, d: Delivery, warn: Callable[[str], None]) -> tuple[list, list[str]]:
    """The pages as one zip or as PDFs: those showing a phone-shaped string left out, all of them
    when they exceed the size cap."""
    if d.attach == "none" or not run.get("ok"):
        return [], []
    files, notes = [], []
    for p in _pages(run_dir, run):
        text = p.read_text(encoding="utf-8", errors="replace")
        if find_pii(text):
            notes.append(f"{p.name} not attached: it shows a phone-shaped string")
            continue
        if d.attach == "pdf" and p.stem != "index":
            try:
                pdf = html_to_pdf(p, run_dir / f"{p.stem}.pdf")
            except PdfError as e:
                warn(str(e))
                notes.append(f"{p.stem}.pdf not made ({e}); the HTML pages are in the run")
                continue
            files.append((pdf.name, pdf.read_bytes(), "application/pdf"))
        elif d.attach == "html":
            files.append((p.name, text.encode("utf-8"), "text/html"))
    if d.attach == "html" and files:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            for name, data, _ in files:
                z.writestr(f"{run_dir.name}/{name}", data)
        files = [(f"crmlab-{run_dir.name}.zip", buf.getvalue(), "application/zip")]
    size = sum(len(b) for _, b, _ in files)
    if size > d.attach_max_mb * 1e6:
        notes.append(f"pages not attached: {size / 1e6:.1f} MB is over the {d.attach_max_mb:g} MB cap; "
                     "open them at the run's location")
        files = []
    return files, notes


def build_notice(run_dir: Path, d: Delivery, warn: Callable[[str], None] = lambda m: None) -> Notice:
    """The mail and chat texts and the attachments for the run in ``run_dir``."""
    run_dir = Path(run_dir)
    run = _read_run(run_dir) if is_run_dir(run_dir) else None
    if run is None or not isinstance(run.get("reports"), list):
        raise CrmlabInputError(f"{run_dir.name}: not a crmlab run (no run.json written by crmlab)")
    where = _location(run_dir, d)
    prev = previous_run(run_dir.parent, run, exclude=run_dir.name)
    changes = since_last_run(run, prev[1] if prev else None)
    alerts = check_alerts(run, d.alerts) if run.get("ok") else []
    plain, doc, md = _texts(run, where, changes, prev[0] if prev else None, alerts)
    files, notes = _attachments(run_dir, run, d, warn)
    if notes:
        plain += "\n" + "\n".join(notes)
        doc = doc.replace("</body>", "".join(f"<p><small>{html.escape(n)}</small></p>" for n in notes) + "</body>")
    failed = [r["name"] for r in _failed(run)]
    subject = (f"crmlab reports {run_dir.name}: ✓ ok" + (f" · {len(alerts)} alert(s)" if alerts else "")
               if run.get("ok") else f"crmlab reports {run_dir.name}: ✗ FAILED {', '.join(failed)}")
    return Notice(bool(run.get("ok")), _clean(subject, run_dir, where), _clean(plain, run_dir, where),
                  _clean(doc, run_dir, where), _clean(md, run_dir, where), files, notes)


def deliver_run(run_dir: Path, d: Delivery, warn: Callable[[str], None] = lambda m: None) -> list[str]:
    """Send the notice of ``run_dir``: mail to the success (or failure) list, one message per
    webhook. Returns the problems, one line each (empty: all delivered); a problem with one
    channel does not stop the others."""
    n = build_notice(run_dir, d, warn)
    problems = []
    to = d.success if n.ok else d.failure
    if to and d.smtp is not None:
        try:
            send_mail(d.smtp, build_mail(d.smtp.sender, to, n.subject, n.text, n.html, n.attachments), to)
        except DeliveryError as e:
            problems.append(str(e))
    for hook in d.webhooks:
        try:
            post(hook, n.subject, n.markdown, n.text)
        except DeliveryError as e:
            problems.append(str(e))
    return problems


def deliver_not_run(d: Delivery, error: str) -> list[str]:
    """A run that stopped before any report ran (bad input: exit 2) tells the failure list and
    the robots its one line, local paths and phone-shaped strings removed. Returns the problems."""
    roots = [(os.path.expanduser("~"), "~"), (os.getcwd(), ".")]
    line = scrub_paths(" ".join(str(error).split()), roots)
    line = redact(line) if find_pii(line) else line
    subject = "crmlab reports: ✗ not run (bad input)"
    text = f"The scheduled reports did not run 报告未运行:\n  {line}\n"
    doc = (f"<!doctype html><html><head><meta charset='utf-8'></head><body><h1 style='font-size:20px'>"
           f"{html.escape(subject)}</h1><p>{html.escape(line)}</p></body></html>")
    problems = []
    if d.failure and d.smtp is not None:
        try:
            send_mail(d.smtp, build_mail(d.smtp.sender, d.failure, subject, text, doc), d.failure)
        except DeliveryError as e:
            problems.append(str(e))
    for hook in d.webhooks:
        try:
            post(hook, subject, f"### {subject}\n{line}", f"{subject}\n{line}")
        except DeliveryError as e:
            problems.append(str(e))
    return problems
