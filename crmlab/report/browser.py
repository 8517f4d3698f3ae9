"""Every page of a run as its reader sees it: the system Chromium, driven by Playwright.

Readers open the shared HTML on a laptop and, more often, on a phone. This module looks at the
pages the same way — Debian's ``chromium`` (or any Chromium named by ``CRMLAB_CHROMIUM``)
driven by Playwright's Python package with ``executable_path``, so no browser is downloaded
— at 1280×800 (desktop) and 390×844 (phone):

* :func:`measure_pages`: per page and width, where the first chart starts (in screens), the
  page's length, horizontal overflow of the page body, images without a real text
  alternative, text smaller than 11 px, and every network request (a shared page needs none);
* :func:`screenshot_pages`: whole-page PNGs (``make screenshots``), not cut at a fixed height.

``python -m crmlab.report.browser screenshots RUN`` and ``… measure RUN`` run them.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Iterator, Sequence

__all__ = ["VIEWPORTS", "find_chromium", "measure_pages", "screenshot_pages", "pages_of"]

#: (width, height) in CSS pixels: a laptop and a phone (iPhone 12–14)
VIEWPORTS: tuple[tuple[int, int], ...] = ((1280, 800), (390, 844))
#: the smallest readable text on a phone (CSS px)
MIN_TEXT_PX = 11

_MEASURE = """(minPx) => {
  const imgs = [...document.querySelectorAll('main img')];
  const top = imgs.length ? imgs[0].getBoundingClientRect().top + window.scrollY : null;
  const badAlt = imgs.filter(i => !i.alt || !i.alt.trim() || /No description/i.test(i.alt)).length;
  let small = 0;
  for (const el of document.querySelectorAll('main p, main li, main td, main th, main div, main span')) {
    const own = [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
    if (own && parseFloat(getComputedStyle(el).fontSize) < minPx && el.offsetParent !== null) small++;
  }
  return {top, height: document.documentElement.scrollHeight, images: imgs.length, badAlt, small,
          overflow: Math.max(0, document.documentElement.scrollWidth - window.innerWidth)};
}"""


def find_chromium() -> str | None:
    """The Chromium to drive: ``CRMLAB_CHROMIUM``, else ``chromium`` / ``chromium-browser`` /
    ``google-chrome`` on the PATH; None when there is none."""
    named = os.environ.get("CRMLAB_CHROMIUM")
    if named:
        return named if Path(named).exists() else None
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def pages_of(run: str | Path) -> list[Path]:
    """The HTML pages of a run folder: each report and ``index.html``."""
    return sorted(Path(run).glob("*.html"))


def _browser(playwright, chromium: str | None):
    exe = chromium or find_chromium()
    if exe is None:
        raise RuntimeError("no Chromium found: apt-get install chromium (or set CRMLAB_CHROMIUM)")
    return playwright.chromium.launch(executable_path=exe, args=["--no-sandbox", "--disable-gpu"])


def _visits(run: str | Path, viewports: Sequence[tuple[int, int]], chromium: str | None) -> Iterator:
    """(page path, width, height, Playwright page, requests seen) for each page and viewport."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = _browser(p, chromium)
        try:
            for width, height in viewports:
                ctx = browser.new_context(viewport={"width": width, "height": height})
                for path in pages_of(run):
                    page, requests = ctx.new_page(), []
                    page.on("request", lambda r, seen=requests: seen.append(r.url)
                            if not r.url.startswith(("file:", "data:")) else None)
                    page.goto(path.as_uri(), wait_until="load")
                    yield path, width, height, page, requests
                    page.close()
                ctx.close()
        finally:
            browser.close()


def measure_pages(run: str | Path, viewports: Sequence[tuple[int, int]] = VIEWPORTS,
                  chromium: str | None = None) -> list[dict]:
    """Measure every page of ``run`` at each viewport.

    Returns
    -------
    list of dict
        One per page and width: ``page``, ``width``, ``first_chart_screens`` (the first
        chart's top in screen heights; None without a chart), ``length_screens``,
        ``overflow_px`` (page body wider than the screen), ``images``, ``images_without_alt``,
        ``small_text`` (elements with text under :data:`MIN_TEXT_PX`), ``requests`` (URLs
        other than ``file:`` and ``data:``).
    """
    rows = []
    for path, width, height, page, requests in _visits(run, viewports, chromium):
        m = page.evaluate(_MEASURE, MIN_TEXT_PX)
        rows.append({"page": path.stem, "width": width,
                     "first_chart_screens": None if m["top"] is None else round(m["top"] / height, 2),
                     "length_screens": round(m["height"] / height, 1), "overflow_px": m["overflow"],
                     "images": m["images"], "images_without_alt": m["badAlt"], "small_text": m["small"],
                     "requests": list(requests)})
    return rows


def screenshot_pages(run: str | Path, out: str | Path | None = None, full_page: bool = True,
                     viewports: Sequence[tuple[int, int]] = VIEWPORTS, chromium: str | None = None) -> list[Path]:
    """Whole-page PNGs of every page at each width into ``out`` (default ``RUN/screenshots``),
    named ``PAGE-WIDTH.png``; with ``full_page=False`` the first screen only
    (``PAGE-WIDTH-first.png``). Returns the files written."""
    out = Path(out) if out else Path(run) / "screenshots"
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for path, width, _, page, _ in _visits(run, viewports, chromium):
        target = out / f"{path.stem}-{width}{'' if full_page else '-first'}.png"
        page.screenshot(path=str(target), full_page=full_page)
        written.append(target)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m crmlab.report.browser screenshots|first-screens|measure RUN [OUT]``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) < 2 or argv[0] not in ("screenshots", "first-screens", "measure"):
        print("usage: python -m crmlab.report.browser screenshots|first-screens|measure RUN [OUT]", file=sys.stderr)
        return 2
    what, run = argv[0], argv[1]
    if not (Path(run) / "run.json").is_file():
        print(f"crmlab: error: {run} is not a crmlab run (no run.json)", file=sys.stderr)
        return 2
    if find_chromium() is None:
        print("crmlab: no Chromium found (apt-get install chromium); nothing done", file=sys.stderr)
        return 0
    if what == "measure":
        for row in measure_pages(run):
            print(json.dumps(row, ensure_ascii=False))
        return 0
    for f in screenshot_pages(run, argv[2] if len(argv) > 2 else None, full_page=what == "screenshots"):
        print(f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
