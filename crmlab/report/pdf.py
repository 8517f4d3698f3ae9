"""Reports as PDF with headless Chromium's print-to-PDF.

Why Chromium and not WeasyPrint: the pages are the same HTML the reader opens, with the CJK
subset font already embedded (:func:`crmlab.report.html.embed_cjk_font`); Chromium draws them
exactly as a browser does (charts are PNG data URIs, tables scroll), needs no Python
dependency and no system Pango/cairo, and is what a server running the weekly job usually
has. When no Chromium is found (``$CRMLAB_CHROMIUM``, ``chromium``, ``chromium-browser``,
``google-chrome``), :func:`chromium_path` is None and callers fall back to HTML with a warning.

Each report is printed from a copy of its page with print rules added: A4, each report
section (``h2``) on a new page, wide tables wrapped rather than cut, the appendix (a closed
``<details>`` on screen) printed open.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

__all__ = ["chromium_path", "html_to_pdf", "PRINT_CSS", "PdfError"]

#: the print rules added to each page before printing
PRINT_CSS = ("<style>@page{size:A4;margin:14mm 12mm;}@media print{h2{break-before:page;}"
             "h1+h2,header+main h2:first-child{break-before:avoid;}table{font-size:9pt;}"
             ".crmlab-scroll{overflow:visible!important;}img{max-width:100%;break-inside:avoid;}"
             "nav,footer{display:none;}}</style>")


class PdfError(Exception):
    """A page could not be printed (one line)."""


def chromium_path() -> str | None:
    """The Chromium to print with, or None."""
    env = os.environ.get("CRMLAB_CHROMIUM")
    if env:
        return env if os.access(env, os.X_OK) else None
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        p = shutil.which(name)
        if p:
            return p
    return None


def html_to_pdf(html_file: Path, pdf_file: Path, chromium: str | None = None, timeout: float = 120.0) -> Path:
    """Print ``html_file`` to ``pdf_file`` with headless Chromium (no network: the pages are self-contained).

    Raises
    ------
    PdfError
        No Chromium, or it failed or timed out.
    """
    exe = chromium or chromium_path()
    if not exe:
        raise PdfError("no Chromium found (install chromium or set CRMLAB_CHROMIUM): PDFs not made")
    text = Path(html_file).read_text(encoding="utf-8")
    text = text.replace("</head>", PRINT_CSS + "</head>", 1) if "</head>" in text else PRINT_CSS + text
    text = re.sub(r"<details(?![^>]*\bopen\b)", "<details open", text)  # paper cannot be clicked open
    with tempfile.TemporaryDirectory(prefix="crmlab-pdf-") as tmp:
        src = Path(tmp) / "page.html"
        src.write_text(text, encoding="utf-8")
        out = Path(tmp) / "page.pdf"
        cmd = [exe, "--headless", "--disable-gpu", "--no-sandbox", "--no-first-run", "--disable-extensions",
               "--no-pdf-header-footer", "--print-to-pdf-no-header", f"--user-data-dir={tmp}/profile",
               # wait for the embedded font: printed at once, text still waiting for it is left blank
               "--virtual-time-budget=10000",
               f"--print-to-pdf={out}", src.as_uri()]
        try:
            p = subprocess.run(cmd, capture_output=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            raise PdfError(f"{Path(html_file).name}: Chromium did not finish within {timeout:g} s") from None
        except OSError as e:
            raise PdfError(f"{Path(html_file).name}: cannot start Chromium ({e.strerror or e})") from None
        if not out.exists() or out.stat().st_size == 0:
            last = (p.stderr.decode("utf-8", "replace").strip().splitlines() or ["no output"])[-1]
            raise PdfError(f"{Path(html_file).name}: Chromium made no PDF ({last[:160]})")
        Path(pdf_file).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(out, pdf_file)
    return Path(pdf_file)
