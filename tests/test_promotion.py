"""Big promotions (大促): every definition on a hand fixture, the plan arithmetic by hand,
the review against the simulated store's planted figures, the CLI contract, DuckDB = Spark."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from crmlab.cli.main import main
from crmlab.engine.connection import connect
from crmlab.engine.sources import order_table
from crmlab.ingest.readers import CrmlabInputError, load_orders
from crmlab.promotion.plan import (analyse_promotion, default_date, parse_date, parse_growth, parse_phases,
                              promotion_daily, warm_up_list)

D = "2025-11-11"
# customer, order time, amount, status, quantity.  Phases for D = 2025-11-11: build_up 09-01…10-30,
# warm_up 11-01…11-10, day 11-11, after_glow 11-12…11-14; 10-31 (D-11) is in none.
ROWS = [
    ("a", "2025-09-05 10:00:00", 100.0, "paid", 1),      # new in build-up ...
    ("a", "2025-11-11 00:00:00", 50.0, "paid", 2),       # ... and new again on D (first second of D)
    ("b", "2024-11-11 12:00:00", 80.0, "paid", 1),       # last year: new on D
    ("b", "2025-11-05 09:00:00", 30.0, "paid", 1),       # this year: old in warm-up
    ("b", "2025-11-10 23:59:59", 20.0, "paid", 3),       # last second of warm-up
    ("c", "2025-05-01 10:00:00", 70.0, "unpaid", 1),     # unpaid: not a purchase ...
    ("c", "2025-11-11 20:00:00", 60.0, "paid", 1),       # ... so c is new on D
    ("d", "2025-10-31 12:00:00", 40.0, "paid", 1),       # D-11: no phase, but inside the period
    ("e", "2024-06-01 10:00:00", 10.0, "paid", 1),
    ("e", "2024-10-15 10:00:00", 25.0, "paid", 2),       # last year: old in build-up
    ("e", "2025-11-14 18:00:00", 90.0, "paid", 1),       # old in after-glow
    ("e", "2025-11-15 09:00:00", 15.0, "paid", 1),       # D+4: after the period
    ("f", "2025-11-11 15:00:00", 500.0, "refunded", 1),  # refunded: not a purchase
    ("f", "2025-11-12 10:00:00", 35.0, "paid", 1),       # new in after-glow
]


def _frame(rows=ROWS, quantity=True) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=["customer_id", "order_time", "amount", "status", "quantity"])
    df.insert(1, "order_id", [f"o{i}" for i in range(len(df))])
    return df if quantity else df.drop(columns="quantity")


@pytest.fixture(scope="module")
def hand():
    return load_orders(_frame(), observation_end="2025-12-31")[0]


@pytest.fixture(scope="module")
def given(hand):
    return analyse_promotion(hand, date=D, growth="new=0.1,old=0.2", clv_check=False)


def _fig(f: pd.DataFrame, phase: str, typ: str) -> dict:
    return {k: f.at[(phase, typ), k] for k in ("buyers", "orders", "sales", "units")}


def test_phases_and_days():
    ph = {p.name: p.days(pd.Timestamp(D)) for p in parse_phases(None)}
    assert ph["build_up"] == (pd.Timestamp("2025-09-01"), pd.Timestamp("2025-10-30"))
    assert ph["warm_up"] == (pd.Timestamp("2025-11-01"), pd.Timestamp("2025-11-10"))
    assert ph["day"] == (pd.Timestamp(D), pd.Timestamp(D))
    assert ph["after_glow"] == (pd.Timestamp("2025-11-12"), pd.Timestamp("2025-11-14"))
    gap = pd.Timestamp("2025-10-31")  # D-11
    assert not any(a <= gap <= b for a, b in ph.values())
    custom = parse_phases("day=0:0, warm_up=-10:-1 ,pre=-11:-11")
    assert [p.name for p in custom] == ["pre", "warm_up", "day"]


def test_every_definition_on_the_hand_fixture(given):
    ty, ly = given.this_year, given.last_year
    assert _fig(ty, "build_up", "new") == {"buyers": 1, "orders": 1, "sales": 100.0, "units": 1}   # a
    assert _fig(ty, "build_up", "old") == {"buyers": 0, "orders": 0, "sales": 0.0, "units": 0}
    assert _fig(ty, "warm_up", "old") == {"buyers": 1, "orders": 2, "sales": 50.0, "units": 4}     # b, 23:59:59 in
    assert _fig(ty, "warm_up", "new")["buyers"] == 0
    assert _fig(ty, "day", "new") == {"buyers": 2, "orders": 2, "sales": 110.0, "units": 3}        # a again, c
    assert _fig(ty, "day", "old")["buyers"] == 0                                                   # refunded f out
    assert _fig(ty, "after_glow", "new") == {"buyers": 1, "orders": 1, "sales": 35.0, "units": 1}  # f
    assert _fig(ty, "after_glow", "old") == {"buyers": 1, "orders": 1, "sales": 90.0, "units": 1}  # e, not D+4
    # the period includes D-11 (d) and counts each buyer once
    assert _fig(ty, "period", "new") == {"buyers": 4, "orders": 5, "sales": 285.0, "units": 6}
    assert _fig(ty, "period", "old") == {"buyers": 2, "orders": 3, "sales": 140.0, "units": 5}
    assert _fig(ty, "period", "all") == {"buyers": 6, "orders": 8, "sales": 425.0, "units": 11}
    # D-11 is in no phase: the phases' orders add up to the period's minus d's one
    phases = ty.drop(index="period", level="phase").xs("all", level="type")
    assert phases["orders"].sum() == 8 - 1
    # ratios
    assert ty.at[("day", "new"), "aov"] == 55.0
    assert ty.at[("warm_up", "old"), "orders_per_buyer"] == 2.0 and ty.at[("warm_up", "old"), "units_per_buyer"] == 4.0
    assert np.isnan(ty.at[("build_up", "old"), "aov"])
    # last year: b new on 2024-11-11; e old (first order 2024-06-01, before 2024-09-01)
    assert _fig(ly, "day", "new") == {"buyers": 1, "orders": 1, "sales": 80.0, "units": 1}
    assert _fig(ly, "build_up", "old") == {"buyers": 1, "orders": 1, "sales": 25.0, "units": 2}
    assert _fig(ly, "period", "all") == {"buyers": 2, "orders": 2, "sales": 105.0, "units": 3}


def test_plan_arithmetic_by_hand_with_given_growth(given):
    p = given.plan
    assert given.growth == {"new": 0.1, "old": 0.2} and given.growth_source == {"new": "given", "old": "given"}
    assert p.at[("day", "new"), "buyers"] == pytest.approx(1.1)
    assert p.at[("day", "new"), "sales"] == pytest.approx(88.0)
    assert p.at[("day", "new"), "aov"] == pytest.approx(80.0)  # ratios follow the counts: last year's
    assert p.at[("build_up", "old"), "sales"] == pytest.approx(30.0)
    assert p.at[("build_up", "old"), "units"] == pytest.approx(2.4)
    assert p.at[("period", "all"), "sales"] == pytest.approx(88.0 + 30.0)
    assert p.at[("period", "all"), "buyers"] == pytest.approx(1.1 + 1.2)
    assert p.at[("period", "all"), "aov"] == pytest.approx(118.0 / 2.3)
    assert p.at[("warm_up", "new"), "orders"] == 0


def test_plan_with_estimated_growth_by_hand(hand):
    # the hand export starts on 2024-06-01, inside both earlier comparison windows: no growth is
    # estimated and there is no plan without --growth (issue 25 item 7)
    r = analyse_promotion(hand, date=D, clv_check=False)
    assert r.growth == {"new": None, "old": None} and r.plan is None and r.review is None
    assert r.growth_source == {"new": "not covered", "old": "not covered"}
    assert "2024-06-01" in r.growth_reason["new"] and "--growth new=RATE" in r.growth_reason["new"]
    assert "--growth new=RATE,old=RATE" in r.plan_reason
    # one cancelled row on 2023-08-15 makes the export cover both windows; the paid figures are unchanged
    covered = load_orders(_frame(ROWS + [("g", "2023-08-15 10:00:00", 5.0, "cancelled", 1)]),
                          observation_end="2025-12-31")[0]
    r = analyse_promotion(covered, date=D, clv_check=False)
    # new: first orders 2024-09-01…2025-08-31 (b) vs 2023-09-01…2024-08-31 (e): 1 vs 1
    # old: a paid order 2024-09-01…2025-08-31 (b, e) vs 2023-09-02…2024-08-31 (e; 365 days): 2 vs 1
    assert r.bases["new_recent"] == 1 and r.bases["new_before"] == 1
    assert r.bases["active_this"] == 2 and r.bases["active_last"] == 1
    assert r.bases["export_start"] == pd.Timestamp("2023-08-15")
    assert r.growth == {"new": 0.0, "old": 1.0} and r.growth_source == {"new": "estimated", "old": "estimated"}
    assert r.plan_reason is None and r.growth_reason == {}
    assert r.plan.at[("build_up", "old"), "buyers"] == 2.0  # participation 1/1 × this year's base of 2
    assert r.plan.at[("build_up", "old"), "sales"] == 50.0
    assert r.plan.at[("day", "new"), "sales"] == 80.0
    assert r.bases["participation"]["build_up"] == 1.0
    text = " ".join(r.assumptions)
    assert "estimated" in text and "365 days" in text and "first paid order ever" in text
    partial = analyse_promotion(covered, date=D, growth="old=0.5", clv_check=False)
    assert partial.growth == {"new": 0.0, "old": 0.5}
    assert partial.growth_source == {"new": "estimated", "old": "given"}
    # given for one type only on the uncovered export: still no plan (the other type is missing)
    half = analyse_promotion(hand, date=D, growth="new=0.1", clv_check=False)
    assert half.plan is None and set(half.growth_reason) == {"old"} and "old=RATE" in half.plan_reason


def test_review_attainment_and_change(given):
    rv = given.review
    row = rv.loc[("day", "all", "sales")]
    assert row["target"] == pytest.approx(88.0) and row["actual"] == 110.0
    assert row["attainment"] == pytest.approx(110 / 88) and row["change_vs_last_year"] == pytest.approx(110 / 80 - 1)
    assert np.isnan(rv.loc[("warm_up", "new", "buyers"), "attainment"])  # target 0: no attainment
    d = given.to_dict()
    assert d["review"]["day"]["all"]["sales"]["attainment"] == pytest.approx(1.25)
    assert d["review"]["period"]["all"]["orders"]["actual"] == 8
    assert d["review"]["warm_up"]["new"]["buyers"]["attainment"] is None


def test_no_review_before_the_day_and_partial_phases(hand):
    r = analyse_promotion(hand, date=D, growth="new=0,old=0", observation_end="2025-11-10", clv_check=False)
    assert r.review is None and r.to_dict()["review"] is None
    assert r.this_year.at[("day", "all"), "orders"] == 0
    assert r.this_year.at[("warm_up", "old"), "orders"] == 2  # 23:59:59 on the 10th is in
    done = {p["name"]: p["complete"] for p in r.to_dict()["phases"]}
    assert done == {"build_up": True, "warm_up": True, "day": False, "after_glow": False}
    # planning before the period: growth windows end at the export's end (stated)
    early = analyse_promotion(hand, date=D, observation_end="2025-08-15", clv_check=False)
    assert any("before the period" in s for s in early.assumptions)


def test_json_shape(given):
    d = json.loads(json.dumps(given.to_dict()))
    assert d["date"] == D and d["last_year_date"] == "2024-11-11"
    assert [(p["name"], p["start"], p["end"]) for p in d["phases"]] == [
        ("build_up", "2025-09-01", "2025-10-30"), ("warm_up", "2025-11-01", "2025-11-10"),
        ("day", "2025-11-11", "2025-11-11"), ("after_glow", "2025-11-12", "2025-11-14")]
    for key in ("this_year", "last_year", "plan"):
        assert set(d[key]) >= {"build_up", "warm_up", "day", "after_glow", "period"}
        assert set(d[key]["day"]) == {"new", "old", "all"}
        assert set(d[key]["day"]["all"]) == {"buyers", "orders", "sales", "units", "aov", "orders_per_buyer",
                                             "units_per_buyer"}
    assert isinstance(d["plan"]["assumptions"], list) and d["plan"]["assumptions"]
    assert set(d["review"]["day"]["old"]["aov"]) >= {"target", "actual", "attainment"}


def test_units_absent_without_quantity():
    df = load_orders(_frame(quantity=False), observation_end="2025-12-31")[0]
    r = analyse_promotion(df, date=D, growth="new=0,old=0", clv_check=False)
    assert not r.has_units and r.to_dict()["this_year"]["day"]["all"]["units"] is None
    assert r.to_dict()["this_year"]["day"]["all"]["orders"] == 2
    assert any("quantity" in s for s in r.assumptions)


def test_arguments():
    assert parse_date("2025-06-18") == pd.Timestamp("2025-06-18")
    assert parse_date("06-18", year=2024) == pd.Timestamp("2024-06-18")
    assert default_date("2024-12-31 23:59:59", today="2026-03-01") == pd.Timestamp("2024-11-11")
    assert default_date(None, today="2026-03-01") == pd.Timestamp("2026-11-11")
    assert parse_growth("new=0.1, old=20%") == {"new": 0.1, "old": 0.2}
    for bad, arg in ((lambda: parse_date("11/31/xx"), "--date"),
                     (lambda: parse_date("2025-02-30", "--last-year-date"), "--last-year-date"),
                     (lambda: parse_phases("build_up=-71"), "--phases"),
                     (lambda: parse_phases("a=-3:-1,b=-2:0"), "--phases"),   # overlap
                     (lambda: parse_phases("a=2:1"), "--phases"),
                     (lambda: parse_phases("period=0:0"), "--phases"),
                     (lambda: parse_growth("new=abc"), "--growth"),
                     (lambda: parse_growth("mid=0.1"), "--growth"),
                     (lambda: parse_growth("new=-1"), "--growth"),
                     (lambda: parse_growth("new0.1"), "--growth")):
        with pytest.raises(CrmlabInputError, match=arg):
            bad()


def test_default_date_follows_the_export(hand):
    r = analyse_promotion(hand, growth="new=0,old=0", clv_check=False, today="2027-01-05")
    assert r.date == pd.Timestamp(D) and r.last_year_date == pd.Timestamp("2024-11-11")
    r = analyse_promotion(hand, date="06-18", growth="new=0,old=0", clv_check=False, today="2027-01-05")
    assert r.date == pd.Timestamp("2025-06-18")


def test_daily_series_and_warm_up_list(hand, given):
    d = promotion_daily(hand, D, phases=None, pad_days=2)
    assert d.index[0] == -73 and d.index[-1] == 5
    assert d.at[0, "sales_this"] == 110.0 and d.at[0, "sales_last"] == 80.0
    assert d.at[0, "old_sales_last"] == 0.0 and d.at[-11, "sales_this"] == 40.0
    assert d.at[-1, "old_sales_this"] == 20.0 and d.at[4, "sales_this"] == 15.0
    # bought in last year's promotion (b on 2024-11-11, e on 2024-10-15) and not since, as of 10-31
    w = warm_up_list(hand, given)
    assert w.attrs["as_of"] == pd.Timestamp("2025-10-31")
    assert list(w.columns) == ["customer_id"] and list(w["customer_id"]) == ["b", "e"]  # larger spender first
    assert list(warm_up_list(hand, given, as_of="2025-11-06")["customer_id"]) == ["e"]


def test_clv_failure_only_drops_the_cross_check(hand, monkeypatch):
    import crmlab.clv.models

    def boom(*a, **k):
        raise RuntimeError("no fit today")

    monkeypatch.setattr(crmlab.clv.models, "fit_clv_models", boom)
    r = analyse_promotion(hand, date=D, growth="new=0,old=0")
    assert r.clv_check == {"error": "RuntimeError: no fit today"}
    assert any("CLV cross-check dropped" in s for s in r.assumptions)
    assert r.plan.at[("day", "new"), "sales"] == 80.0


@pytest.fixture(scope="module")
def small(small_store):
    return load_orders(small_store / "orders.csv", observation_end="2025-12-31")[0]


def test_review_against_planted_figures(small, small_store):
    truth = json.loads((small_store / "truth.json").read_text(encoding="utf-8"))["promotions"]
    for name, md in (("double11", "11-11"), ("618", "06-18")):
        r = analyse_promotion(small, date=f"2025-{md}", growth="new=0.1,old=0.2", clv_check=False)
        for year, f in (("2025", r.this_year), ("2024", r.last_year)):
            t = truth[name]["years"][year]
            for ph in ("warm_up", "day"):
                assert f.at[(ph, "all"), "orders"] == t[ph]["orders"], (name, year, ph)
                assert f.at[(ph, "all"), "sales"] == pytest.approx(t[ph]["sales"], abs=0.01)
                assert f.at[(ph, "new"), "buyers"] == t[ph]["new_buyers"]
                assert f.at[(ph, "old"), "buyers"] == t[ph]["old_buyers"]
                assert f.at[(ph, "old"), "sales"] == pytest.approx(t[ph]["old_sales"], abs=0.01)
        # the planted pull shows: the day's daily orders far above the build-up's daily average
        per_day = r.this_year.at[("build_up", "all"), "orders"] / 60
        assert r.this_year.at[("day", "all"), "orders"] > 2.5 * per_day
        assert truth[name]["years"]["2025"]["pulled_to_day"] > 0
        rv = r.review
        assert rv.loc[("day", "old", "orders"), "attainment"] == pytest.approx(
            truth[name]["years"]["2025"]["day"]["old_orders"] / r.plan.at[("day", "old"), "orders"])


def test_clv_cross_check_side_by_side(small):
    r = analyse_promotion(small, date=D, growth="new=0.1,old=0.2")
    c = r.clv_check
    assert "error" not in c, c
    assert c["this_year"]["expected_purchases"] > 0 and c["model_old_orders"] > 0
    assert c["plan_old_orders"] == pytest.approx(r.plan.at[("period", "old"), "orders"])
    assert any(s.startswith("CLV cross-check: BG/NBD") for s in r.assumptions)


def test_cli_contract(small_store, tmp_path, capsys):
    out = tmp_path / "warm.csv"
    assert main(["promotion", "--orders", str(small_store / "orders.csv"), "--date", D, "--growth", "new=0.1,old=0.2",
                 "--warm-up-out", str(out), "--no-clv-check", "--json"]) == 0
    j = json.loads(capsys.readouterr().out)
    assert {"date", "last_year_date", "phases", "this_year", "last_year", "plan", "review"} <= set(j)
    assert j["plan"]["day"]["old"]["buyers"] == pytest.approx(1.2 * j["last_year"]["day"]["old"]["buyers"])
    assert j["review"]["day"]["all"]["sales"]["actual"] == pytest.approx(j["this_year"]["day"]["all"]["sales"])
    w = pd.read_csv(out, dtype=str)
    assert list(w.columns) == ["customer_id"] and len(w) > 0
    for args, arg in ((["--date", "11/31/xx"], "--date"), (["--phases", "day=0"], "--phases"),
                      (["--growth", "new=lots"], "--growth"), (["--last-year-date", "2026-01-01"], "--last-year-date")):
        assert main(["promotion", "--orders", str(small_store / "orders.csv"), *args]) == 2
        err = capsys.readouterr().err
        assert err.startswith("crmlab: error: " + arg) and err.count("\n") == 1, err


@pytest.mark.spark
def test_duckdb_and_spark_agree(small):
    duck, spark = connect("duckdb"), connect("spark", spark_master="local[2]")
    a, b = order_table(small, duck), order_table(small, spark)
    ra = analyse_promotion(a, date=D, growth="new=0.1,old=0.2", clv_check=False)
    rb = analyse_promotion(b, date=D, growth="new=0.1,old=0.2", clv_check=False)
    fa, fb = ra.to_frame(), rb.to_frame()
    assert list(fa.index) == list(fb.index)
    np.testing.assert_allclose(fa.to_numpy(float), fb.to_numpy(float), rtol=1e-9, equal_nan=True)
    assert ra.bases == rb.bases
    da, db = promotion_daily(a, D), promotion_daily(b, D)
    np.testing.assert_allclose(da.drop(columns=["date_this", "date_last"]).to_numpy(float),
                               db.drop(columns=["date_this", "date_last"]).to_numpy(float), rtol=1e-9)
    assert warm_up_list(a, ra)["customer_id"].tolist() == warm_up_list(b, rb)["customer_id"].tolist()
