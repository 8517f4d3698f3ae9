"""The pages a reader sees: each generated HTML parsed (one shared run of every notebook on
the small sample, ``small_report`` in conftest.py), and the formatting every page uses.

A report opens with its title, the data period, KPI cards and the key findings before its
first chart; parameters, provenance and ledger sit at the end in a folded ``<details>``;
the header links to the index and the previous and next report, and every link resolves;
pages read on a phone (viewport); no absolute local path, no raw id of a top customer;
no ``None``/``nan`` on a page; percent axes never repeat a tick label.
"""
from __future__ import annotations

import json
import math
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from crmlab.present import formatting as fmt, ticks

REPO = Path(__file__).resolve().parent.parent
_DATA = re.compile(r"data:[a-z]+/[a-z0-9.+-]+;base64,[A-Za-z0-9+/=\s]+")


class _Page(HTMLParser):
    """Links, images, meta tags and the text of a page, in document order."""

    def __init__(self):
        super().__init__()
        self.events: list[tuple[str, dict]] = []
        self.text: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        self.events.append((tag, dict(attrs)))
        if tag in ("style", "script"):
            self._skip += 1

    def handle_endtag(self, tag):
        self.events.append(("/" + tag, {}))
        if tag in ("style", "script"):
            self._skip -= 1

    def handle_data(self, data):
        if not self._skip and data.strip():
            self.events.append(("#text", {"text": data}))
            self.text.append(data)


def _parse(path: Path) -> _Page:
    p = _Page()
    p.feed(_DATA.sub("data:", path.read_text(encoding="utf-8")))
    return p


def _reports(res):
    return [r.name for r in res.reports if r.status != "skipped"]


def _first(p: _Page, pred) -> int:
    return next((i for i, e in enumerate(p.events) if pred(e)), -1)


def _has_class(e, cls):
    return cls in (e[1].get("class") or "").split()


def test_findings_and_kpis_before_the_first_chart_and_the_appendix_folded_at_the_end(small_report):
    res, _ = small_report
    assert res.ok, [r.error for r in res.reports]
    for name in _reports(res):
        p = _parse(res.out / f"{name}.html")
        h1 = _first(p, lambda e: e[0] == "h1")
        period = _first(p, lambda e: _has_class(e, "crmlab-period"))
        cards = _first(p, lambda e: _has_class(e, "crmlab-kpis"))
        kf = _first(p, lambda e: e[0] == "#text" and "Key findings" in e[1]["text"])
        img = _first(p, lambda e: e[0] == "img")
        # the appendix (detail tables may fold in their own <details> above it)
        details = _first(p, lambda e: e[0] == "details" and _has_class(e, "crmlab-appendix"))
        # issue 26: the key chart may sit on the first screen, right below the cards, before the findings
        assert 0 <= h1 < period < cards < kf and cards < img, (name, h1, period, cards, kf, img)
        n_cards = sum(_has_class(e, "crmlab-kpi") for e in p.events)
        assert 3 <= n_cards <= 5, (name, n_cards)
        # the appendix: one <details> after the last chart, holding parameters, provenance, ledger
        last_img = max(i for i, e in enumerate(p.events) if e[0] == "img")
        assert details > last_img, name
        inside = " ".join(e[1]["text"] for e in p.events[details:] if e[0] == "#text")
        for word in ("Parameters", "Provenance", "Ledger"):
            assert word in inside, (name, word)
        before = " ".join(e[1]["text"] for e in p.events[:details] if e[0] == "#text")
        assert "Parameters 参数" not in before and "Ledger 数据台账" not in before, name
        assert not any(e[0] == "details" and "open" in e[1] for e in p.events), name  # folded


def test_every_page_links_to_the_index_and_its_neighbours_and_every_link_resolves(small_report):
    res, root = small_report
    names = [r.name for r in res.reports if (res.out / f"{r.name}.html").exists()]  # skipped pages too: they say why
    for i, name in enumerate(names):
        p = _parse(res.out / f"{name}.html")
        hrefs = [e[1].get("href") for e in p.events if e[0] == "a" and e[1].get("href")]
        assert "index.html" in hrefs, name
        prev = [e[1]["href"] for e in p.events if e[0] == "a" and e[1].get("rel") == "prev"]
        nxt = [e[1]["href"] for e in p.events if e[0] == "a" and e[1].get("rel") == "next"]
        # header and footer: the same links
        assert set(prev) == ({f"{names[i - 1]}.html"} if i > 0 else set()), name
        assert set(nxt) == ({f"{names[i + 1]}.html"} if i < len(names) - 1 else set()), name
    for page in [*res.out.glob("*.html"), root / "index.html"]:
        for e in _parse(page).events:
            href = e[1].get("href") if e[0] == "a" else None
            if not href or href.startswith(("#", "http://", "https://", "mailto:")):
                continue
            assert not href.startswith(("/", "file:")), (page.name, href)
            target = (page.parent / href.split("#")[0]).resolve()
            assert target.exists(), (page.name, href)
            # nothing points outside the shared run folder, except the list of runs into runs
            if page.parent == res.out:
                assert target.is_relative_to(res.out.resolve()), (page.name, href)


def test_index_describes_each_report_with_the_data_period(small_report):
    res, _ = small_report
    p = _parse(res.out / "index.html")
    text = " ".join(p.text)
    assert "Data 数据期间" in text and re.search(r"\d{4}-\d{2}-\d{2} → \d{4}-\d{2}-\d{2}", text)
    run = json.loads((res.out / "run.json").read_text(encoding="utf-8"))
    assert run["crmlab_run"] is True and run["period"]["first"] and run["period"]["last"]
    for r in run["reports"]:
        assert r["description"].endswith(".") and len(r["description"]) > 30, r["name"]
        assert r["description"] in text and r["title"] in text, r["name"]
    assert '<meta name="generator" content="crmlab">' in (res.out / "index.html").read_text(encoding="utf-8")


def test_every_page_has_a_viewport_one_stylesheet_and_no_absolute_path(small_report, small_store):
    res, root = small_report
    locals_ = {str(small_store), str(small_store.resolve()), str(root), str(root.resolve()), str(REPO),
               str(Path.home())}
    css = (REPO / "crmlab" / "report" / "templates" / "crmlab" / "crmlab.css").read_text(encoding="utf-8")
    marker = css.splitlines()[0]
    for page in [*res.out.glob("*.html"), root / "index.html"]:
        h = page.read_text(encoding="utf-8")
        metas = [e[1] for e in _parse(page).events if e[0] == "meta"]
        assert any(m.get("name") == "viewport" and m.get("content", "").startswith("width=device-width")
                   for m in metas), page.name
        assert marker in h and "jp-ThemeLight" not in h and h.count("<style") <= 2 + h.count("T_"), page.name
        assert not re.search(r'<script[^>]+src="https?://', h), page.name
        for local in locals_:
            assert local not in h, (page.name, local)
        assert not re.search(r"(?<![\w.])/(?:tmp|home|root|Users|srv|var)/", _DATA.sub("", h)), page.name


def test_no_raw_id_of_the_top_customers_in_any_page_or_executed_notebook(small_report):
    res, root = small_report
    lists = {"clv_customers.csv": "clv", "clv_wakeup.csv": "clv", "wakeup_list.csv": "sales", "magic_targets.csv": None}
    ids = set()
    assert (res.out / "clv_customers.csv").exists() and (res.out / "wakeup_list.csv").exists()
    for f, by in lists.items():
        if not (res.out / f).exists():  # magic_targets.csv: only when there is a magic number
            continue
        t = pd.read_csv(res.out / f, dtype={"customer_id": str})
        t = t.sort_values(by, ascending=False) if by else t
        top = t["customer_id"].head(30)
        assert top.str.fullmatch(r"C\d+").all(), f  # the lists for operations keep real ids
        ids |= set(top)
    assert len(ids) > 50
    pattern = re.compile(r"(?<![0-9A-Za-z])(" + "|".join(map(re.escape, sorted(ids))) + r")(?![0-9A-Za-z])")
    for f in [*res.out.glob("*.html"), *res.out.glob("*.ipynb"), root / "index.html"]:
        hits = pattern.findall(_DATA.sub("", f.read_text(encoding="utf-8")))
        assert not hits, (f.name, hits[:5])
    h = (res.out / "04_clv.html").read_text(encoding="utf-8")
    assert len(set(re.findall(r"\bc[0-9a-f]{10}\b", h))) >= 15  # the top customers are there, masked


def test_no_none_or_nan_and_thousands_separators_on_any_page(small_report):
    res, _ = small_report
    for name in _reports(res):
        p = _parse(res.out / f"{name}.html")
        cells = [e[1]["text"].strip() for e in p.events if e[0] == "#text"]
        bad = [c for c in cells if re.fullmatch(r"(None|nan|NaN|NaT|<NA>|inf|-inf)", c)]
        assert not bad, (name, bad[:5])
        # a count of thousands in a table cell carries a separator: no bare 12345
        bare = [c for c in cells if re.fullmatch(r"[−-]?\d{5,}", c)]
        assert not bare, (name, bare[:5])
        assert not [c for c in cells if re.search(r"\d\.\d+e[−-]\d+", c)], name  # no 6.5e-19


def _tables(path: Path) -> list[tuple[list[str], list[list[str]]]]:
    """Every table of a page as (header texts, rows of cell texts)."""
    import html as _html

    h = re.sub(r"<style.*?</style>", "", _DATA.sub("data:", path.read_text(encoding="utf-8")), flags=re.S)
    out = []
    for t in re.findall(r"<table.*?</table>", h, flags=re.S):
        rows = [[_html.unescape(re.sub(r"<.*?>", "", c)).strip() for c in re.findall(r"<t[hd]\b.*?</t[hd]>", r, re.S)]
                for r in re.findall(r"<tr.*?</tr>", t, flags=re.S)]
        if rows:
            out.append((rows[0], rows[1:]))
    return out


def test_03_plateau_differences_read_in_percentage_points(small_report):
    """Differences of rates (and their standard errors) in points: "+0.4 pp", never "0.38%"."""
    res, _ = small_report
    found = [(head, rows) for head, rows in _tables(res.out / "03_magic_number.html")
             if fmt.label("difference_between_rates") in head]
    assert found  # the small sample shows the pairwise test table (for the first flat-looking order count)
    for head, rows in found:
        d, se = head.index(fmt.label("difference_between_rates")), head.index(fmt.label("se"))
        assert rows and all(re.fullmatch(r"[+−]\d+\.\d pp", r[d]) for r in rows), [r[d] for r in rows]
        assert all(re.fullmatch(r"\d+\.\d pp", r[se]) for r in rows), [r[se] for r in rows]
        assert fmt.label("pooled_rate") not in head  # every pair against each other: no pooled rate
        assert all(r[head.index(fmt.label(c))].endswith("%") for r in rows for c in ("rate_i", "rate_j"))
    # the sensitivity tables' "why none" is not the wake-up list's "why on the list"
    assert fmt.label("reason") not in " ".join(" ".join(h) for h, _ in _tables(res.out / "03_magic_number.html"))


def test_one_wake_up_list_in_02_and_04_with_the_reason_per_row(small_report):
    res, _ = small_report
    w02 = pd.read_csv(res.out / "wakeup_list.csv", dtype={"customer_id": str}).set_index("customer_id")
    w04 = pd.read_csv(res.out / "clv_wakeup.csv", dtype={"customer_id": str}).set_index("customer_id")
    assert len(w02) > 20 and set(w02.index) == set(w04.index)  # the same customers
    assert (w02["M"] >= 4).all() and w02["sales"].is_monotonic_decreasing
    for w in (w02, w04):
        assert w["reason"].str.match(r"top (20|40)% by spend \(M=[45]\)").all()
    if w04["reason"].str.contains("own purchase gap").any():
        # the model finds no dropout (issue 24): 04 ranks by silence against each customer's own
        # rhythm (least silent first; one-time buyers, who have no rhythm, last) and labels nobody
        # "likely still a customer"
        rr = w04["rhythm_ratio"]
        assert rr.dropna().is_monotonic_increasing and rr.isna().sum() == rr.iloc[rr.notna().sum():].isna().sum()
        assert not w04["reason"].str.contains("likely").any()
    else:
        assert w04["clv"].fillna(-1).is_monotonic_decreasing  # 04: the same list by CLV
        alive = w04["p_alive"] > 0.5
        assert w04.loc[alive, "reason"].str.contains("likely still a customer").all()
        assert not w04.loc[~alive, "reason"].str.contains("likely").any()
    n = f"{len(w02):,}"
    for name in ("02_retention_repurchase", "04_clv"):
        page = " ".join(_parse(res.out / f"{name}.html").text)
        assert any(f in page for f in (f"{n} dormant", f"same {n} dormant", f"same {n} customers")), name  # one count
        tabs = [rows for head, rows in _tables(res.out / f"{name}.html") if fmt.label("reason") in head]
        assert tabs and all(re.fullmatch(r"c[0-9a-f]{10}", r[0]) for r in tabs[0]), name  # masked ids
    assert fmt.GLOSSARY["wake-up"][2] in " ".join(_parse(res.out / "04_clv.html").text)


# --------------------------------------------------------------------------- the formatter


@pytest.mark.parametrize("lo,hi", [(0, 0.021), (0.12, 0.23), (0, 1), (0, 0.0007), (-0.03, 0.05), (0.3, 0.62),
                                   (0.0049, 0.0051), (0.9, 1.0), (0, 0.0001)])
def test_percent_ticks_are_unique_exact_and_on_nice_steps(lo, hi):
    labels = ticks.percent_labels(lo, hi)
    assert len(labels) >= 2 and len(set(labels)) == len(labels), labels
    values = [float(x.rstrip("%").replace("−", "-").replace(",", "")) for x in labels]
    steps = np.diff(values)
    assert np.allclose(steps, steps[0]), labels  # even steps
    mant = steps[0] / 10 ** math.floor(math.log10(steps[0]))
    assert any(math.isclose(mant, m) for m in (1, 2, 2.5, 5)), labels
    assert len({len(x.split(".")[-1]) if "." in x else 0 for x in labels}) == 1  # one number of decimals


def test_percent_ticks_over_many_ranges_never_repeat():
    rng = np.random.default_rng(0)
    for _ in range(500):
        a, b = sorted(rng.uniform(-0.2, 1.2, 2) * 10 ** rng.uniform(-3, 0))
        if b - a < 1e-6:
            continue
        labels = ticks.percent_labels(a, b)
        assert len(set(labels)) == len(labels), (a, b, labels)


def test_fix_percent_axes_replaces_matplotlibs_percent_formatter_and_colour_bars():
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import PercentFormatter

    fig = Figure()
    ax = fig.subplots()
    ax.plot([0, 1], [0, 0.021])
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    im = ax.imshow(np.linspace(0, 0.021, 25).reshape(5, 5), extent=(0, 1, 0, 0.021), aspect="auto")
    cb = fig.colorbar(im, ax=ax, format=PercentFormatter(1.0, 0))
    assert ticks.fix_percent_axes(fig) == 2
    FigureCanvasAgg(fig).draw()
    for labels in ([t.get_text() for t in ax.get_yticklabels()], [t.get_text() for t in cb.ax.get_yticklabels()]):
        shown = [x for x in labels if x]
        assert len(shown) >= 3 and len(set(shown)) == len(shown), shown  # was "0%, 0%, 1%, 2%, 2%"


def test_numbers_read_as_a_reader_expects():
    assert fmt.integer(4000.0) == "4,000" and fmt.number(1234567.891, 2) == "1,234,567.89"
    assert fmt.number(-0.0001, 2) == "0.00" and fmt.integer(-1234) == "−1,234"
    assert fmt.pct(0.1234) == "12.3%" and fmt.pct(0.0007, None) == "0.07%" and fmt.pct(None) == "—"
    assert fmt.pp(0.018) == "+1.8 pp" and fmt.pp(-0.0151, 2) == "−1.51 pp"
    assert fmt.money(1234.5) == "¥1,234" or fmt.money(1234.5) == "¥1,235"
    assert fmt.money(-51.2) == "−¥51" and fmt.money(0.05, 2) == "¥0.05" and fmt.money(3, currency="£") == "£3"
    assert fmt.pvalue(6.5e-19) == "< 0.001" and fmt.pvalue(0.0) == "< 0.001" and fmt.pvalue(0.0321) == "0.032"
    assert fmt.pvalue(0.049) == "0.049" and fmt.pvalue(0.32) == "0.32" and fmt.pvalue(float("nan")) == "—"
    assert fmt.ratio(46.71) == "46.7×" and fmt.boolean(True) == "✓" and fmt.boolean(np.False_) == "✗"
    assert fmt.days(91.6) == "92 days" and fmt.change(188, 100) == "+88%" and fmt.change(1, 0) == "—"
    assert fmt.label("returning_sales_share").startswith("Returning sales") and fmt.label("some_new_col") == "Some new col"
    assert fmt.stage_name("dormant") == "休眠 dormant"
    for x in (None, float("nan"), pd.NA, pd.NaT, np.nan, float("inf")):
        assert fmt.auto("x", x) == "—"


def test_currency_follows_the_run(monkeypatch):
    monkeypatch.setattr(fmt, "_CURRENCY", [None])
    monkeypatch.setenv(fmt.CURRENCY_ENV, "£")
    assert fmt.money(12) == "£12"
    assert fmt.set_currency("$") == "$" and fmt.money(12) == "$12"


def test_03_says_the_magic_number_in_the_same_words_as_its_card_and_the_index(small_report, small_store):
    """The page's first finding is the result's card line (``MagicNumber.headline()``) word for word, and
    the index's headline is its first words ("none", or "3 — indicated" for "Magic number 3 — indicated: ...")."""
    import crmlab

    res, root = small_report
    orders, _ = crmlab.load(small_store / "orders.csv")
    magic = crmlab.magic_number(crmlab.repurchase_curve(orders))
    text = re.sub(r"\s+", " ", " ".join(_parse(res.out / "03_magic_number.html").text))
    assert re.sub(r"\s+", " ", magic.headline()) in text
    head = json.loads((res.out / "03_magic_number.headlines.json").read_text(encoding="utf-8"))["magic number"]
    if magic.magic_number is None:
        assert head == "none" and magic.headline().startswith("No magic number")
    else:
        assert magic.headline().startswith(f"Magic number {head}:")
    assert head in (root / "index.html").read_text(encoding="utf-8") or head in (res.out / "index.html").read_text(
        encoding="utf-8")
