"""The one presentation path (issue 23): the formatter from a context, the Ledger's card, and
every figure of crmlab.present.figures drawn for a £ store with no ¥ in any text."""
from __future__ import annotations

import inspect
import io
from types import SimpleNamespace

import matplotlib.text
import numpy as np
import pandas as pd
import pytest

import crmlab.settings as S
from crmlab.ingest.ledger import Ledger
from crmlab.present import figures
from crmlab.present.formatting import Formatter
from crmlab.settings import Settings

POUND = Settings(currency="£", timezone="Europe/London")


@pytest.fixture(autouse=True)
def _session():
    saved = S.current()
    yield
    S.use(saved)


def test_the_formatter_formats_from_its_context():
    f = Formatter(Settings(currency="£", interval_level=0.5))
    assert (f.money(1234.4), f.level(), f.interval_name()) == ("£1,234", "50%", "50% interval")
    assert f.interval(0.121, 0.14) == "[12.1%, 14.0%]" and f.money_interval(1200, 1300) == "£1,200 – £1,300"
    assert f.ten_thousands() == "万 £10k" and Formatter(Settings()).ten_thousands() == "万元 ¥10k"
    assert f.timestamp(pd.Timestamp("2025-12-31 23:59:59.9")) == "2025-12-31 23:59:59" and f.timestamp(None) is None


def test_the_ledger_gets_its_card():
    led = Ledger(file="orders.csv", input_rows=1000, kind="orders", timezone="Europe/London", settings=POUND)
    rows = np.arange(1000)
    led.exclude("missing_customer_id", rows < 30, rows)
    led.orders, led.customers = 900, 400
    led.observation_end = pd.Timestamp("2025-06-30 23:59:59.999999")
    led.warnings.append("header found on row 3; the 2 title row(s) above it were skipped")
    assert led.headline() == "orders.csv: 970 of 1,000 rows used, 30 excluded; 900 orders, 400 customers"
    assert repr(led) == ("<Ledger: orders.csv: 970 of 1,000 rows used, 30 excluded; 900 orders, 400 customers "
                         "(1 warning)\n  engine duckdb · time zone Europe/London · observation end 2025-06-30 23:59:59>")
    card = led.card()
    assert list(card.table["rows"]) == ["970", "30", "1,000"]
    assert list(card.table["share"]) == ["97.0%", "3.0%", "100.0%"]
    assert list(card.table["example rows"]) == ["", "1, 2, 3, 4, 5", ""]
    html = led._repr_html_()
    assert "missing_customer_id" in html and "title row(s)" in html and "Europe/London" in html
    assert led.to_dict()["excluded"] == {"missing_customer_id": 30}  # the stored form is unchanged
    led.check()


def _inputs() -> dict:
    months = pd.period_range("2024-01", periods=4, freq="M")
    monthly = pd.DataFrame({"new_sales": [1e5, 2e5, 1.5e5, 3e4], "returning_sales": [5e4, 6e4, 7e4, 1e4],
                            "returning_buyer_share": [0.2, 0.25, 0.3, 0.31],
                            "returning_sales_share": [0.3, 0.28, 0.35, 0.4], "partial": [False] * 3 + [True]},
                           index=months)
    rates = pd.DataFrame({30: [0.1, 0.12, np.nan], 90: [0.2, np.nan, np.nan]}, index=["2024-01", "2024-02", "all cohorts"])
    eligible = pd.DataFrame({30: [100, 40, 0], 90: [100, 0, 0]}, index=rates.index)
    table = SimpleNamespace(rates=rates.fillna({30: 0.11, 90: 0.2}), eligible=eligible, kind="first order",
                            size=pd.Series([100, 40], index=["2024-01", "2024-02"]))
    heat = SimpleNamespace(rates=rates, eligible=eligible, kind="first order", size=table.size)
    frame = pd.DataFrame({"rate": [0.1, 0.2], "ci_low": [0.05, 0.1], "ci_high": [0.15, 0.3]},
                         index=pd.period_range("2024-01", periods=2, freq="M"))
    curve_t = pd.DataFrame({"k": [1, 2, 3], "rate": [0.2, 0.3, 0.4], "ci_low": [0.1, 0.2, 0.3],
                            "ci_high": [0.3, 0.4, 0.5], "enough": [True, True, False],
                            "km_rate": [0.21, 0.31, 0.41], "naive_rate": [0.25, 0.35, 0.45]})
    km = pd.DataFrame({"k": [1, 1, 2, 2], "day": [0, 30, 0, 30], "p_next": [0.0, 0.2, 0.0, 0.3]})
    deciles = pd.DataFrame({"share_of_value": np.linspace(0.02, 0.3, 10)}, index=range(1, 11))
    rows = pd.DataFrame({"diff": [0.01, -0.005], "low": [0.0, -0.01], "high": [0.02, 0.0]}, index=["A", "B"])
    pal = pd.DataFrame(np.random.default_rng(0).random((3, 4)), columns=[0.0, 1.0, 2.0, 3.0])
    return {
        "monthly_sales_figure": dict(monthly=monthly, settings=POUND),
        "spread_figure": dict(table=pd.DataFrame({"sales_share": [0.6, 0.4]}, index=["north", "south"]), title="Region"),
        "retention_heatmap": dict(table=heat),
        "retention_curves": dict(table=table),
        "rates_over_time": dict(frames={"next month": frame}, title="Repurchase"),
        "stage_bar": dict(counts=pd.DataFrame({"名称": ["新客", "休眠"], "customers": [300, 200],
                                               "share": [0.6, 0.4]}, index=["new", "dormant"])),
        "matrix_figure": dict(m=pd.DataFrame([[1, 2], [3, 4]], index=["a", "b"], columns=["a", "b"]), title="Moves"),
        "repurchase_curve_figure": dict(curve=SimpleNamespace(table=curve_t, window_days=90, min_at_risk=50), magic=2),
        "km_figure": dict(km=km, window_days=90),
        "holdout_figure": dict(by_frequency=pd.DataFrame({"actual": [0.2, 0.5], "bgnbd": [0.25, 0.45]}, index=[0, 1]),
                               models=["bgnbd"]),
        "p_alive_heatmap": dict(matrix=pal, T=12, unit="weeks"),
        "clv_figure": dict(deciles=deciles, horizon_months=12),
        "forest_plot": dict(rows=rows, title="Arms", reference="holdout"),
        "cumulative_figure": dict(cum=pd.DataFrame({"A": [0.0, 0.01, 0.02], "holdout": [0.0, 0.005, 0.01]},
                                                   index=[0, 24, 48]), window_hours=72),
    }


def _figure_functions() -> set[str]:
    return {n for n, f in inspect.getmembers(figures, inspect.isfunction)
            if f.__module__ == figures.__name__ and not n.startswith("_")
            and "ax" in inspect.signature(f).parameters}


def test_every_figure_drawn_for_a_pound_store_shows_no_yen():
    S.use(POUND)
    inputs = _inputs()
    assert set(inputs) == _figure_functions() - {"pct_axis"}  # a new figure function needs a case here
    for name, kw in inputs.items():
        fig = getattr(figures, name)(**kw)
        fig.savefig(io.BytesIO(), format="png")  # draws: tick labels exist
        texts = [t.get_text() for t in fig.findobj(matplotlib.text.Text)]
        assert texts, name
        yen = [t for t in texts if "¥" in t or "￥" in t or "元" in t]
        assert not yen, f"{name}: {yen}"
    title = figures.monthly_sales_figure(**inputs["monthly_sales_figure"]).axes[0].get_title()
    assert title == "月销售额 Sales by month (万 £10k)"
