"""Reports that do not apply to a store are skipped with a one-sentence reason (issue 24, item 4):
``status: skipped`` and the reason in run.json, on the run's index and on the report's page; never
an "ok" page of zeros or an exception's name; the run exits 0 when reports are only skipped."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from crmlab.cli.main import main
from crmlab.engine.connection import connect
from crmlab.ingest.export import load_export
from crmlab.report.applies import clv_reason, promotion_reason, skip_reason
from crmlab.report.runner import run_reports
from crmlab.simulate.store import write_sample

EXCEPTION_NAMES = ("Error", "Traceback", "Exception")


@pytest.fixture(scope="module")
def one_season_store(tmp_path_factory):
    """A simulated store (2024-01-01…2025-12-31) cut to the months after its first November,
    as a platform export that keeps about a year: only the 2025 Double 11 season is in it."""
    d = tmp_path_factory.mktemp("one_season")
    write_sample(str(d), n_customers=1500, seed=1)
    o = pd.read_csv(d / "orders.csv", dtype=str)
    cut = o[pd.to_datetime(o["order_time"]) >= "2024-12-01"]
    assert pd.to_datetime(cut["order_time"]).dt.month.eq(11).any()  # one November (2025) is left
    cut.to_csv(d / "orders.csv", index=False)
    return d


@pytest.fixture(scope="module")
def no_repeat_store(tmp_path_factory):
    """300 customers, each with one paid order (a store whose buyers never came back)."""
    d = tmp_path_factory.mktemp("no_repeat")
    days = pd.date_range("2025-01-01", "2025-08-31", freq="D")
    rows = [{"customer_id": f"C{i:05d}", "order_id": f"O{i:06d}",
             "order_time": f"{days[(i * 7) % len(days)]:%Y-%m-%d} 12:{i % 60:02d}:00",
             "amount": f"{20 + (i * 37) % 300}.00", "status": "paid"} for i in range(300)]
    pd.DataFrame(rows).to_csv(d / "orders.csv", index=False)
    return d


def _orders(path):
    return load_export(str(path / "orders.csv"), connect("duckdb"))[0]  # as the runner validates them


def _no_exception_name(text: str) -> None:
    assert not any(w in text for w in EXCEPTION_NAMES), text


# --- the checks, on their own ------------------------------------------------------------------

def test_promotion_check_needs_last_years_season_inside_the_export(one_season_store, small_store):
    reason = promotion_reason(_orders(one_season_store), {})
    assert reason and "2025-11-11" in reason and "2024-09-01 to 2024-11-14" in reason
    assert "the export starts on 2024-12-01" in reason and reason.count(". ") == 0  # one sentence
    _no_exception_name(reason)
    # the full sample has both Novembers: 06 applies; a promotion with last year's season inside the cut
    # export (618 2025 vs 618 2024? no: 2024-06 is cut) -> skipped; Double 11 2026 vs 2025 -> applies (the plan)
    assert promotion_reason(_orders(small_store), {}) is None
    assert promotion_reason(_orders(one_season_store), {"date": "2026-11-11"}) is None
    assert promotion_reason(_orders(one_season_store), {"date": "2025-06-18"}) is not None
    # an export that ends before last year's season is over
    assert "ends on" in promotion_reason(_orders(small_store), {"date": "2026-12-20", "last_year_date": "2025-12-30"})


def test_clv_check_uses_gamma_gammas_own_minimum(no_repeat_store, small_store):
    from crmlab.clv.gamma_gamma import MIN_REPEAT_CUSTOMERS

    reason = clv_reason(_orders(no_repeat_store), {})
    assert reason == (f"Customer lifetime value needs at least {MIN_REPEAT_CUSTOMERS} repeat customers (a paid "
                      "purchase on a second day) to estimate purchase rates and spend, and no customer in this "
                      "export bought again.")
    assert clv_reason(_orders(small_store), {}) is None
    assert skip_reason("01_store_overview", _orders(no_repeat_store), {}) is None  # no check: applies


def test_clv_check_counts_a_few_repeat_customers(no_repeat_store, tmp_path):
    o = pd.read_csv(no_repeat_store / "orders.csv", dtype=str)
    again = o.head(4).assign(order_id=lambda x: x["order_id"] + "b", order_time="2025-07-01 10:00:00")
    pd.concat([o, again]).to_csv(tmp_path / "orders.csv", index=False)
    assert "only 4 of 300 customers in this export bought again" in clv_reason(_orders(tmp_path), {})


def test_the_clv_command_on_a_store_without_repeat_buyers_says_why(no_repeat_store, capsys):
    rc = main(["clv", "--orders", str(no_repeat_store / "orders.csv")])
    err = capsys.readouterr().err
    assert rc == 2 and "no repeat customers" in err and "Traceback" not in err


# --- the runner ---------------------------------------------------------------------------------

def _check_skipped(out, name: str, words: str) -> str:
    run = json.loads((out / "run.json").read_text(encoding="utf-8"))
    rep = {r["name"]: r for r in run["reports"]}[name]
    assert rep["status"] == "skipped" and words in rep["reason"] and rep["ok"] is False and rep["page"] is True
    assert rep["error"] is None and rep["headlines"] == {} and run["ok"] is True
    index = (out / "index.html").read_text(encoding="utf-8")
    page = (out / f"{name}.html").read_text(encoding="utf-8")
    for html in (index, page):
        assert "skipped" in html.lower() and rep["reason"].split(",")[0] in html
        _no_exception_name(html)
    assert f"href='{name}.html'" in index and "Skipped" in page and "index.html" in page
    assert "£0" not in page and "¥0" not in page and not (out / f"{name}.ipynb").exists()
    return rep["reason"]


def test_promotion_on_a_one_season_store_is_skipped_and_the_run_exits_0(one_season_store, tmp_path, capfd):
    out = tmp_path / "reports" / "run"
    rc = main(["report", "06", "--orders", str(one_season_store / "orders.csv"), "--out", str(out),
               "-p", "currency=£"])
    err = capfd.readouterr().err
    assert rc == 0 and "06_big_promotion skipped: This report compares" in err and "crmlab: error" not in err
    reason = _check_skipped(out, "06_big_promotion", "no last year to plan from or compare with")
    assert "2024-12-01" in reason
    assert (tmp_path / "reports" / "latest").resolve() == out.resolve()  # a run of skips is a good run


def test_clv_on_a_store_without_repeat_customers_is_skipped(no_repeat_store, tmp_path):
    res = run_reports(str(no_repeat_store / "orders.csv"), notebooks=["04", "06"], out=str(tmp_path / "run"),
                      quiet=True)
    assert res.ok and [(r.name, r.status) for r in res.reports] == [("04_clv", "skipped"),
                                                                  ("06_big_promotion", "skipped")]
    _check_skipped(res.out, "04_clv", "no customer in this export bought again")
    page = (res.out / "04_clv.html").read_text(encoding="utf-8")
    assert "06_big_promotion.html" in page  # the skipped pages are linked in the run's order


def test_promotion_check_needs_a_paid_order_in_last_years_season(tmp_path):
    """Last year's season inside the export but without a sale (the store was closed): skipped."""
    days = [d for d in pd.date_range("2024-01-01", "2025-12-31", freq="D")
            if not "2024-09-01" <= f"{d:%F}" <= "2024-11-14"]
    pd.DataFrame([{"customer_id": f"C{i % 90:03d}", "order_id": f"O{i:05d}", "order_time": f"{d:%F} 10:00:00",
                   "amount": "50.00", "status": "paid"} for i, d in enumerate(days)]).to_csv(tmp_path / "orders.csv",
                                                                                         index=False)
    reason = promotion_reason(_orders(tmp_path), {}, today="2026-03-01")
    assert reason and "the export has no paid order in that season" in reason


def test_promotion_cross_check_says_why_without_an_exception_name(no_repeat_store):
    """06's CLV cross-check dropped for a reason in the data: the reason in words, not 'ClvFitError: ...'."""
    from crmlab.promotion.plan import analyse_promotion

    o = pd.read_csv(no_repeat_store / "orders.csv", dtype=str)
    early = o.assign(order_time=pd.to_datetime(o["order_time"]) - pd.DateOffset(years=1),
                     order_id=o["order_id"] + "e", customer_id=o["customer_id"] + "e")
    both = pd.concat([early, o.assign(order_time=pd.to_datetime(o["order_time"]))])
    both["amount"] = both["amount"].astype(float)
    r = analyse_promotion(both, date="2025-06-18")
    assert "error" in r.clv_check and "no repeat customers" in r.clv_check["error"]
    _no_exception_name(r.clv_check["error"])
