"""Every boundary and method choice of the stable statistics, pinned at the edge and one unit
either side, each against an expectation written out by hand from the definitions (docs/methods/definitions.md)
(issue #18: mutation testing found a `<=` turned into `<` that no test noticed).

The unit is one second for times (the at-risk rule, the repurchase window, phase days), one
calendar day for day counts (retention day N, the dormancy ladder), one cent for amounts,
one character for SMS parts. Independent references: the definitions (docs/methods/definitions.md) computed by
hand below; Wilson's closed form (``conftest.wilson_by_hand``); for Kaplan–Meier, the
empirical distribution (equal to it when nobody is censored before the window ends).
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from crmlab.ingest.readers import load_orders
from crmlab.analyses.lifecycle import lifecycle_stages
from crmlab.analyses.magic import repurchase_curve
from crmlab.stats.proportion import rate_frame, wilson
from crmlab.analyses.repurchase import next_period_repurchase, period_repurchase_rate
from crmlab.analyses.retention import retention_table
from crmlab.experiments.sms import sms_segments
from conftest import orders_frame, wilson_by_hand

SEC = pd.Timedelta(seconds=1)
DAY = pd.Timedelta(days=1)


def load(rows, end):
    return load_orders(orders_frame([(c, str(t), a, *rest) for c, t, a, *rest in rows]), observation_end=end)


def stamp(t) -> str:
    return pd.Timestamp(t).strftime("%Y-%m-%d %H:%M:%S")


# ----------------------------------------------------------------------------- magic: at risk, window

END_M = pd.Timestamp("2025-06-30 12:00:00")  # an observation end with a time: no end-of-day rounding


def test_at_risk_edge_kth_order_exactly_one_window_before_the_end():
    """At risk: the k-th order is at least ``window_days`` before the observation end, so an
    order at end − W exactly is at risk, one second earlier too, one second later not.
    Customers a* sit at the edge of W = 90, b* at the edge of W = 30 (and so well inside
    W = 30's at-risk set are the a*); ``old`` is at risk for both."""
    rows = [("old", "2025-01-02 00:00:00", 10.0)]
    for name, w in (("a", 90), ("b", 30)):
        for tag, shift in (("-1s", -SEC), ("0", pd.Timedelta(0)), ("+1s", SEC)):
            rows.append((name + tag, stamp(END_M - pd.Timedelta(days=w) + shift), 10.0))
    o, _ = load(rows, stamp(END_M))
    t90 = repurchase_curve(o, window_days=90, max_k=1).table.loc[1]
    assert (t90["customers"], t90["at_risk"], t90["repurchased"]) == (7, 3, 0)   # old, a-1s, a0
    t30 = repurchase_curve(o, window_days=30, max_k=1).table.loc[1]
    assert (t30["customers"], t30["at_risk"], t30["repurchased"]) == (7, 6, 0)   # all but b+1s
    # the same orders seen one second later: a+1s and b+1s join
    t90 = repurchase_curve(o, window_days=90, max_k=1, observation_end=stamp(END_M + SEC)).table.loc[1]
    assert t90["at_risk"] == 4


def test_repurchase_window_edge_gap_exactly_w_counts():
    """Repurchased: order k+1 within ``window_days`` of order k, inclusive: a gap of exactly
    90 days counts (x0), one second less too (x-), one second more not (x+). The customer
    y (one order, in view for 180 days) is at risk too; Kaplan–Meier at day 90 agrees,
    since no one is censored before day 90 (the KM estimate is then the empirical share)."""
    t0 = pd.Timestamp("2025-01-01 08:00:00")
    rows = [("y", "2025-01-01 09:00:00", 10.0)]
    for tag, shift in (("x-", -SEC), ("x0", pd.Timedelta(0)), ("x+", SEC)):
        rows += [(tag, stamp(t0), 10.0), (tag, stamp(t0 + 90 * DAY + shift), 10.0)]
    o, _ = load(rows, stamp(END_M))
    row = repurchase_curve(o, window_days=90, max_k=1).table.loc[1]
    assert (row["at_risk"], row["repurchased"]) == (4, 2)
    assert row["rate"] == pytest.approx(2 / 4)
    assert row["km_rate"] == pytest.approx(2 / 4)
    assert row["naive_rate"] == pytest.approx(3 / 4)  # customers with an order 2, whatever the gap
    lo, hi = wilson_by_hand(2, 4)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((lo, hi))
    # a window one day longer takes x+ in; one day shorter leaves all three out
    assert repurchase_curve(o, window_days=91, max_k=1).table.loc[1, "repurchased"] == 3
    assert repurchase_curve(o, window_days=89, max_k=1).table.loc[1, "repurchased"] == 0


def test_at_risk_edge_for_k_two_and_min_at_risk_edge():
    """The same rule for k = 2 (the k-th order, not the first), and ``enough`` is
    at_risk >= min_at_risk: 2 at risk with min_at_risk 2 is enough, with 3 it is not."""
    edge = END_M - 90 * DAY
    rows = [("x", "2025-01-01 00:00:00", 1.0), ("x", stamp(edge), 1.0),
            ("z", "2025-01-01 00:00:00", 1.0), ("z", stamp(edge + SEC), 1.0),
            ("w", "2025-01-01 00:00:00", 1.0), ("w", stamp(edge - SEC), 1.0)]
    o, _ = load(rows, stamp(END_M))
    t = repurchase_curve(o, window_days=90, max_k=2, min_at_risk=2).table
    assert t.loc[2, "customers"] == 3 and t.loc[2, "at_risk"] == 2 and bool(t.loc[2, "enough"])
    t3 = repurchase_curve(o, window_days=90, max_k=2, min_at_risk=3).table
    assert not bool(t3.loc[2, "enough"]) and bool(t3.loc[1, "enough"])


# ----------------------------------------------------------------------------- retention: day N

def _by_day(t, first: str, day):
    return int(t.retained.at[first, day]), int(t.eligible.at[first, day]), t.rates.at[first, day]


# one customer per first-order date (cohort="day"), observation end 2025-03-31 (end of day)
RET = [("c7", "2025-01-01 10:00:00"), ("c7", "2025-01-08 10:00:00"),     # day 7
       ("c8", "2025-01-02 23:59:59"), ("c8", "2025-01-10 00:00:00"),     # day 8 (calendar days)
       ("c30", "2025-01-03 00:00:00"), ("c30", "2025-02-02 23:59:59"),   # day 30
       ("c31", "2025-01-04 12:00:00"), ("c31", "2025-02-04 12:00:00"),   # day 31
       ("c1", "2025-01-05 23:30:00"), ("c1", "2025-01-06 00:05:00"),     # 35 minutes later, day 1
       ("c0", "2025-01-06 00:05:00"), ("c0", "2025-01-06 23:55:00"),     # same date: day 0
       ("young", "2025-03-02 10:00:00"), ("young", "2025-03-10 10:00:00"),  # 29 days observed, day 8
       ("just", "2025-03-01 10:00:00"), ("just", "2025-03-09 10:00:00")]    # 30 days observed, day 8


@pytest.fixture(scope="module")
def ret_orders():
    return load([(c, t, 5.0) for c, t in RET], "2025-03-31")[0]


def test_retention_exact_day_n_edges(ret_orders):
    t = retention_table(ret_orders, cohort="day", days=(1, 7, 8, 30), kind="exact")
    assert _by_day(t, "2025-01-05", 1)[:2] == (1, 1)       # c1: 23:30 -> 00:05 is day 1
    assert _by_day(t, "2025-01-06", 1)[:2] == (0, 1)       # c0: same date is day 0
    assert _by_day(t, "2025-01-01", 7)[:2] == (1, 1)       # c7 on day 7 ...
    assert _by_day(t, "2025-01-01", 8)[:2] == (0, 1)       # ... not on day 8
    assert _by_day(t, "2025-01-02", 7)[:2] == (0, 1)       # c8 not on day 7 ...
    assert _by_day(t, "2025-01-02", 8)[:2] == (1, 1)       # ... on day 8
    assert _by_day(t, "2025-01-03", 30)[:2] == (1, 1)      # c30 on day 30 (23:59:59 still day 30)
    assert _by_day(t, "2025-01-04", 30)[:2] == (0, 1)      # c31 is a day late
    assert _by_day(t, "2025-03-02", 8)[:2] == (1, 1)       # young: 29 days observed >= 8
    assert _by_day(t, "2025-03-02", 30)[:2] == (0, 0)      # ... < 30: censored, NaN not 0
    assert math.isnan(_by_day(t, "2025-03-02", 30)[2])
    assert _by_day(t, "2025-03-01", 30)[:2] == (0, 1)      # just: exactly 30 days observed: eligible
    # all cohorts day 30: eligible c7 c8 c30 c31 c1 c0 just = 7 (young is not); retained c30
    assert _by_day(t, "all cohorts", 30) == (1, 7, pytest.approx(1 / 7))


def test_retention_bracket_edges_and_eligibility_at_the_bracket_end(ret_orders):
    """A bracket [8, 30] holds its ends; a customer is eligible only once day 30 (its end,
    not its start) is complete."""
    t = retention_table(ret_orders, cohort="day", days=[(8, 30)], kind="bracket")
    b = "8-30"
    assert _by_day(t, "2025-01-01", b)[:2] == (0, 1)   # day 7: before the bracket
    assert _by_day(t, "2025-01-02", b)[:2] == (1, 1)   # day 8: its first day
    assert _by_day(t, "2025-01-03", b)[:2] == (1, 1)   # day 30: its last day
    assert _by_day(t, "2025-01-04", b)[:2] == (0, 1)   # day 31: after it
    assert _by_day(t, "2025-03-02", b)[:2] == (0, 0)   # young: day 8 order, but day 30 not observed
    assert _by_day(t, "2025-03-01", b)[:2] == (1, 1)   # just: 30 days observed


def test_retention_on_or_after_edges(ret_orders):
    """On or after day N within a fixed horizon H: a paid order on days N..H; a customer
    without H days of follow-up is censored (issue 25: one follow-up for every cohort)."""
    t = retention_table(ret_orders, cohort="day", days=(30,), kind="on_or_after", horizon_days=31)
    assert [_by_day(t, d, 30)[:2] for d in ("2025-01-01", "2025-01-02", "2025-01-03", "2025-01-04")] == \
        [(0, 1), (0, 1), (1, 1), (1, 1)]   # last order day 7, 8, 30, 31: days 30..31 count
    assert _by_day(t, "2025-03-02", 30)[:2] == (0, 0)
    assert _by_day(t, "2025-03-01", 30)[:2] == (0, 0)   # 30 days observed, the horizon's day 31 not: censored
    t = retention_table(ret_orders, cohort="day", days=(30,), kind="on_or_after", horizon_days=30)
    assert _by_day(t, "2025-03-01", 30)[:2] == (0, 1) and _by_day(t, "2025-01-04", 30)[:2] == (0, 1)


def test_retention_day_n_eligibility_edge():
    """Day N is observed when the observation end reaches the end of day N's date."""
    o, _ = load([("x", "2025-01-10 10:00:00", 1.0), ("x", "2025-01-17 09:00:00", 1.0)], "2025-01-31")
    for end, eligible in [
        ("2025-01-17", 1),                    # a bare date: the whole of 01-17, day 7 complete
        ("2025-01-17 23:59:59.999999", 1),    # the last microsecond of day 7
        ("2025-01-17 23:59:59", 0),           # one second short: day 7 not complete
        ("2025-01-18 00:00:00", 1),
        ("2025-01-16", 0),                    # a whole day short
    ]:
        t = retention_table(o, cohort="month", days=(7,), kind="exact", observation_end=end)
        assert _by_day(t, "2025-01", 7)[:2] == (eligible, eligible), end


def test_retention_day_n_eligibility_at_the_microsecond():
    """Two microseconds short of the end of day 7 is not day 7 complete (the rule adds exactly one)."""
    o, _ = load([("x", "2025-01-10 10:00:00", 1.0), ("x", "2025-01-17 09:00:00", 1.0)], "2025-01-31")
    t = retention_table(o, cohort="month", days=(7,), observation_end="2025-01-17 23:59:59.999998")
    assert _by_day(t, "2025-01", 7)[:2] == (0, 0)


def test_retention_single_day_bracket_equals_exact_day_and_arguments_are_checked(ret_orders):
    b = retention_table(ret_orders, cohort="day", days=[(8, 8), (1, 1)], kind="bracket")
    e = retention_table(ret_orders, cohort="day", days=(8, 1), kind="exact")
    assert b.retained.to_numpy().tolist() == e.retained.to_numpy().tolist()
    assert b.eligible.to_numpy().tolist() == e.eligible.to_numpy().tolist()
    assert list(b.rates.columns) == ["8-8", "1-1"] and list(e.rates.columns) == [8, 1]
    messages = {
        "brackets are (start, end) with 1 <= start <= end": [dict(days=[(0, 3)], kind="bracket"),
                                                             dict(days=[(5, 3)], kind="bracket"),
                                                             dict(days=[(0, 0)], kind="bracket")],
        "days must be >= 1 (day 0 is the first order itself)": [dict(days=(0,)), dict(days=(-1, 7))],
        "kind must be one of ('exact', 'on_or_after', 'bracket'), not 'between'": [dict(kind="between")],
        "cohort must be day, week, month or channel, not 'year'": [dict(cohort="year")],
        "cohort='channel' needs a 'channel' column in the orders": [dict(cohort="channel")],
    }
    for text, calls in messages.items():
        for kw in calls:
            with pytest.raises(ValueError) as e:
                retention_table(ret_orders, **kw)
            assert str(e.value) == text, kw
    from crmlab.ingest.readers import CrmlabInputError

    with pytest.raises(CrmlabInputError, match="--engine"):
        retention_table(ret_orders, engine="no-such-engine")   # the engine argument is used


def test_retention_cohort_labels_week_day_channel_and_the_result_contract():
    rows = [("a", "2025-01-05 23:59:59", 1.0), ("a", "2025-01-06 10:00:00", 1.0),   # Sunday: week of 12-30
            ("b", "2025-01-06 00:00:00", 1.0),                                       # Monday: week of 01-06
            ("c", "2025-01-12 23:59:59", 1.0)]                                       # Sunday: week of 01-06
    df = orders_frame(rows)
    df["channel"] = ["app", "app", None, "web"]
    o = load_orders(df, observation_end="2025-01-31")[0]
    w = retention_table(o, cohort="week", days=(1,))
    assert list(w.size.index) == ["2024-12-30 (week)", "2025-01-06 (week)", "all cohorts"]
    assert w.size.tolist() == [1, 2, 3] and w.retained[1].tolist() == [1, 0, 1]
    d = retention_table(o, cohort="day", days=(1,))
    assert list(d.size.index) == ["2025-01-05", "2025-01-06", "2025-01-12", "all cohorts"]
    m = retention_table(o, cohort="month", days=(1,))
    assert list(m.size.index) == ["2025-01", "all cohorts"]
    c = retention_table(o, cohort="channel", days=(1,))
    # by size, largest first, then by name; a missing channel is "(none)"
    assert list(c.size.index) == ["(none)", "app", "web", "all cohorts"]
    o2 = load_orders(df.assign(channel=["web", "web", "app", "zz"]), observation_end="2025-01-31")[0]
    c2 = retention_table(o2, cohort="channel", days=(1,))
    assert list(c2.size.index) == ["app", "web", "zz", "all cohorts"] and c2.size.tolist() == [1, 1, 1, 3]
    o3 = load_orders(df.assign(channel=["zz", "zz", "app", "zz"]), observation_end="2025-01-31")[0]
    c3 = retention_table(o3, cohort="channel", days=(1,))
    assert list(c3.size.index) == ["zz", "app", "all cohorts"] and c3.size.tolist() == [2, 1, 3]
    for t in (w, d, c):
        assert t.rates.index.name == t.eligible.index.name == t.retained.index.name == t.size.index.name == "cohort"
        assert t.rates.dtypes.eq(float).all() and t.eligible.dtypes.eq(int).all() and t.retained.dtypes.eq(int).all()
        assert t.size.dtype == int
    assert (w.kind, w.cohort, c.cohort, w.observation_end) == ("exact", "week", "channel",
                                                              pd.Timestamp("2025-01-31 23:59:59.999999"))


def test_retention_to_frame_and_to_dict_contract(ret_orders):
    t = retention_table(ret_orders, cohort="month", days=(8, 30), kind="exact")
    f = t.to_frame().set_index(["cohort", "day"])
    assert list(f.columns) == ["size", "eligible", "retained", "rate", "ci_low", "ci_high"]
    assert f[["rate", "ci_low", "ci_high"]].dtypes.eq(np.float64).all()   # NaN for a censored cell, not None
    # March: young and just, both back on day 8; day 30 only just is observed, and did not come back
    assert f.loc[("2025-03", 8)].tolist()[:3] == [2, 2, 2] and f.at[("2025-03", 8), "rate"] == 1.0
    assert f.loc[("2025-03", 30), ["size", "eligible", "retained", "rate"]].tolist() == [2, 1, 0, 0.0]
    jan = f.loc[("2025-01", 8)]
    assert (jan["eligible"], jan["retained"]) == (6, 1)      # c8 of c7 c8 c30 c31 c1 c0
    assert (jan["ci_low"], jan["ci_high"]) == pytest.approx(wilson_by_hand(1, 6))
    young = retention_table(ret_orders, cohort="day", days=(30,)).to_frame().set_index(["cohort", "day"])
    assert young.loc[("2025-03-02", 30), "eligible"] == 0
    assert np.isnan(young.loc[("2025-03-02", 30), ["rate", "ci_low", "ci_high"]].to_numpy(float)).all()
    d = retention_table(ret_orders, cohort="day", days=(30,)).to_dict()
    assert d["observation_end"] == "2025-03-31 23:59:59.999999" and d["kind"] == "exact" and d["cohort_by"] == "day"
    by = {c["cohort"]: c for c in d["cohorts"]}
    assert by["2025-03-02"] == {"cohort": "2025-03-02", "size": 1, "days": {"30": {"rate": None, "eligible": 0,
                                                                                 "retained": 0}}}
    assert by["2025-01-03"]["days"]["30"] == {"rate": 1.0, "eligible": 1, "retained": 1}
    assert by["all cohorts"]["size"] == 8


# ----------------------------------------------------------------------------- repurchase: periods

def test_period_repurchase_two_orders_in_the_period_and_month_edges():
    rows = [("m2", "2025-01-01 00:00:00", 1.0), ("m2", "2025-01-31 23:59:59", 1.0),   # 2 in Jan
            ("mx", "2025-01-31 23:59:59", 1.0), ("mx", "2025-02-01 00:00:00", 1.0)]   # 1 in Jan, 1 in Feb
    o, _ = load(rows, "2025-02-28")
    r = period_repurchase_rate(o, freq="month")
    jan, feb = r.loc[pd.Period("2025-01", "M")], r.loc[pd.Period("2025-02", "M")]
    assert (jan["buyers"], jan["repeat_buyers"], jan["rate"]) == (2, 1, 0.5)
    assert (feb["buyers"], feb["repeat_buyers"], feb["rate"], bool(feb["complete"])) == (1, 0, 0.0, True)
    # one second before the end of February: February is censored (NaN, not 0)
    o2, _ = load(rows, "2025-02-28 23:59:59")
    feb2 = period_repurchase_rate(o2, freq="month").loc[pd.Period("2025-02", "M")]
    assert not bool(feb2["complete"]) and math.isnan(feb2["rate"]) and feb2["buyers"] == 1


def test_period_repurchase_weeks_run_monday_to_sunday():
    # 2025-01-05 is a Sunday, 2025-01-06 a Monday
    rows = [("w", "2025-01-05 23:59:59", 1.0), ("w", "2025-01-06 00:00:00", 1.0),   # two weeks
            ("v", "2025-01-06 00:00:00", 1.0), ("v", "2025-01-12 23:59:59", 1.0)]   # one week
    o, _ = load(rows, "2025-01-31")
    r = period_repurchase_rate(o, freq="week")
    first, second = r.loc[pd.Period("2025-01-05", "W-SUN")], r.loc[pd.Period("2025-01-06", "W-SUN")]
    assert (first["buyers"], first["repeat_buyers"]) == (1, 0)
    assert (second["buyers"], second["repeat_buyers"], second["rate"]) == (2, 1, 0.5)


NEXT = [("n1", "2025-01-31 23:59:59", 1.0), ("n1", "2025-02-01 00:00:00", 1.0),
        ("n2", "2025-01-15 12:00:00", 1.0), ("n2", "2025-03-31 23:59:59", 1.0),
        ("n3", "2025-02-28 23:59:59", 1.0), ("n3", "2025-04-01 00:00:00", 1.0)]
# buyers: Jan {n1, n2}, Feb {n1, n3}, Mar {n2}, Apr {n3}; Q1 {n1, n2, n3}, Q2 {n3}


def _np(r, p):
    row = r.loc[pd.Period(p, "Q" if "Q" in p else "M")]
    return int(row["repurchased"]), int(row["base"]), row["rate"], bool(row["complete"])


def test_next_period_repurchase_bases_by_hand():
    o, _ = load(NEXT, "2025-04-30")
    m = next_period_repurchase(o, "next_month")
    assert list(m.index.astype(str)) == ["2025-02", "2025-03", "2025-04"]
    assert _np(m, "2025-02")[:3] == (1, 2, 0.5)      # Jan's n1 n2; n1 back in Feb (one second later)
    assert _np(m, "2025-03")[:3] == (0, 2, 0.0)      # Feb's n1 n3; n2 (Mar) was not a Feb buyer
    assert _np(m, "2025-04") == (0, 1, 0.0, True)    # Mar's n2
    two = next_period_repurchase(o, "next_two_months")
    assert list(two.index.astype(str)) == ["2025-03", "2025-04"]
    assert _np(two, "2025-03")[:3] == (1, 3, pytest.approx(1 / 3))   # Jan+Feb n1 n2 n3; n2 back in Mar
    assert _np(two, "2025-04")[:3] == (1, 3, pytest.approx(1 / 3))   # Feb+Mar n1 n3 n2; n3 back in Apr
    q = next_period_repurchase(o, "next_quarter")
    r, b, rate, complete = _np(q, "2025Q2")
    assert (r, b, complete) == (1, 3, False) and math.isnan(rate)    # Q2 not over: censored


def test_next_period_censored_one_second_before_the_month_ends():
    o, _ = load(NEXT, "2025-04-30 23:59:59")
    r, b, rate, complete = _np(next_period_repurchase(o, "next_month"), "2025-04")
    assert (r, b, complete) == (0, 1, False) and math.isnan(rate)


PERIOD_COLUMNS = ["repeat_buyers", "buyers", "rate", "ci_low", "ci_high", "complete"]
NEXT_COLUMNS = ["repurchased", "base", "rate", "ci_low", "ci_high", "complete"]


def test_period_repurchase_contract_frequencies_arguments_and_the_microsecond_edge():
    rows = [("m2", "2025-01-01 00:00:00", 1.0), ("m2", "2025-01-31 23:59:59", 1.0),
            ("mx", "2025-01-31 23:59:59", 1.0), ("mx", "2025-02-01 00:00:00", 1.0)]
    o, _ = load(rows, "2025-03-31")
    m = period_repurchase_rate(o)                                          # month by default
    assert list(m.columns) == PERIOD_COLUMNS and m.index.name == "period"
    assert [str(p) for p in m.index] == ["2025-01", "2025-02"]
    for alias in ("month", "M"):
        pd.testing.assert_frame_equal(period_repurchase_rate(o, freq=alias), m)
    w = period_repurchase_rate(o, freq="week")
    for alias in ("W", "W-SUN"):                                            # pandas' own name passes too
        pd.testing.assert_frame_equal(period_repurchase_rate(o, freq=alias), w)
    q = period_repurchase_rate(o, freq="quarter")
    pd.testing.assert_frame_equal(period_repurchase_rate(o, freq="Q"), q)
    assert q.index.name == "period" and q.loc[pd.Period("2025Q1", "Q"), ["repeat_buyers", "buyers"]].tolist() == [2, 2]
    with pytest.raises(ValueError) as e:
        period_repurchase_rate(o, freq="day")
    assert str(e.value) == "freq must be week, month or quarter, not 'day'"
    from crmlab.ingest.readers import CrmlabInputError

    with pytest.raises(CrmlabInputError, match="--engine"):
        period_repurchase_rate(o, engine="no-such-engine")
    # the observation_end argument: February complete at its last microsecond, not two short
    feb = pd.Period("2025-02", "M")
    assert bool(period_repurchase_rate(o, observation_end="2025-02-28 23:59:59.999999").at[feb, "complete"])
    cut = period_repurchase_rate(o, observation_end="2025-02-28 23:59:59.999998")
    assert not bool(cut.at[feb, "complete"]) and math.isnan(cut.at[feb, "rate"])
    assert cut.loc[pd.Period("2025-01", "M"), ["repeat_buyers", "buyers"]].tolist() == [1, 2]
    assert cut.loc[feb, ["repeat_buyers", "buyers"]].tolist() == [0, 1]    # observed counts kept when censored
    # a censored period keeps the repeat buyers seen so far (here 1), its rate stays NaN
    o2, _ = load(rows + [("mx", "2025-02-10 00:00:00", 1.0)], "2025-02-20")
    f2 = period_repurchase_rate(o2)
    assert f2.loc[feb, ["repeat_buyers", "buyers"]].tolist() == [1, 1] and math.isnan(f2.at[feb, "rate"])


def test_next_period_contract_gaps_empty_results_and_quarters():
    o, _ = load(NEXT, "2025-06-30")
    m = next_period_repurchase(o)                                          # next_month by default
    pd.testing.assert_frame_equal(m, next_period_repurchase(o, "next_month"))
    assert list(m.columns) == NEXT_COLUMNS and m.index.name == "period"
    q = next_period_repurchase(o, "next_quarter")
    assert list(q.index.astype(str)) == ["2025Q2"] and _np(q, "2025Q2") == (1, 3, pytest.approx(1 / 3), True)
    with pytest.raises(ValueError) as e:
        next_period_repurchase(o, "next_week")
    assert str(e.value) == "kind must be one of ['next_month', 'next_two_months', 'next_quarter'], not 'next_week'"
    from crmlab.ingest.readers import CrmlabInputError

    with pytest.raises(CrmlabInputError, match="--engine"):
        next_period_repurchase(o, engine="no-such-engine")
    cut = next_period_repurchase(o, observation_end="2025-04-30 23:59:59")  # the argument is used
    assert _np(cut, "2025-04")[1:2] == (1,) and not _np(cut, "2025-04")[3]
    # a month with no buyers: the next month's base is 0 (rate NaN), not missing
    gap, _ = load([("g", "2025-01-10 10:00:00", 1.0), ("h", "2025-03-10 10:00:00", 1.0)], "2025-03-31")
    g = next_period_repurchase(gap, "next_month")
    assert list(g.index.astype(str)) == ["2025-02", "2025-03"]
    assert _np(g, "2025-02")[:2] == (0, 1) and _np(g, "2025-03")[:2] == (0, 0) and math.isnan(_np(g, "2025-03")[2])
    # nothing to compare: an empty frame with the same columns
    one, _ = load([("g", "2025-01-10 10:00:00", 1.0)], "2025-01-31")
    assert list(next_period_repurchase(one, "next_month").columns) == NEXT_COLUMNS
    assert next_period_repurchase(one, "next_month").empty
    unpaid, _ = load([("g", "2025-01-10 10:00:00", 1.0, "unpaid")], "2025-01-31")
    e2 = next_period_repurchase(unpaid, "next_two_months")
    assert e2.empty and list(e2.columns) == NEXT_COLUMNS


# ----------------------------------------------------------------------------- lifecycle ladder

LC_END = pd.Timestamp("2025-12-31")
LADDER_DAYS = {90: ("new", "active 活跃"), 91: ("dormant", "silent 沉默"), 180: ("dormant", "silent 沉默"),
               181: ("dormant", "sleeping 睡眠"), 270: ("dormant", "sleeping 睡眠"),
               271: ("dormant", "sleeping 睡眠 (>270)"), 360: ("dormant", "sleeping 睡眠 (>270)"),
               361: ("lost", "lost 流失"), 0: ("new", "active 活跃"), 89: ("new", "active 活跃")}


def test_lifecycle_ladder_edges_day_90_91_and_360_361():
    """Dormant past the first step: 90 days since the last paid order is still active,
    91 is dormant; lost is more than 360 days. Days are calendar days between dates, so
    the order's time of day does not matter (23:59:59 here)."""
    rows = [(f"d{d}", f"{(LC_END - d * DAY):%Y-%m-%d} 23:59:59", 10.0) for d in LADDER_DAYS]
    o, _ = load(rows, "2025-12-31")
    s = lifecycle_stages(o)
    for d, (stage, step) in LADDER_DAYS.items():
        assert (s.at[f"d{d}", "days_since_last"], s.at[f"d{d}", "stage"], s.at[f"d{d}", "ladder_step"]) == \
            (d, stage, step), d
    assert (s["dormancy_threshold"] == 90).all()


def test_lifecycle_as_of_moves_the_edge():
    """As of an earlier day the same orders are a day fresher: day 91 at the end is day 90
    a day before."""
    o, _ = load([("x", "2025-10-01 00:00:00", 1.0), ("y", "2025-01-01 00:00:00", 1.0)], "2025-12-31")
    assert lifecycle_stages(o).at["x", "stage"] == "dormant"           # 2025-10-01 + 91 = 12-31
    assert lifecycle_stages(o, as_of="2025-12-30").at["x", "stage"] == "new"


# ----------------------------------------------------------------------------- validation: amounts

AMOUNTS = {"p0": ("paid", 0.0, True), "p-0.01": ("paid", -0.01, False), "p0.01": ("paid", 0.01, True),
           "p-1000": ("paid", -1000.0, False), "u-0.01": ("unpaid", -0.01, True),
           "r-0.01": ("refunded", -0.01, True), "c-0.01": ("cancelled", -0.01, True), "u0": ("unpaid", 0.0, True)}


def test_negative_amount_exclusion_edge():
    """A negative amount on a paid order is excluded; zero is kept; a negative amount on an
    order that is not paid is kept (it is never a purchase)."""
    o, led = load([(c, "2025-01-02 10:00:00", a, s) for c, (s, a, _) in AMOUNTS.items()], "2025-01-31")
    amounts = dict(zip(o["customer_id"].astype(str), o["amount"]))
    assert amounts == {c: a for c, (_, a, kept) in AMOUNTS.items() if kept}
    assert led.excluded == {"negative_amount_on_paid_order": 2}
    assert led.examples["negative_amount_on_paid_order"] == [2, 4]  # 1-based rows


def test_negative_amount_edge_from_csv_text_and_from_quantity_times_price(tmp_path):
    p = tmp_path / "o.csv"
    p.write_text("customer_id,order_id,order_time,amount,status\n"
                 "a,o1,2025-01-01 10:00:00,0,paid\n"
                 "b,o2,2025-01-01 10:00:00,0.00,paid\n"
                 "c,o3,2025-01-01 10:00:00,-0.01,paid\n"
                 "d,o4,2025-01-01 10:00:00,-0.01,unpaid\n"
                 "e,o5,2025-01-01 10:00:00,0.01,paid\n", encoding="utf-8")
    o, led = load_orders(p, observation_end="2025-01-31")
    assert sorted(o["customer_id"].astype(str)) == ["a", "b", "d", "e"]
    assert led.excluded == {"negative_amount_on_paid_order": 1}
    assert led.examples["negative_amount_on_paid_order"] == [3]  # 1-based data rows
    q = pd.DataFrame({"customer_id": ["a", "b", "c"], "order_id": ["o1", "o2", "o3"],
                      "order_time": ["2025-01-01 10:00:00"] * 3, "quantity": [1, 0, 2],
                      "unit_price": [-0.01, 9.0, 0.0], "status": ["paid"] * 3})
    o, led = load_orders(q, observation_end="2025-01-31")
    assert sorted(o["customer_id"].astype(str)) == ["b", "c"] and led.excluded == {"negative_amount_on_paid_order": 1}
    assert o["amount"].tolist() == [0.0, 0.0]


# ----------------------------------------------------------------------------- Wilson

@pytest.mark.parametrize("x, n", [(0, 10), (3, 10), (10, 10), (1, 1), (0, 1), (50, 200), (199, 200)])
def test_wilson_equals_its_closed_form(x, n):
    lo, hi = wilson([x], [n])
    assert (lo[0], hi[0]) == pytest.approx(wilson_by_hand(x, n), abs=1e-12)
    lo90, hi90 = wilson([x], [n], alpha=0.10)
    assert (lo90[0], hi90[0]) == pytest.approx(wilson_by_hand(x, n, z=1.6448536269514722), abs=1e-12)


def test_wilson_and_rate_frame_with_an_empty_cell():
    lo, hi = wilson([0, 2], [0, 4])
    assert np.isnan(lo[0]) and np.isnan(hi[0])
    assert (lo[1], hi[1]) == pytest.approx(wilson_by_hand(2, 4))
    f = rate_frame([0, 2, 3], [0, 4, 3])
    assert np.isnan(f["rate"].iloc[0]) and f["rate"].iloc[1:].tolist() == [0.5, 1.0]
    assert f["ci_low"].iloc[2] == pytest.approx(wilson_by_hand(3, 3)[0])


def test_rate_frame_names_types_and_alpha():
    f = rate_frame([1, 0], [4, 0], index=["a", "b"], alpha=0.10, names=("buyers", "targeted"))
    assert list(f.columns) == ["buyers", "targeted", "rate", "ci_low", "ci_high"] and list(f.index) == ["a", "b"]
    assert f["buyers"].dtype == np.int64 and f["targeted"].dtype == np.int64
    assert f["buyers"].tolist() == [1, 0] and f["targeted"].tolist() == [4, 0]
    assert (f.at["a", "ci_low"], f.at["a", "ci_high"]) == pytest.approx(wilson_by_hand(1, 4, z=1.6448536269514722))
    assert f.loc["b", ["rate", "ci_low", "ci_high"]].isna().all()
    g = rate_frame([1], [4])
    assert list(g.columns[:2]) == ["numerator", "denominator"]
    assert (g.at[0, "ci_low"], g.at[0, "ci_high"]) == pytest.approx(wilson_by_hand(1, 4))


# ----------------------------------------------------------------------------- SMS parts

@pytest.mark.parametrize("scheme, text, parts", [
    ("cn", "好" * 70, 1), ("cn", "好" * 71, 2), ("cn", "a" * 134, 2), ("cn", "a" * 135, 3), ("cn", "", 1),
    ("gsm", "a" * 160, 1), ("gsm", "a" * 161, 2), ("gsm", "a" * 306, 2), ("gsm", "a" * 307, 3),
    ("gsm", "a" * 159 + "{", 2), ("gsm", "a" * 158 + "{", 1),            # extension characters count two
    ("gsm", "é" * 160, 1),                                               # é is GSM-7 basic
    ("gsm", "好" * 70, 1), ("gsm", "好" * 71, 2), ("gsm", "a" * 134 + "好", 3),   # UCS-2: 70, then 67
    ("gsm", "a" * 69 + "😀", 2), ("gsm", "a" * 68 + "😀", 1),              # an emoji is two UCS-2 units
])
def test_sms_part_lengths(scheme, text, parts):
    assert sms_segments(text, scheme) == parts


# ----------------------------------------------------------------------------- promotion phases

PROMO = [  # D = 2025-11-11: build_up 09-01…10-30 (D−71…D−12), 10-31 (D−11) none, warm_up 11-01…11-10
    ("old", "2025-08-31 23:59:59", 1.0),      # D−72, last second: before the period, so ...
    ("old", "2025-11-11 12:00:00", 2.0),      # ... old on D
    ("new", "2025-09-01 00:00:00", 4.0),      # D−71, first second: in build-up, so ...
    ("new", "2025-11-11 13:00:00", 8.0),      # ... new on D
    ("b12", "2025-10-30 23:59:59", 16.0),     # D−12, last second: build-up
    ("g11", "2025-10-31 00:00:00", 32.0),     # D−11 from its first ...
    ("g11b", "2025-10-31 23:59:59", 64.0),    # ... to its last second: in no phase, in the period
    ("w10", "2025-11-01 00:00:00", 128.0),    # D−10, first second: warm-up
    ("w1", "2025-11-10 23:59:59", 256.0),     # D−1, last second: warm-up
    ("d0", "2025-11-11 00:00:00", 512.0),     # D, first second
    ("a1", "2025-11-12 00:00:00", 1024.0),    # D+1: after-glow
    ("a3", "2025-11-14 23:59:59", 2048.0),    # D+3, last second: after-glow
    ("a4", "2025-11-15 00:00:00", 4096.0),    # D+4: after the period
]


def test_promotion_phase_edges_d_minus_12_11_10_and_new_old_at_the_period_start():
    from crmlab.promotion.plan import analyse_promotion

    o, _ = load(PROMO, "2025-11-30")
    r = analyse_promotion(o, date="2025-11-11", growth="new=0,old=0", clv_check=False)
    f = r.this_year

    def cell(phase, typ):
        return int(f.at[(phase, typ), "buyers"]), int(f.at[(phase, typ), "orders"]), f.at[(phase, typ), "sales"]

    assert cell("build_up", "new") == (2, 2, 4.0 + 16.0) and cell("build_up", "old")[:2] == (0, 0)
    assert cell("warm_up", "new") == (2, 2, 128.0 + 256.0)
    assert cell("day", "new") == (2, 2, 8.0 + 512.0) and cell("day", "old") == (1, 1, 2.0)
    assert cell("after_glow", "new") == (2, 2, 1024.0 + 2048.0)
    # the period: every order from 09-01 00:00:00 to 11-14 23:59:59 (D−11 included, D−72 and D+4 not)
    assert cell("period", "new") == (9, 10, 4.0 + 8.0 + 16 + 32 + 64 + 128 + 256 + 512 + 1024 + 2048)
    assert cell("period", "old") == (1, 1, 2.0)
    assert cell("period", "all") == (10, 11, 4095.0 - 1.0)
    assert r.complete("after_glow") and r.complete("period")
    # the export ending one second before the after-glow's last day ends: not complete
    r2 = analyse_promotion(o, date="2025-11-11", growth="new=0,old=0", clv_check=False,
                           observation_end="2025-11-14 23:59:58")
    assert not r2.complete("after_glow") and r2.complete("day")
