"""Pages 05, 04 and 01 read decision first (issue 26): a verdict banner right under the title,
05's one results table with the next steps beside it and consistent with it, 04 without a
chart drawn twice or a warning repeated, 01's year in one line.

Expected values are written from the definitions, not from a run:

* two arms of 1,000 customers, every buyer spends 100, 0.05 per message, margin 0.3: A with 80
  buyers against a holdout with 50 earns 0.3 × 100 × 0.03 − 0.05 = 0.85 per message, £850 per
  1,000, its 95% interval 850 ± 1,000 · 1.96 · 0.3 · sqrt(s_a²/n + s_c²/n) (sample variances
  100² p (1 − p) n / (n − 1)) = [£203, £1,497]: ship A;
* A with 50 buyers against 50 earns −£50 per 1,000 with the interval ±£573: it includes zero,
  no winner; at 2 per message −£2,000 [−£2,573, −£1,427]: do not send;
* 1,000 messaged against 700 held out with an equal split planned fails the sample ratio check
  (chi-square 52.9): keep running.

The page checks read the shared sample run (``small_report``); the rest builds small
experiments and renders the blocks directly.
"""
from __future__ import annotations

import json
import math
import re
from html.parser import HTMLParser

import pandas as pd
import pytest
from scipy import stats

from crmlab.analyses.overview import year_verdict
from crmlab.experiments.readout import analyse_experiment
from crmlab.experiments.summary import banner, next_steps, results_rows, status, why_findings
from crmlab.ingest.readers import load_orders, load_sends
from crmlab.report import blocks
from crmlab.settings import Settings, use

_DATA = re.compile(r"data:[a-z]+/[a-z0-9.+-]+;base64,[A-Za-z0-9+/=\s]+")


# ----------------------------------------------------------------------------- experiments

def _experiment(a_buyers: int, c_buyers: int, n_a: int = 1000, n_c: int = 1000, price: float = 0.05):
    use(Settings(currency="£"))
    rows = ([("holdout", f"h{i}", i < c_buyers, "false") for i in range(n_c)]
            + [("A", f"a{i}", i < a_buyers, "true") for i in range(n_a)])
    sends = pd.DataFrame({"customer_id": [r[1] for r in rows], "campaign_id": "x", "variant": [r[0] for r in rows],
                          "send_time": "2025-03-01 10:00:00", "delivered": [r[3] for r in rows]})
    buyers = [r[1] for r in rows if r[2]]
    orders = pd.DataFrame({"customer_id": buyers, "order_id": [f"o{i}" for i in range(len(buyers))],
                           "order_time": "2025-03-02 10:00:00", "amount": 100.0})
    o, _ = load_orders(orders, observation_end="2025-04-01")
    s, _ = load_sends(sends)
    return analyse_experiment(s, o, cuped_days=0, price_per_message=price)


def _profit_ci(pa: float, pc: float, n: int = 1000, margin: float = 0.3, price: float = 0.05) -> tuple:
    """Per 1,000 messages: the profit and its 95% Wald interval, from the definition."""
    est = margin * 100 * (pa - pc) - price
    var = sum(100 ** 2 * p * (1 - p) * n / (n - 1) / n for p in (pa, pc))
    half = stats.norm.isf(0.025) * margin * math.sqrt(var)
    return 1000 * est, 1000 * (est - half), 1000 * (est + half)


def _sends_an_arm(steps: list[str]) -> bool:
    return any(s.startswith(("Send ", "Use copy ")) for s in steps)


def test_a_winner_is_shipped_with_one_profit_figure():
    r = _experiment(80, 50)
    est, lo, hi = _profit_ci(0.08, 0.05)
    assert (round(est), round(lo), round(hi)) == (850, 203, 1497)
    assert status(r) == "ship"
    text, tone = banner(r)
    assert tone == "good" and text.startswith("**Ship A:**")
    assert "+£850 incremental profit per 1,000 messages (95% CI £203 to £1,497)" in text
    assert len(re.findall(r"£[\d,]+", text)) == 3  # the figure and its interval, nothing else
    rows = results_rows(r)
    assert rows["highlight"] == ["A"] and rows["index"] == ["A", "holdout"]
    html = blocks.results_table_html(**rows)
    chosen = re.search(r'<tr class="crmlab-chosen">(.*?)</tr>', html).group(1)
    assert "£850 [£203, £1,497]" in chosen and "+3.00 [" in chosen
    assert html.count('class="crmlab-chosen"') == 1
    steps = next_steps(r, unresponsive=3)
    assert "Send A." in steps and steps[-1].startswith("Keep a no-message holdout")
    assert any(s.startswith("Leave out the 3 customers") for s in steps)
    assert why_findings(r)[0] == "**Why:** A is the only messaged arm."


def test_no_winner_keeps_running_and_ships_no_arm():
    r = _experiment(50, 50)
    est, lo, hi = _profit_ci(0.05, 0.05)
    assert round(est) == -50 and lo < 0 < hi
    assert status(r) == "no winner"
    text, tone = banner(r)
    assert tone == "wait" and text.startswith("**No winner — keep running:**") and "includes zero" in text
    steps = next_steps(r, unresponsive=0)
    assert steps[0].startswith("Keep running") and not _sends_an_arm(steps)
    assert any(s.startswith("Nobody to leave out yet") for s in steps)
    assert results_rows(r)["highlight"] == []
    assert "★" not in blocks.results_table_html(**results_rows(r))


def test_a_losing_campaign_is_not_sent():
    r = _experiment(50, 50, price=2.0)
    est, lo, hi = _profit_ci(0.05, 0.05, price=2.0)
    assert hi < 0 and status(r) == "do not send"
    text, tone = banner(r)
    assert tone == "bad" and text.startswith("**Do not send:**") and f"−£{-est:,.0f}" in text
    assert not _sends_an_arm(next_steps(r))


def test_a_blocker_says_keep_running_and_names_no_arm():
    r = _experiment(80, 35, n_c=700)
    chi2 = (1000 - 850) ** 2 / 850 + (700 - 850) ** 2 / 850
    assert chi2 == pytest.approx(52.94, abs=0.01) and not r.srm["ok"]
    assert status(r) == "keep running"
    text, tone = banner(r)
    assert tone == "wait" and "sample ratio" in text and "A" not in text.split(":**")[0]
    steps = next_steps(r, unresponsive=0)
    assert steps[0].startswith("Fix what blocks a verdict first") and not _sends_an_arm(steps)


def test_no_verdict_says_why_once_and_ships_nothing():
    # 3 of 40 against 1 of 40: pooled rate 5%, 2 expected buyers per group, under Cochran's 5
    r = _experiment(3, 1, n_a=40, n_c=40)
    assert status(r) == "no verdict" and r.no_verdict_reason.startswith("too few conversions")
    text, tone = banner(r)
    assert tone == "bad" and text.startswith("**No verdict:**") and "Nothing to ship" in text
    steps = next_steps(r, unresponsive=0)
    assert not _sends_an_arm(steps) and not any(s.startswith("No verdict") for s in steps)
    assert steps[-1].startswith("Keep a no-message holdout") and results_rows(r)["highlight"] == []


# ----------------------------------------------------------------------------- blocks

def test_interval_bars_sit_on_a_shared_scale():
    bar = blocks.interval_bar_html(10.0, 5.0, 20.0, (-10.0, 30.0), "lift: +10 [5, 20]")
    # scale 40 wide: zero at 10/40, the interval from 15/40 to 30/40, the estimate at 20/40
    assert 'left:25.0%"' in bar and "left:37.5%;width:37.5%" in bar and 'crmlab-ibar-est" style="left:50.0%' in bar
    assert "crmlab-ibar-up" in bar and 'role="img"' in bar and 'aria-label="lift: +10 [5, 20]"' in bar
    assert "crmlab-ibar-flat" in blocks.interval_bar_html(1.0, -1.0, 3.0, (-1.0, 3.0), "x")
    assert "crmlab-ibar-down" in blocks.interval_bar_html(-2.0, -3.0, -1.0, (-3.0, 0.0), "x")
    assert blocks.interval_bar_html(float("nan"), 0, 1, (0, 1), "x") == ""


def test_results_table_escapes_every_value_and_runs_no_script():
    bad = '<img src=x onerror="alert(1)">'
    html = blocks.results_table_html(
        {"n": pd.Series({bad: "1,000", "b": "2"}),
         "lift": (pd.Series({bad: 0.02, "b": -0.01}), pd.Series({bad: 0.01, "b": -0.02}), pd.Series({bad: 0.03, "b": 0.0}),
                  lambda v: f"{100 * v:+.1f}")},
        [bad, "b"], highlight=[bad], caption=bad, notes={"b": bad})
    assert "<img" not in html and "<script" not in html.lower() and "onerror=" not in html.replace("onerror=&quot;", "")
    assert html.count("&lt;img") == 3 and "★ &lt;img" in html
    assert "+2.0 [+1.0, +3.0]" in html and html.count("crmlab-ibar-est") == 2
    side = blocks.beside_html(html, "What to do next", ["<b>x</b>"], "good")
    assert "&lt;b&gt;x&lt;/b&gt;" in side and "crmlab-steps-good" in side


def test_warnings_share_one_box_and_repeat_none():
    box = blocks.warnings_html(["Model X does not fit", "no model tracks the total", "Model X does not fit", " "])
    assert box.count("<div") == 1 and box.count("Model X does not fit") == 1
    assert box.count("<li>") == 1 and blocks.warnings_html([]) == ""
    titled = blocks.warnings_html(["a", "b"], title="The chosen model does not fit")
    assert titled.count("<li>") == 2 and "⚠ The chosen model does not fit" in titled


def test_the_year_verdict_compares_only_covered_years():
    this, prev = {"sales": 1_500_000.0, "returning": 0.6}, {"sales": 1_200_000.0, "returning": 0.5}
    use(Settings(currency="£"))
    text, tone = year_verdict("2025", this, prev, 2024)
    assert (text, tone) == ("**2025: net sales £1,500,000, +25% vs 2024**; returning buyers brought 60.0% of sales, "
                            "+10.0 pp vs 2024.", "good")
    text, tone = year_verdict("2025 Jan–Jun", {"sales": 900.0, "returning": 0.4}, {"sales": 1000.0, "returning": 0.1},
                              2024, prev_lead_in=True, same_months=True)
    assert tone == "bad" and "−10% vs 2024 (same months)" in text and "2024 is history only: not compared" in text
    assert "pp" not in text
    text, tone = year_verdict("2025", this, None, 2024)
    assert tone == "neutral" and "vs" not in text and "no earlier year" in text


# ----------------------------------------------------------------------------- the pages

class _Events(HTMLParser):
    def __init__(self):
        super().__init__()
        self.events: list[tuple[str, dict]] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        self.events.append((tag, dict(attrs)))
        self._skip += tag in ("style", "script")

    def handle_endtag(self, tag):
        self.events.append(("/" + tag, {}))
        self._skip -= tag in ("style", "script")

    def handle_data(self, data):
        if not self._skip and data.strip():
            self.events.append(("#text", {"text": data.strip()}))


def _page(res, name: str) -> tuple[list, str]:
    raw = _DATA.sub("data:", (res.out / f"{name}.html").read_text(encoding="utf-8"))
    p = _Events()
    p.feed(raw)
    return p.events, raw


def _cls(e, c: str) -> bool:
    return c in (e[1].get("class") or "").split()


def _first(events, pred) -> int:
    return next(i for i, e in enumerate(events) if pred(e))


def _text(events) -> str:
    return " ".join(e[1]["text"] for e in events if e[0] == "#text")


@pytest.mark.parametrize("name", ["01_store_overview", "04_clv", "05_sms_ab_test"])
def test_the_verdict_banner_comes_right_after_the_title(small_report, name):
    res, _ = small_report
    events, _ = _page(res, name)
    h1, period = _first(events, lambda e: e[0] == "h1"), _first(events, lambda e: _cls(e, "crmlab-period"))
    banner_at = _first(events, lambda e: _cls(e, "crmlab-verdict"))
    between = events[period:banner_at]
    assert h1 < period < banner_at
    assert [e[1]["text"] for e in between if e[0] == "#text"] == [events[period + 1][1]["text"]]  # the period only
    assert not any(e[0] in ("img", "table", "h2", "picture") for e in between), name
    assert sum(_cls(e, "crmlab-verdict") for e in events) == 1
    assert banner_at < _first(events, lambda e: _cls(e, "crmlab-kpis"))


def test_05_has_one_results_table_one_profit_figure_and_consistent_next_steps(small_report):
    res, _ = small_report
    events, raw = _page(res, "05_sms_ab_test")
    heads = json.loads((res.out / "05_sms_ab_test.headlines.json").read_text(encoding="utf-8"))
    decision = heads["decision 决策"]["value"]
    fold = _first(events, lambda e: e[0] == "#text" and e[1]["text"].startswith("Key findings"))
    above = events[:fold]
    assert sum(e[0] == "table" and _cls(e, "crmlab-results") for e in events) == 1
    assert sum(e[0] == "table" for e in above) == 1  # the results table is the only table above the fold
    aside = _first(events, lambda e: e[0] == "aside")
    steps = [e[1]["text"] for e in events[aside:_first(events, lambda e: e[0] == "/aside")] if e[0] == "#text"][1:]
    assert _first(events, lambda e: _cls(e, "crmlab-results")) < aside < fold  # beside the table, above the fold
    assert "What to do next" not in _text(events[fold:])  # said once
    if decision.startswith("ship "):
        arm = decision[5:]
        figure = heads["incremental profit per 1,000 messages"]["value"].lstrip("+")
        # the chosen arm's profit: in the banner, the card and its row — one figure, the decision's
        chosen = re.search(r'<tr class="crmlab-chosen">(.*?)</tr>', raw, re.S).group(1)
        assert f"★ {arm}" in chosen and re.search(r'data-label="incremental profit[^"]*">' + re.escape(figure), chosen)
        profit_claims = re.findall(r"([+−]?¥[\d,]+) incremental profit per 1,000 messages", _text(above))
        assert {x.lstrip("+") for x in profit_claims} == {figure}
        assert any(s.startswith(f"Send {arm}") for s in steps)
    else:
        assert not _sends_an_arm(steps) and "★" not in _text(above)
    text = _text(events)
    assert "Incremental roi" not in text and "Incremental profit 增量利润" not in text
    assert not re.search(r"\bp = <", text)


def test_04_draws_each_chart_once_and_warns_once(small_report):
    res, _ = small_report
    events, _ = _page(res, "04_clv")
    alts = [e[1].get("alt") for e in events if e[0] == "img"]
    assert len(alts) == len(set(alts)) and "Chart" not in alts, alts
    assert sum(_cls(e, "crmlab-warning") for e in events) <= 1
    findings = _first(events, lambda e: e[0] == "#text" and e[1]["text"].startswith("Key findings"))
    assert "⚠" not in _text(events[findings:])  # every warning is in the one box above
    text = _text(events)
    assert not re.search(r"\bp = <", text) and "Recency 最近" not in text
    assert "days from first to last purchase" in text and "recency (last purchase, days after the first)" in " ".join(
        a for a in alts if a)


def test_01_banner_states_the_years_net_sales_as_the_card_does(small_report):
    res, _ = small_report
    events, _ = _page(res, "01_store_overview")
    heads = json.loads((res.out / "01_store_overview.headlines.json").read_text(encoding="utf-8"))
    sales_label = next(k for k in heads if k.startswith("paid sales "))
    card = heads[sales_label]
    at = _first(events, lambda e: _cls(e, "crmlab-verdict"))
    banner_text = _text(events[at:_first(events[at:], lambda e: e[0] == "/p") + at])
    assert f"{sales_label[len('paid sales '):]}: net sales {card['value']}" in banner_text
    if card.get("compare"):
        assert card["compare"] in banner_text
