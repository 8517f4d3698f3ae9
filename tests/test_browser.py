"""Every page of the shared sample run, read as its reader reads it: in Chromium (Debian's
``chromium``, driven by Playwright with ``executable_path``, no browser download) at 1280×800 and
390×844 (``crmlab.report.browser``).

Asserted on every page and width: no horizontal overflow of the page body, every chart has a
real text alternative, not one network request, no text under 11 px; the index's headline
numbers appear on their pages; and the first chart starts within the first screen.
Skipped, saying why, when the machine has no Chromium or Playwright (``.ci/run`` installs
Chromium when it can).
"""
from __future__ import annotations

import json

import pytest

from crmlab.report import browser

pytestmark = [pytest.mark.skipif(browser.find_chromium() is None, reason="no Chromium on this machine"),
              pytest.mark.slow]
pytest.importorskip("playwright.sync_api", reason="Playwright's Python package is not installed")

#: pages whose first chart does not yet start on the first screen (issue 26): the test records
#: where it starts and fails when one of them gets there, so the list only shrinks; empty since
#: every report shows its key chart under its cards
FIRST_CHART_LATER: set[tuple[str, int]] = set()


@pytest.fixture(scope="module")
def measured(small_report):
    res, _ = small_report
    assert res.ok, [r.error for r in res.reports]
    return res, browser.measure_pages(res.out)


def test_every_page_fits_the_screen_has_alt_text_and_loads_nothing_from_the_network(measured):
    res, rows = measured
    pages = {r["page"] for r in rows}
    assert {"index", *(r.name for r in res.reports)} <= pages
    assert {r["width"] for r in rows} == {1280, 390}
    for r in rows:
        where = f"{r['page']} at {r['width']} px"
        assert r["overflow_px"] == 0, f"{where}: the page body is {r['overflow_px']} px wider than the screen"
        assert r["images_without_alt"] == 0, f"{where}: {r['images_without_alt']} chart(s) without a text alternative"
        assert r["requests"] == [], f"{where}: network requests {r['requests'][:3]}"
        assert r["small_text"] == 0, f"{where}: {r['small_text']} text element(s) under {browser.MIN_TEXT_PX} px"


def test_the_first_chart_starts_on_the_first_screen(measured):
    _, rows = measured
    later = []
    for r in rows:
        key, top = (r["page"], r["width"]), r["first_chart_screens"]
        if r["page"] == "index" or top is None:
            continue
        if key in FIRST_CHART_LATER:
            assert top >= 1.0, f"{key} now shows its first chart at {top} screens: take it off FIRST_CHART_LATER"
            later.append(f"{key[0]}@{key[1]}: {top}")
        else:
            assert top < 1.0, f"{key}: the first chart starts {top} screens down"
    print("first chart later than the first screen (issue 26):", "; ".join(later))


def test_the_index_headline_numbers_appear_on_their_pages(measured):
    res, _ = measured
    run = json.loads((res.out / "run.json").read_text())
    checked = 0
    for rep in run["reports"]:
        if rep.get("status") != "ok":
            continue
        text = (res.out / f"{rep['name']}.html").read_text(encoding="utf-8")
        for label, head in (rep.get("headlines") or {}).items():
            value = head["value"] if isinstance(head, dict) else head
            assert str(value) in text, f"{rep['name']}: the index says {label} = {value}, the page does not"
            checked += 1
    assert checked >= 10
