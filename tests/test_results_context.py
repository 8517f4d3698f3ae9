"""Results carry their context: a £ store in London shows £ and Europe/London, never ¥ or
Asia/Shanghai, in every text its results show (issue 23: one presentation path).

The store is the promotion's hand fixture (tests/test_promotion.py); the expected texts are
written from the definitions:

* retention: 6 new buyers (a–f), none with a paid order exactly 30 days after the first:
  day-30 retention 0.0% of 6;
* promotion D = 2025-11-11 with growth new +10%, old +20%: D's paid sales a 50 + c 60 = 110;
  last year's D b 80 (new) -> target 80 × 1.1 = 88 (125%); the period 09-01…11-14 this
  year a 100 + 50, b 30 + 20, c 60, d 40, e 90, f 35 = 425; last year b 80 (new) and e 25
  (old) -> target 88 + 25 × 1.2 = 118 (425 / 118 = 360%).
"""
from __future__ import annotations

import dataclasses
import html
import json

import pandas as pd
import pytest

from crmlab.analyses.magic import magic_number, repurchase_curve
from crmlab.analyses.retention import retention_table
from crmlab.engine.sources import order_table
from crmlab.ingest.readers import load_orders
from crmlab.promotion.plan import analyse_promotion, promotion_daily
from crmlab.promotion.season import DEFAULT_PHASES, PHASE_LABELS, attainment_style, season_figure
from crmlab.settings import Settings

ROWS = [
    ("a", "2025-09-05 10:00:00", 100.0, "paid", 1), ("a", "2025-11-11 00:00:00", 50.0, "paid", 2),
    ("b", "2024-11-11 12:00:00", 80.0, "paid", 1), ("b", "2025-11-05 09:00:00", 30.0, "paid", 1),
    ("b", "2025-11-10 23:59:59", 20.0, "paid", 3), ("c", "2025-05-01 10:00:00", 70.0, "unpaid", 1),
    ("c", "2025-11-11 20:00:00", 60.0, "paid", 1), ("d", "2025-10-31 12:00:00", 40.0, "paid", 1),
    ("e", "2024-06-01 10:00:00", 10.0, "paid", 1), ("e", "2024-10-15 10:00:00", 25.0, "paid", 2),
    ("e", "2025-11-14 18:00:00", 90.0, "paid", 1), ("e", "2025-11-15 09:00:00", 15.0, "paid", 1),
    ("f", "2025-11-11 15:00:00", 500.0, "refunded", 1), ("f", "2025-11-12 10:00:00", 35.0, "paid", 1),
]
LONDON = Settings(currency="£", timezone="Europe/London")
FOOTER = "engine duckdb · time zone Europe/London · observation end 2025-12-31 23:59:59"


@pytest.fixture(scope="module")
def london():
    df = pd.DataFrame(ROWS, columns=["customer_id", "order_time", "amount", "status", "quantity"])
    df.insert(1, "order_id", [f"o{i}" for i in range(len(df))])
    o = order_table(load_orders(df, observation_end="2025-12-31")[0])
    return dataclasses.replace(o, settings=LONDON)


@pytest.fixture(scope="module")
def results(london):
    curve = repurchase_curve(london, 30, 3, min_at_risk=1)
    return {"retention": retention_table(london, days=(1, 30)), "curve": curve,
            "magic": magic_number(curve, min_at_risk=1),
            "promotion": analyse_promotion(london, date="2025-11-11", growth="new=0.1,old=0.2", clv_check=False)}


def _no_shanghai_yuan(text: str) -> None:
    assert "¥" not in text and "Asia/Shanghai" not in text


@pytest.mark.parametrize("name", ["retention", "curve", "magic", "promotion"])
def test_every_text_is_in_the_results_own_context(results, name):
    r = results[name]
    assert r.settings == LONDON
    page = html.unescape(r._repr_html_()).replace("<b>", "").replace("</b>", "")
    for text in (repr(r), page, r.headline()):
        _no_shanghai_yuan(text)
    assert "time zone Europe/London" in repr(r) and "time zone Europe/London" in page
    json.dumps(r.to_dict())  # JSON-safe: NaN and timestamps cleaned by the one cleaner


def test_literal_texts_of_a_london_pound_store(results):
    p = results["promotion"]
    # day: last year b's £80 (new) × 1.1 = £88, var(T) = 1.1² × 80²; this year a £50 + c £60 = £110, Σy² = 6,100:
    # var(log A) = 6,100/110² + 1 -> 125% × exp(±1.645 × 1.2265) = 17%…940%
    head = ("2025-11-11 reviewed: day sales £110, 125% of the target £88 (90% interval 17%–940%); whole period £425, "
            "360% of target (90% interval 80%–1,626%)")
    assert p.headline() == head
    assert repr(p) == f"<PromotionResult: {head}\n  {FOOTER}>"
    page = html.unescape(p._repr_html_())
    for cell in ("£80", "£110", "£88", "£425", "£118", "125%", "360%"):
        assert f"<td>{cell}</td>" in page
    assert (p.engine, p.timezone) == ("duckdb", "Europe/London")
    t = results["retention"]
    head = "day-30 retention 0.0% of 6 eligible new buyers (all cohorts; a paid order on that day)"
    assert t.headline() == head and repr(t) == f"<RetentionTable: {head}\n  {FOOTER}>"
    assert t.timezone == "Europe/London"
    assert repr(results["curve"]).endswith(f"\n  {FOOTER}>")
    assert repr(results["magic"]).endswith("\n  engine duckdb · time zone Europe/London>")


def test_the_plan_before_the_day_states_its_target_in_pounds(london):
    p = analyse_promotion(london, date="2025-11-11", growth="new=0.1,old=0.2", observation_end="2025-10-15",
                          clv_check=False)
    # last year's period: b (new, £80) and e (old, £25): buyers 1 × 1.1 + 1 × 1.2 = 2.3 -> "2"
    # plan range: var = 1.1²·80² + 80²·1.1 + 1.2²·25² + 25²·1.2 = 16,434 -> £118 × exp(±1.645 × √16,434 / 118)
    assert p.headline() == ("plan for 2025-11-11: period sales target £118 (90% plan range £20 – £705) from 2 buyers "
                            "(growth new +10.0%, old +20.0%)")


def _texts(fig) -> str:
    out = []
    for ax in fig.axes:
        out += [ax.get_title(), ax.get_xlabel(), ax.get_ylabel()]
        out += [t.get_text() for t in ax.get_xticklabels() + ax.get_yticklabels() + ax.texts]
        if ax.get_legend() is not None:
            out += [t.get_text() for t in ax.get_legend().get_texts()]
    return " ".join(out)


def test_promotion_charts_label_money_in_the_results_currency(results, london):
    fig = results["promotion"].plot()
    assert fig.axes[0].get_ylabel() == "sales £"
    _no_shanghai_yuan(_texts(fig))
    daily = promotion_daily(london, "2025-11-11")
    fig = season_figure(daily, DEFAULT_PHASES, PHASE_LABELS, settings=LONDON)
    assert fig.axes[0].get_ylabel() == "paid sales per day £"
    _no_shanghai_yuan(_texts(fig))


def test_attainment_style_escapes_phase_names_and_values():
    idx = pd.MultiIndex.from_tuples([("<script>alert(1)</script>", "all")], names=["phase", "type"])
    review = pd.DataFrame({"sales attainment": [1.2], "<b>sales</b> target": [100.0]}, index=idx)
    page = attainment_style(review).to_html()
    assert "<script>" not in page and "<b>sales" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "&lt;b&gt;sales&lt;/b&gt; target" in page
    assert "120.0%" in page and "background-color: #d9f0dd" in page


def test_the_statistics_modules_stand_alone():
    import ast
    from pathlib import Path

    import crmlab.stats.equivalence as eq
    import crmlab.stats.survival as sv

    for mod in (eq, sv):
        tree = ast.parse(Path(mod.__file__).read_text(encoding="utf-8"))
        names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
        names += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
        assert not [n for n in names if n.split(".")[0] == "crmlab"], mod.__name__
