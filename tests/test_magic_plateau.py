"""The magic number's plateau is flat: every pair of rates within ±3 points, no pooling, fixed sequence.

Constructed curves: customers at risk and repurchasers per k written by hand (rates exact), so
every expected answer follows from the rule's definition and a calculator:

* pair size (two order counts judged): 0.5 (z_.95 + z_.975)^2 / .03^2 = 0.5 * 3.6049^2 / .0009 =
  7,219.9 -> 7,220 customers at risk each;
* a pair of equal rates p at n_i, n_j passes when 1.6449 sqrt(p(1-p)(1/n_i + 1/n_j)) < .03;
* a rate 8 points above the plateau's 62% at 1,000 at risk (plateau 30,000): se = sqrt(.7 .3 / 1000
  + .62 .38 / 30000) = .01476; (.08 - .03) / .01476 = 3.39 > z_(1 - .05/5) = 2.326: it has moved.
"""
from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.proportion import proportion_confint, tost_proportions_2indep

from crmlab.analyses.magic import departs, magic_number, pair_size, pairwise_tost, repurchase_curve
from crmlab.engine.sources import order_table
from test_magic import curve_of, hand

#: at-risk counts like a 50,000-customer simulated store's: 2.5 x the 20,000 store's (seed 0), k = 1..10
STORE_50K = [40683, 19302, 11160, 7632, 5182, 3412, 2405, 1588, 1028, 645]
#: the 20,000-customer store's (seed 0)
STORE_20K = [16273, 7721, 4464, 3053, 2073, 1365, 962, 635, 411, 258]
TODAY = [0.30, 0.45] + [0.62] * 8  # the simulator's planted rates (truth.json), M = 3


def curve(rates, at_risk):
    n = np.asarray(at_risk)
    return curve_of(np.round(np.asarray(rates) * n), n)


def test_pair_size_by_hand():
    assert pair_size() == 7220  # module docstring
    # 80% power: 0.5 (1.6449 + 1.2816)^2 / .0009 = 4,757.2 -> 4,758
    assert pair_size(0.03, 0.05, 0.8) == 4758


def test_pairwise_tost_equals_statsmodels_two_sample_tost():
    x, n = [530, 1150, 2480], [900, 2000, 4000]
    t = pairwise_tost(x, n, tolerance=0.03)
    for row in t.itertuples():
        r = tost_proportions_2indep(x[row.i], n[row.i], x[row.j], n[row.j], -0.03, 0.03, method="wald",
                                    correction=False)
        assert row.p_value == pytest.approx(r.pvalue, rel=1e-9)
        assert row.difference == pytest.approx(x[row.i] / n[row.i] - x[row.j] / n[row.j], rel=1e-12)
    # 530/900 = .5889 vs 2480/4000 = .62: 3.1 points apart, never equivalent, needs infinitely many
    assert not t.loc[(t["i"] == 0) & (t["j"] == 2), "equivalent"].item()
    assert math.isinf(t.loc[(t["i"] == 0) & (t["j"] == 2), "needed_factor"].item())


def test_departs_by_hand():
    d, se, p = departs([700], [1000], 18600, 30000, tolerance=0.03)
    se_hand = math.sqrt(0.7 * 0.3 / 1000 + 0.62 * 0.38 / 30000)
    assert se[0] == pytest.approx(se_hand, rel=1e-12) and d[0] == pytest.approx(0.08)
    assert p[0] == pytest.approx(stats.norm.sf((0.08 - 0.03) / se_hand), rel=1e-9)
    assert (0.08 - 0.03) / se_hand == pytest.approx(3.388, abs=1e-3)


def test_flat_62_at_todays_rates_gives_the_planted_3():
    """30%, 45%, then 62% flat at the counts of a 50,000-customer store: judged k = 1..4 (>= 7,220),
    every pair of 3..4 equal, 2 vs 3 17 points apart; k = 5..10 thinner but not moved: M = 3."""
    m = magic_number(curve(TODAY, STORE_50K))
    assert m.magic_number == 3 and m.through_k == 4 and m.level == "shown"
    assert m.plateau["pair"].tolist() == ["3 vs 4"] and m.plateau["equivalent"].all()
    assert m.tail["k"].tolist() == list(range(5, 11)) and not m.tail["outside"].any()
    assert m.details["plateau"]["not_enough_to_tell"] == list(range(5, 11))
    # a bigger store judges more order counts and still finds 3 (every count >= 7,220 at 20x)
    big = magic_number(curve(TODAY, np.multiply(STORE_50K, 20)))
    assert big.magic_number == 3 and big.through_k == 10 and len(big.plateau) == 28  # 8 choose 2 pairs


def test_flat_62_with_too_few_customers_is_not_shown_but_indicated():
    """The 20,000-customer store's counts: k = 3 has 4,464 < 7,220 at risk, so no pair from 3 is judged and
    the plateau is not *shown*; it is *indicated* (tests/test_magic_indicated.py): k = 3..5 have >= 1,718 at
    risk and equal rates. Showing it takes 7,220 / 2,073 = 3.48x the customers (k = 3..5 judged); with the
    indicated level switched off (a threshold above every count) the answer is none, "not enough to tell"."""
    m = magic_number(curve(TODAY, STORE_20K))
    assert m.magic_number == 3 and m.level == "indicated" and m.through_k == 5
    assert m.details["plateau"]["not_enough_to_tell"] == list(range(3, 11))
    assert m.needed_factor == pytest.approx(7220 / 2073, rel=1e-12)
    off = magic_number(curve(TODAY, STORE_20K), min_indicated=10 ** 9)
    assert off.magic_number is None and off.level == "none" and off.through_k == 2
    assert "not enough customers to show it" in off.reason and "k = 3, 4 have fewer than 7,220" in off.reason
    assert off.needed_factor == pytest.approx(7220 / 3053, rel=1e-12)


def test_a_rising_thin_tail_is_never_a_plateau():
    """62% at k = 3..5 (judged, 8,000+ at risk), then 58, 61, 64, 67, 70% on 1,000-3,000 customers: the old
    rule pooled the tail (about 63%) and called the whole curve flat; k = 10 has moved (module docstring)."""
    rates = [0.30, 0.45, 0.62, 0.62, 0.62, 0.58, 0.61, 0.64, 0.67, 0.70]
    n = [40000, 20000, 12000, 10000, 8000, 3000, 2500, 2000, 1500, 1000]
    m = magic_number(curve(rates, n))
    assert m.magic_number is None and m.through_k == 5
    assert m.tail.set_index("k")["outside"].to_dict() == {6: False, 7: False, 8: False, 9: False, 10: True}
    assert "moves again after 5: k = 10 at 70% (1,000 at risk)" in m.reason
    # the same curve with a flat tail is a plateau from 3
    flat = magic_number(curve(rates[:5] + [0.62] * 5, n))
    assert flat.magic_number == 3 and flat.through_k == 5


def test_a_rising_judged_tail_is_never_a_plateau():
    # every k with 40,000 at risk: 67 vs 70 is 3 points apart already, so the sequence stops at its first test
    rates = [0.30, 0.45, 0.62, 0.62, 0.62, 0.58, 0.61, 0.64, 0.67, 0.70]
    m = magic_number(curve(rates, [40000] * 10))
    assert m.magic_number is None and m.through_k == 10


def test_60_62_64_is_not_a_plateau_from_3():
    """60/62/64% at k = 3..5: 3 vs 5 is 4 points apart, so not flat from 3. From 4 (62 vs 64, 40,000 at risk
    each: 2 points + 1.6449 sqrt(2 (.62 .38 + .64 .36) / 2 / 40000) = 2.55 points < 3) it is: a later one."""
    m = magic_number(curve([0.30, 0.45, 0.60, 0.62, 0.64], [40000] * 5))
    assert m.magic_number == 4
    se = math.sqrt(0.62 * 0.38 / 40000 + 0.64 * 0.36 / 40000)
    assert 0.02 + stats.norm.ppf(0.95) * se < 0.03
    # with 20,000 at risk (2 + 1.6449 x .481 = 2.79 points) still 4; the old pooled rule said 3
    assert magic_number(curve([0.30, 0.45, 0.60, 0.62, 0.64], [20000] * 5)).magic_number == 4


def test_fixed_sequence_keeps_the_error_of_a_false_plateau_at_alpha():
    """Rates 62, 62, 65% at k = 3..5 (3 vs 5 exactly at the margin: not flat from 3) on 8,000 at risk each.
    The rule may say 4 (4 vs 5 is also at the margin: not flat either) or none, but must not say 3 or 4
    more often than 5% of the time: 150 binomial draws, seeded; the Wilson 99% lower bound below 5%. (The
    old rule, each rate against the pooled 63%, said 3 on 76 of 100 such draws.)"""
    rng = np.random.default_rng(7)
    n = np.array([40000, 20000, 8000, 8000, 8000])
    rates = np.array([0.30, 0.45, 0.62, 0.62, 0.65])
    wrong = 0
    draws = 150
    for _ in range(draws):
        m = magic_number(curve_of(rng.binomial(n, rates), n))
        wrong += m.magic_number in (3, 4)  # both claims include a pair 3 points apart
    assert proportion_confint(wrong, draws, alpha=0.01, method="wilson")[0] < 0.05, wrong


def test_customers_first_seen_in_the_lead_in_are_left_out_of_the_curve():
    """test_magic's hand fixture with the lead-in ending 2025-02-01: A and B (first seen 01-01) have
    unknown order counts and leave the curve; C (02-01), D, E, F, G stay. k = 1: customers C D E F G = 5,
    at risk C E F G = 4 (D's first order is in the last 30 days), repurchased E (26 d), G (30 d) = 2."""
    o = replace(order_table(hand()), history_start=pd.Timestamp("2025-02-01"))
    t = repurchase_curve(o, window_days=30, max_k=2).table
    assert t["customers"].tolist() == [5, 3] and t["at_risk"].tolist() == [4, 1]
    assert t["repurchased"].tolist() == [2, 0]
