"""Retention, repurchase, lifecycle and RFM on a hand fixture, properties, and the simulated store.

The hand fixture: every order is paid, at 10:00, amount 100, observation end 2025-03-31 (end of day).

    a  2025-01-01, 01-02 (day 1), 01-08 (day 7), 02-15 (day 45)
    b  2025-01-05, 01-12 (day 7)
    c  2025-01-20
    i  2025-01-15 (and an unpaid order 01-16, which never counts)
    d  2025-02-01, 02-02 (day 1), 03-05 (day 32)
    e  2025-02-10, 03-12 (day 30)
    f  2025-03-01, 03-02 (day 1)
    g  2025-03-25, 03-26 (day 1)
    h  2025-03-31
    p  only an unpaid order, 2025-02-03 (potential)

Observable days (last complete day 03-31 minus first-order date): a 89, b 85, c 70, i 75,
d 58, e 49, f 30, g 6, h 0.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmlab.ingest.readers import load_orders
from crmlab.analyses.lifecycle import gap_distribution, gap_percentile, lifecycle_stages, stage_counts, stage_transitions
from crmlab.analyses.repurchase import next_period_repurchase, period_repurchase_rate
from crmlab.analyses.retention_view import latest_vs_year_before
from crmlab.analyses.retention import retention_table
from crmlab.analyses.rfm import rfm_scores
from conftest import orders_frame, wilson_by_hand

END = "2025-03-31"
ROWS = [("a", "2025-01-01"), ("a", "2025-01-02"), ("a", "2025-01-08"), ("a", "2025-02-15"),
        ("b", "2025-01-05"), ("b", "2025-01-12"), ("c", "2025-01-20"), ("i", "2025-01-15"),
        ("i", "2025-01-16", "unpaid"), ("d", "2025-02-01"), ("d", "2025-02-02"), ("d", "2025-03-05"),
        ("e", "2025-02-10"), ("e", "2025-03-12"), ("f", "2025-03-01"), ("f", "2025-03-02"),
        ("g", "2025-03-25"), ("g", "2025-03-26"), ("h", "2025-03-31"), ("p", "2025-02-03", "unpaid")]


def hand(extra_cols: dict | None = None):
    rows = [(r[0], r[1] + " 10:00:00", 100.0, *r[2:]) for r in ROWS]
    df = orders_frame(rows)
    for k, v in (extra_cols or {}).items():
        df[k] = v
    return load_orders(df, observation_end=END)[0]


def cell(t, cohort, day):
    return t.retained.at[cohort, day], t.eligible.at[cohort, day], t.rates.at[cohort, day]


def test_exact_retention_by_hand():
    t = retention_table(hand(), cohort="month", days=(1, 7, 30, 60), kind="exact")
    assert list(t.size) == [4, 2, 3, 9]  # Jan a b c i; Feb d e; Mar f g h
    # day 1: Jan a of 4; Feb d of 2; Mar f and g of f, g (h has no day 1 yet)
    assert cell(t, "2025-01", 1)[:2] == (1, 4) and cell(t, "2025-02", 1)[:2] == (1, 2)
    assert cell(t, "2025-03", 1)[:2] == (2, 2) and cell(t, "all cohorts", 1)[2] == 0.5
    # day 7: Jan a and b of 4; Feb none of 2; Mar: only f is observable (g has 6 days) and did not return
    assert cell(t, "2025-01", 7)[:2] == (2, 4) and cell(t, "2025-02", 7)[:2] == (0, 2)
    assert cell(t, "2025-03", 7)[:2] == (0, 1) and cell(t, "all cohorts", 7)[2] == pytest.approx(2 / 7)
    # day 30: Jan 0 of 4; Feb e of 2; Mar f observable (30 days), no order
    assert cell(t, "2025-02", 30)[:2] == (1, 2) and cell(t, "all cohorts", 30)[2] == pytest.approx(1 / 7)
    # day 60: Jan 0 of 4; Feb and Mar cannot have reached day 60: NaN, never 0
    assert cell(t, "2025-01", 60)[:2] == (0, 4)
    assert math.isnan(t.rates.at["2025-02", 60]) and t.eligible.at["2025-02", 60] == 0
    assert math.isnan(t.rates.at["2025-03", 60])


def test_on_or_after_and_bracket_retention_by_hand():
    # on or after day 30 up to day 45 (the horizon): eligible when 45 days are observable
    t = retention_table(hand(), days=(30,), kind="on_or_after", horizon_days=45)
    # Jan: a (day 45, the horizon's last day) of 4; Feb: d (day 32, 58 observable) and e (day 30, 49) of 2;
    # Mar: f has 30 days, not 45: censored (the old rule counted it as 0 of 1)
    assert cell(t, "2025-01", 30)[:2] == (1, 4) and cell(t, "2025-02", 30)[:2] == (2, 2)
    assert cell(t, "2025-03", 30)[:2] == (0, 0) and math.isnan(cell(t, "2025-03", 30)[2])
    assert t.horizon_days == 45 and t.to_dict()["horizon_days"] == 45
    # horizon 31: a's day-45 order is after it; e's day 30 counts, d's day 32 does not; f (30 days) censored
    t = retention_table(hand(), days=(30,), kind="on_or_after", horizon_days=31)
    assert cell(t, "2025-01", 30)[:2] == (0, 4) and cell(t, "2025-02", 30)[:2] == (1, 2)
    assert cell(t, "2025-03", 30)[:2] == (0, 0)
    # the default horizon, 180 days: no customer of the fixture has been followed that long
    t = retention_table(hand(), days=(30,), kind="on_or_after")
    assert t.horizon_days == 180 and cell(t, "all cohorts", 30)[:2] == (0, 0)
    with pytest.raises(ValueError, match="horizon_days"):
        retention_table(hand(), days=(30, 60), kind="on_or_after", horizon_days=45)
    with pytest.raises(ValueError, match="on_or_after' only"):
        retention_table(hand(), days=(30,), kind="exact", horizon_days=45)
    b = retention_table(hand(), days=[(1, 7), (8, 30)], kind="bracket")
    # 1-7 needs 7 observable days: Jan a, b of 4; Feb d of 2; Mar f of f (g has 6 days)
    assert cell(b, "2025-01", "1-7")[:2] == (2, 4) and cell(b, "2025-02", "1-7")[:2] == (1, 2)
    assert cell(b, "2025-03", "1-7")[:2] == (1, 1)
    # 8-30: Jan none of 4; Feb e (day 30) of 2; Mar f of 1, no order
    assert cell(b, "2025-01", "8-30")[:2] == (0, 4) and cell(b, "2025-02", "8-30")[:2] == (1, 2)


def test_latest_fully_observable_cohort_in_notebook_02():
    """Notebook 02's headline cohorts: those in which every customer has had the full N days
    (``crmlab.analyses.retention_view.latest_vs_year_before``, what the banner and card read).

    Day 30 on the fixture: Jan (4 of 4 observable) and Feb (2 of 2) qualify; Mar has a rate (f, 0 of 1)
    but g (6 days) and h (0 days) have not had 30 days, so it must not be taken."""
    ret = retention_table(hand(), cohort="month", days=(1, 7, 30), kind="exact")
    assert not math.isnan(ret.rates.at["2025-03", 30]) and ret.eligible.at["2025-03", 30] == 1
    head = latest_vs_year_before(ret, 30, n=1)
    assert head.cohorts == ("2025-02",) and (head.retained, head.eligible) == (1, 2)  # e came back on day 30
    assert latest_vs_year_before(ret, 30, n=3).cohorts == ("2025-01", "2025-02")  # never the young March
    head = latest_vs_year_before(retention_table(hand(), cohort="month", days=(60,), kind="exact"), 60, n=1)
    assert head.cohorts == ("2025-01",)  # Feb's d (58 days) and e (49) have not had 60


def test_cohort_by_channel_and_to_dict_contract():
    o = hand({"channel": ["天猫"] * 10 + ["抖音"] * 10})
    t = retention_table(o, cohort="channel", days=(1,))
    assert set(t.rates.index) == {"天猫", "抖音", "all cohorts"}
    d = t.to_dict()
    assert d["kind"] == "exact" and d["cohorts"][0]["days"]["1"].keys() == {"rate", "eligible", "retained"}


def test_next_period_repurchase_by_hand():
    o = hand()
    nm = next_period_repurchase(o, "next_month")
    # Feb: of Jan buyers {a, b, c, i}, a bought in Feb -> 1/4; Mar: of Feb buyers {a, d, e}, d and e -> 2/3
    assert nm.loc[pd.Period("2025-02", "M"), ["repurchased", "base"]].tolist() == [1, 4]
    assert nm.loc[pd.Period("2025-03", "M"), ["repurchased", "base"]].tolist() == [2, 3]
    lo, hi = wilson_by_hand(2, 3)  # Wilson score interval, closed form
    assert nm.loc[pd.Period("2025-03", "M"), "ci_low"] == pytest.approx(lo)
    assert nm.loc[pd.Period("2025-03", "M"), "ci_high"] == pytest.approx(hi)
    n2 = next_period_repurchase(o, "next_two_months")
    # Mar: of Jan+Feb buyers {a, b, c, i, d, e}, d and e -> 2/6
    assert n2.loc[pd.Period("2025-03", "M"), ["repurchased", "base"]].tolist() == [2, 6]
    assert next_period_repurchase(o, "next_quarter").empty  # one quarter: nothing to compare


def test_period_repurchase_by_hand_and_censored_month():
    p = period_repurchase_rate(hand(), "month")
    # Jan: a, b of 4 buyers; Feb: d of 3; Mar: f, g of 5
    assert p[["repeat_buyers", "buyers"]].to_numpy().tolist() == [[2, 4], [1, 3], [2, 5]]
    assert p["rate"].tolist() == pytest.approx([0.5, 1 / 3, 0.4])
    early = load_orders(orders_frame([(r[0], r[1] + " 10:00:00", 100.0, *r[2:]) for r in ROWS[:-2]]),
                        observation_end="2025-03-30")[0]
    q = period_repurchase_rate(early, "month")
    assert math.isnan(q.loc[pd.Period("2025-03", "M"), "rate"]) and not q.loc[pd.Period("2025-03", "M"), "complete"]


def test_lifecycle_ladder_by_hand():
    s = lifecycle_stages(hand())
    # d: 3 orders (F=5, M=5), 26 days (R=4) -> fan; a: 4 orders but R=2 (44 days, 4th of 9) -> returning
    assert s.loc[["p", "c", "i", "h", "a", "b", "e", "f", "g", "d"], "stage"].tolist() == (
        ["potential"] + ["new"] * 3 + ["returning"] * 5 + ["fan"])
    # a smaller ladder: dormant after 30 days, lost after 70
    s2 = lifecycle_stages(hand(), ladder=(30, 50, 60, 70))
    assert stage_counts(s2)["customers"].to_dict() == {"potential": 1, "new": 1, "returning": 3, "fan": 1,
                                                       "dormant": 2, "lost": 2}
    assert s2.loc[["a", "c"], "stage"].tolist() == ["dormant", "dormant"]  # 44 and 70 days
    assert s2.loc[["b", "i"], "stage"].tolist() == ["lost", "lost"]  # 78 and 75 days


def test_lifecycle_percentile_product_cycle_season_by_hand():
    # Kaplan-Meier of the gaps, open gaps censored, the interval after a buyer's k-th order weighted 1/k:
    #   events (day: weight): 1: a 1 + d 1 + f 1 + g 1 = 4; 6: a .5; 7: b 1; 30: e 1; 31: d .5; 38: a 1/3.
    #   Censored: h 0, g 5, e 19, d 26, f 29, a 44, c 70, i 75, b 78 (weights 1, .5, .5, 1/3, .5,
    #   .25, 1, 1, .5). At risk (weight with duration >= t): 143/12 at day 1, 89/12 at 6, 83/12 at 7,
    #   55/12 at 30, 43/12 at 31, 37/12 at 38. F(t) = 1 - prod(1 - d/n): 0.3357 (1), 0.3805 (6), 0.4700 (7),
    #   0.5857 (30), 0.6435 (31), 0.6820 (38 .. 360). 90% of F(360) = 0.6138 is first reached at day 31.
    #   (The naive 90th percentile of the nine observed gaps was 32.4.)
    s = lifecycle_stages(hand(), rule="percentile")
    assert s["dormancy_threshold"].dropna().unique() == pytest.approx([31.0])
    surv = np.cumprod([1 - 4 / (143 / 12), 1 - 0.5 / (89 / 12), 1 - 1 / (83 / 12), 1 - 1 / (55 / 12),
                       1 - 0.5 / (43 / 12), 1 - (1 / 3) / (37 / 12)])
    d = gap_distribution(hand()).set_index("day")["p_next"]
    assert d[[1, 6, 7, 30, 31, 38, 360]].tolist() == pytest.approx(list(1 - surv) + [1 - surv[-1]], rel=1e-12)
    assert stage_counts(s)["customers"].to_dict() == {"potential": 1, "new": 1, "returning": 3, "fan": 1,
                                                      "dormant": 4, "lost": 0}
    # product cycle: dog food 7 days a unit, c bought a mask (30 days); a's last order was 4 units.
    # Thresholds x 1.5 slack: 10.5 days; a 7*4*1.5 = 42 (44 days since -> dormant); c 45 (70 -> dormant)
    cat = ["pet"] * 20
    cat[6] = "beauty"
    qty = [1] * 20
    qty[3] = 4
    o = hand({"category": cat, "quantity": qty})
    s = lifecycle_stages(o, rule="product_cycle", cycles={"pet": 7, "beauty": 30})
    assert s.loc["a", "dormancy_threshold"] == 42 and s.loc["c", "dormancy_threshold"] == 45
    # dormant: a b c i, and d e f (26, 19, 29 days > 10.5); g (5 days) returning; h new
    assert stage_counts(s)["customers"].to_dict() == {"potential": 1, "new": 1, "returning": 1, "fan": 0,
                                                      "dormant": 7, "lost": 0}
    s = lifecycle_stages(o, rule="season", seasons={"pet": 40, "beauty": 365})
    # 40 days: a (44), b (78), i (75) dormant; c's beauty season is a year
    assert sorted(s.index[s["stage"] == "dormant"]) == ["a", "b", "i"]
    with pytest.raises(ValueError, match="cycles has no consumption days"):
        lifecycle_stages(o, rule="product_cycle", cycles={"pet": 7})


def test_percentile_threshold_where_the_naive_percentile_is_visibly_wrong():
    """Two frequent buyers (16 orders two days apart in December: 30 gaps of 2 days), three buyers
    who come back after 120 days (2025-01-10, 2025-05-10) and one who never did (2025-01-01).

    Naive: 30 of the 33 observed gaps are 2 days, so their 90th percentile is 2 days: S1-S3 would
    be dormant two days after every order. Kaplan-Meier with the interval after a buyer's k-th order
    weighted 1/k (the frequent buyers' 15 gaps weigh H_15 = 1 + 1/2 + ... + 1/15 = 3.3182 each, their open
    gaps are 0 days): day 2: events 2 H_15 = 6.6365 of 12.1365 at risk (6.6365 + S's 3 x (1 + .5) + L1's 1);
    day 120: events 3 of 5.5. F(360) = 1 - (5.5 / 12.1365)(2.5 / 5.5) = 0.7940; F(2) = 0.5468 < 0.9 F(360)
    = 0.7146 <= F(120): 120 days.
    """
    rows = [(c, f"2025-12-{1 + 2 * j:02d} 10:00", 10.0) for c in ("F1", "F2") for j in range(16)]
    rows += [(c, t, 10.0) for c in ("S1", "S2", "S3") for t in ("2025-01-10 10:00", "2025-05-10 10:00")]
    rows += [("L1", "2025-01-01 10:00", 10.0)]
    o = load_orders(orders_frame(rows), observation_end="2025-12-31")[0]
    paid = o.sort_values(["customer_id", "order_time"])
    gaps = paid.groupby("customer_id", observed=True)["order_time"].diff().dropna().dt.days
    assert len(gaps) == 33 and np.quantile(gaps, 0.9) == 2  # the naive threshold
    assert gap_percentile(o, 0.9) == 120
    d = gap_distribution(o).set_index("day")["p_next"]
    h = sum(1 / k for k in range(1, 16))
    n2 = 2 * h + 3 * 1.5 + 1
    assert d[[1, 2, 119, 120, 360]].tolist() == pytest.approx(
        [0, 2 * h / n2, 2 * h / n2, 1 - 2.5 / n2, 1 - 2.5 / n2], rel=1e-12)
    assert set(lifecycle_stages(o, rule="percentile")["dormancy_threshold"]) == {120.0}


def test_stage_transitions_by_hand():
    m = stage_transitions(hand(), "2025-02-28", END)
    # at 02-28: a fan (4 orders, 13 days), b and d returning, c i e new, p potential
    # at 03-31: a returning, d fan, b e f g returning, c i h new
    assert m.at["not yet a customer", "returning"] == 2 and m.at["not yet a customer", "new"] == 1
    assert m.at["new", "new"] == 2 and m.at["new", "returning"] == 1
    assert m.at["returning", "returning"] == 1 and m.at["returning", "fan"] == 1
    assert m.at["fan", "returning"] == 1 and m.at["potential", "potential"] == 1
    assert m.to_numpy().sum() == 10


def test_rfm_scores_handle_ties_and_cut_points():
    s = rfm_scores(hand())
    assert s["F"].between(1, 5).all() and s.loc["d", "score"] == "455"
    one = load_orders(orders_frame([("x", "2025-01-01", 5.0), ("y", "2025-01-01", 5.0)]))[0]
    assert set(rfm_scores(one)["F"]) == {3}  # all tied: one score, no crash on repeated edges
    c = rfm_scores(hand(), cuts={"frequency": [1, 2, 3, 5]})
    assert c.loc["a", "F"] == 4 and c.loc["c", "F"] == 1


# ----------------------------------------------------------------------------- properties

@st.composite
def random_orders(draw):
    n = draw(st.integers(5, 40))
    cust = draw(st.lists(st.integers(0, 12), min_size=n, max_size=n))
    day = draw(st.lists(st.integers(0, 120), min_size=n, max_size=n))
    hour = draw(st.lists(st.integers(0, 23), min_size=n, max_size=n))
    t0 = pd.Timestamp("2025-01-01")
    return orders_frame([(f"c{c}", t0 + pd.Timedelta(days=d, hours=h), 10.0) for c, d, h in zip(cust, day, hour)])


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_orders(), st.integers(0, 400))
def test_retention_properties(df, shift_days):
    end = pd.Timestamp("2025-05-10 23:59:59.999999")
    o = load_orders(df, observation_end=end)[0]
    t = retention_table(o, cohort="day", days=(1, 7, 30), kind="exact")
    r = t.rates.to_numpy(float)
    assert np.all((r[np.isfinite(r)] >= 0) & (r[np.isfinite(r)] <= 1))
    assert np.all(np.isnan(r) == (t.eligible.to_numpy() == 0))  # a censored cell is NaN, never 0
    # shifting every time (and the observation end) by whole days changes nothing
    s = df.copy()
    s["order_time"] = pd.to_datetime(s["order_time"]) + pd.Timedelta(days=shift_days)
    ts = retention_table(load_orders(s, observation_end=end + pd.Timedelta(days=shift_days))[0], cohort="day",
                         days=(1, 7, 30))
    np.testing.assert_array_equal(t.eligible.to_numpy(), ts.eligible.to_numpy())
    np.testing.assert_array_equal(t.retained.to_numpy(), ts.retained.to_numpy())
    # customers whose first order is after the last eligible date for day 7 change no day-7 cell
    late = orders_frame([(f"late{i}", end - pd.Timedelta(days=i % 6, hours=2), 5.0) for i in range(6)])
    late["order_id"] = "L" + late["order_id"]
    tl = retention_table(load_orders(pd.concat([df, late]), observation_end=end)[0], cohort="month", days=(7,))
    t7 = retention_table(o, cohort="month", days=(7,))
    for c in t7.rates.index:
        assert tl.eligible.at[c, 7] == t7.eligible.at[c, 7] and tl.retained.at[c, 7] == t7.retained.at[c, 7]


# ----------------------------------------------------------------------------- simulated store

def test_lifecycle_counts_match_planted_truth(store_orders, store_truth):
    counts = stage_counts(lifecycle_stages(store_orders[0]))["customers"]
    truth = store_truth["lifecycle_counts_ladder"]
    assert counts["potential"] == truth["potential"] and counts["new"] == truth["new"]
    assert counts["returning"] + counts["fan"] == truth["returning"]
    assert counts["dormant"] == truth["dormant"] and counts["lost"] == truth["lost"]
