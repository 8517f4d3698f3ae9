"""Promotion plans only from covered history; targets and attainment with intervals (issue 25 item 7).

Truth planted outside the code under test:

* the simulator's acquisition (``crmlab.simulate.customers``): first paid orders fall on each
  day of the simulation with a weight rising linearly from 1.0 on its first day to 1.6 on its
  last, ×6 on 11-10…11-12 and ×3 on 06-17/06-18. A period's new buyers are the customers whose
  first paid order falls in it, so the planted growth of new buyers from last year's period to
  this year's is the ratio of the weights summed over the two periods (computed here);
* the promotion pull is the same every year, and with ``extra_conversion`` 0 the SMS campaign of
  2025-11-01 adds no orders: a store that "runs as planted" has no effect last year did not have;
* the intervals' arithmetic by hand on a five-customer fixture (sums of squares, z from scipy).

The review reported 64% attainment of the new-customer target on the sample: its export opens on
2024-01-01, so the earlier new-buyer window (2023-09-01…2024-08-31) held 8 months of first orders,
and the plan's +97% new-buyer growth compared 12 months with 8. Planted: about +25%.
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from crmlab.cli.main import main
from crmlab.ingest.readers import load_orders
from crmlab.promotion.plan import analyse_promotion
from crmlab.settings import Settings, use
from crmlab.simulate.store import StoreSpec, simulate_store

D = "2025-11-11"
PERIOD = (-71, 3)  # the default phases' first and last day, as offsets from D


def _planted_weights(start: str, end: str = "2025-12-31") -> pd.Series:
    """The simulator's acquisition weight of each day (see the module doc), unnormalised."""
    days = pd.date_range(start, end, freq="D")
    w = np.linspace(1.0, 1.6, len(days))
    md = days.strftime("%m-%d")
    w = w * np.where(md.isin(["11-10", "11-11", "11-12"]), 6.0, 1.0) * np.where(md.isin(["06-17", "06-18"]), 3.0, 1.0)
    return pd.Series(w, index=days)


def _period_weight(w: pd.Series, day: str) -> float:
    d = pd.Timestamp(day)
    return float(w.loc[d + pd.Timedelta(days=PERIOD[0]):d + pd.Timedelta(days=PERIOD[1])].sum())


@pytest.fixture(scope="module")
def covered():
    """A store open since 2022-01-01 (every comparison window inside the export), run as planted."""
    spec = StoreSpec(n_customers=12_000, seed=7, start="2022-01-01", extra_conversion=(0.0, 0.0, 0.0, 0.0))
    return load_orders(simulate_store(spec)[0], observation_end="2025-12-31")[0]


@pytest.fixture(scope="module")
def covered_review(covered):
    return analyse_promotion(covered, date=D, clv_check=False)


def test_an_export_starting_inside_the_windows_gives_no_growth_and_no_plan(small_store, tmp_path, capsys):
    # the sample's layout: the store opens on 2024-01-01, inside both earlier windows
    orders = load_orders(small_store / "orders.csv", observation_end="2025-12-31")[0]
    r = analyse_promotion(orders, date=D, clv_check=False)
    assert r.growth == {"new": None, "old": None} and r.plan is None and r.review is None
    assert r.intervals is None and r.to_frame()["target"].isna().all()
    assert "2024-01-01" in r.growth_reason["new"] and "2023-09-01" in r.growth_reason["new"]
    assert r.plan_reason.count(".") == 1 and "--growth new=RATE,old=RATE" in r.plan_reason  # one sentence
    assert "no targets" in r.headline().lower()
    assert not any("+97" in s or "97.0%" in s for s in r.assumptions)  # no growth from 8 months vs 12
    # the CLI: exit 0, the reason in the JSON, the plan only with --growth
    path = str(small_store / "orders.csv")
    assert main(["promotion", "--orders", path, "--date", D, "--no-clv-check", "--json"]) == 0
    j = json.loads(capsys.readouterr().out)
    assert j["plan_reason"] == r.plan_reason and j["growth"] == {"new": None, "old": None}
    assert j["growth_source"] == {"new": "not covered", "old": "not covered"}
    assert set(j["growth_reason"]) == {"new", "old"} and j["review"] is None and j["plan_range"] is None
    assert set(j["plan"]) == {"assumptions"}
    assert main(["promotion", "--orders", path, "--date", D, "--no-clv-check"]) == 0
    assert r.plan_reason in capsys.readouterr().out
    assert main(["promotion", "--orders", path, "--date", D, "--no-clv-check", "--growth", "new=0.25,old=0.1",
                 "--json"]) == 0
    j = json.loads(capsys.readouterr().out)
    assert j["plan_reason"] is None and j["growth_source"] == {"new": "given", "old": "given"}
    assert j["plan"]["period"]["new"]["buyers"] == pytest.approx(1.25 * j["last_year"]["period"]["new"]["buyers"])
    rng = j["plan_range"]["period"]["all"]["sales"]
    assert rng["low"] < j["plan"]["period"]["all"]["sales"] < rng["high"]
    row = j["review"]["period"]["all"]["sales"]
    assert row["attainment_low"] < row["attainment"] < row["attainment_high"]
    assert j["interval_level"] == 0.9 and "Poisson" in j["interval_method"]


def test_a_truncated_export_of_a_covered_store_gives_no_estimate():
    # the same kind of store, its export cut on 2024-01-01 (a platform keeping two years)
    spec = StoreSpec(n_customers=3_000, seed=7, start="2022-01-01", truncate_before="2024-01-01")
    cut = load_orders(simulate_store(spec)[0], observation_end="2025-12-31")[0]
    r = analyse_promotion(cut, date=D, clv_check=False)
    assert r.plan is None and r.growth_source == {"new": "not covered", "old": "not covered"}


def test_growth_from_covered_windows_matches_the_planted_growth(covered_review):
    r = covered_review
    assert r.growth_source == {"new": "estimated", "old": "estimated"} and r.plan_reason is None
    w = _planted_weights("2022-01-01")
    planted = _period_weight(w, D) / _period_weight(w, "2024-11-11") - 1  # about +10%
    b = r.bases
    se = np.sqrt(1 / b["new_recent"] + 1 / b["new_before"])  # the estimate's sampling error (log scale)
    assert abs(np.log1p(r.growth["new"]) - np.log1p(planted)) < 3 * se
    # on the sample's layout the old code compared 12 months with 8: far above the planted growth
    w24 = _planted_weights("2024-01-01")
    assert _period_weight(w24, D) / _period_weight(w24, "2024-11-11") - 1 == pytest.approx(0.245, abs=0.01)
    eight = w24.loc["2024-01-01":"2024-08-31"].sum()
    twelve = w24.loc["2024-09-01":"2025-08-31"].sum()
    assert twelve / eight - 1 > 0.8  # what it estimated (+97% on the sample): attainment 1.245 / 1.97 ≈ 64%


def test_a_store_that_ran_as_planted_is_100_percent_within_its_intervals(covered_review):
    r = covered_review
    rv = r.review
    for typ in ("new", "old", "all"):
        for m in ("buyers", "orders", "sales"):
            row = rv.loc[("period", typ, m)]
            assert row["attainment_low"] <= 1.0 <= row["attainment_high"], (typ, m, row.to_dict())
            assert row["target_low"] <= row["actual"] <= row["target_high"], (typ, m)


def test_planted_new_growth_given_attains_100_percent(covered):
    w = _planted_weights("2022-01-01")
    g = _period_weight(w, D) / _period_weight(w, "2024-11-11") - 1
    r = analyse_promotion(covered, date=D, growth=f"new={g},old=0", clv_check=False)
    row = r.review.loc[("period", "new", "buyers")]
    assert row["attainment_low"] <= 1.0 <= row["attainment_high"]
    assert r.growth_relvar["new"] == 0.0  # a given growth carries no sampling error


def _hand():
    rows = [("a", "2024-11-11 10:00:00", 80.0), ("a", "2024-11-11 11:00:00", 20.0),   # last year: 2 orders, 100
            ("b", "2024-11-11 12:00:00", 50.0),                                      # last year: 1 order, 50
            ("c", "2025-11-11 10:00:00", 60.0), ("d", "2025-11-11 10:00:00", 90.0),
            ("d", "2025-11-11 12:00:00", 30.0)]                                      # this year: c 60; d 2, 120
    df = pd.DataFrame(rows, columns=["customer_id", "order_time", "amount"])
    df["order_id"], df["status"] = [f"o{i}" for i in range(len(df))], "paid"
    return load_orders(df, observation_end="2025-12-31")[0]


def test_interval_arithmetic_by_hand():
    r = analyse_promotion(_hand(), date=D, growth="new=0.5,old=0", clv_check=False)
    z = norm.ppf(0.95)
    iv = r.intervals
    # day, new customers (every buyer is new): last year 2 buyers, 3 orders (2² + 1² = 5), sales 150
    # (100² + 50² = 12,500); growth given +50% (no sampling error)
    t = 2 * 1.5
    var_t, var_y = 1.5 ** 2 * 2, 2 * 1.5  # (1+g)² Q_X and Q_X (1+g); buyers: Q = count
    w = z * np.sqrt((var_t + var_y) / t ** 2)
    assert iv.loc[("day", "new", "buyers"), "target_low"] == pytest.approx(t * np.exp(-w))
    assert iv.loc[("day", "new", "buyers"), "target_high"] == pytest.approx(t * np.exp(w))
    ts = 150 * 1.5
    var_ts, var_ys = 1.5 ** 2 * 12_500, 12_500 * 1.5
    assert iv.loc[("day", "new", "sales"), "target_high"] == pytest.approx(ts * np.exp(z * np.sqrt((var_ts + var_ys)
                                                                                                   / ts ** 2)))
    # attainment of sales: this year 180 (60² + 120² = 18,000): var(log A) = 18,000/180² + var_T/T²
    a = 180 / ts
    wa = z * np.sqrt(18_000 / 180 ** 2 + var_ts / ts ** 2)
    assert iv.loc[("day", "new", "sales"), "attainment_low"] == pytest.approx(a * np.exp(-wa))
    assert iv.loc[("day", "new", "sales"), "attainment_high"] == pytest.approx(a * np.exp(wa))
    # orders per buyer: last year 3/2, Q_O = 5, C = Σ o_i = 3: relvar = 5/9 + 1/2 - 2·3/6 = 1/18
    # this year 3/2 (c 1, d 2): the same; attainment 1 with var(log A) = 1/18 + 1/18
    row = iv.loc[("day", "new", "orders_per_buyer")]
    assert row["attainment_low"] == pytest.approx(np.exp(-z * np.sqrt(2 / 18)))
    # all = new + old (old is empty here): the same range
    assert iv.loc[("day", "all", "sales"), "target_high"] == pytest.approx(iv.loc[("day", "new", "sales"),
                                                                                  "target_high"])
    # the level follows the run's settings
    use(Settings(interval_level=0.5))
    r50 = analyse_promotion(_hand(), date=D, growth="new=0.5,old=0", clv_check=False)
    z50 = norm.ppf(0.75)
    assert r50.intervals.loc[("day", "new", "buyers"), "target_high"] == pytest.approx(t * np.exp(w * z50 / z))
    assert "50% interval" in r50.headline()


def test_the_clv_cross_check_without_a_plan_says_so():
    from crmlab.promotion.clv_check import clv_note

    c = {"this_year": {"fitted_up_to": "2025-08-31", "expected_purchases": 2568.4, "base_customers": 17322},
         "last_year": {"actual_over_model": 1.13}, "model_old_orders": 2893.2, "plan_old_orders": None,
         "plan_over_model": None}
    assert clv_note(c).endswith("2,893 old-customer orders (no plan to compare with).")
