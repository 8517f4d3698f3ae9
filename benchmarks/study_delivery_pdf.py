"""Study (issue 29): every report of a run as a PDF, with its Chinese intact.

For each page of a run (``index.html`` and each report), print it with
:func:`crmlab.report.pdf.html_to_pdf` and check with pypdf that every Chinese character a
reader sees in the page's text is in the PDF's extractable text, that no replacement or box
character appears, and that every font carries its glyphs. Prints one row per page.

Usage::

    crmlab sample --out data/sample
    crmlab report --orders data/sample/orders.csv --sends data/sample/sends.csv --out reports/sample
    python benchmarks/study_delivery_pdf.py reports/sample
"""
from __future__ import annotations

import re
import sys
import tempfile
import time
from pathlib import Path

import pypdf

from crmlab.report.pdf import chromium_path, html_to_pdf


def visible_cjk(page: str) -> set[str]:
    """Chinese characters in a page's text (not its styles, links bar or images)."""
    for tag in ("style", "script", "title", "header", "footer", "nav"):
        page = re.sub(rf"<{tag}\b.*?</{tag}>", " ", page, flags=re.S)
    return {c for c in re.sub(r"<[^>]+>", " ", page) if "\u4e00" <= c <= "\u9fff"}


def fonts_embedded(reader: pypdf.PdfReader) -> bool:
    """Every font carries its glyphs: a font file, or a Type3 font's own glyph procedures."""
    for p in reader.pages:
        for f in (p["/Resources"].get("/Font") or {}).values():
            f = f.get_object()
            if f.get("/Subtype") == "/Type3":
                if "/CharProcs" not in f:
                    return False
                continue
            desc = (f["/DescendantFonts"][0].get_object() if "/DescendantFonts" in f else f).get("/FontDescriptor")
            if desc is None or not any(k in desc.get_object() for k in ("/FontFile", "/FontFile2", "/FontFile3")):
                return False
    return True


def main(run: str) -> int:
    if chromium_path() is None:
        print("no Chromium: nothing to study")
        return 1
    run_dir = Path(run)
    print(f"{'page':<28}{'pages':>6}{'s':>6}{'CJK':>6}{'missing':>9}{'boxes':>7}  fonts embedded")
    bad = 0
    with tempfile.TemporaryDirectory() as tmp:
        for html in sorted(run_dir.glob("*.html")):
            t0 = time.time()
            pdf = html_to_pdf(html, Path(tmp) / f"{html.stem}.pdf")
            secs = time.time() - t0
            reader = pypdf.PdfReader(pdf)
            text = "".join(p.extract_text() for p in reader.pages)
            want = visible_cjk(html.read_text(encoding="utf-8"))
            missing = want - set(text)
            boxes = len(re.findall("[\ufffd\u25a1]", text))
            emb = fonts_embedded(reader)
            bad += bool(missing or boxes or not emb)
            print(f"{html.stem:<28}{len(reader.pages):>6}{secs:>6.1f}{len(want):>6}{len(missing):>9}{boxes:>7}  {emb}"
                  + (f"  missing: {''.join(sorted(missing))}" if missing else ""))
    print(f"pages with a problem: {bad}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "reports/latest"))
