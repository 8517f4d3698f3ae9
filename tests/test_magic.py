"""The repurchase magic number: hand fixture, censoring, planted truth, too-small data, CLI contract.

Hand fixture, window 30 days, observation end 2025-06-30 (end of day), all orders paid:

    A  01-01, 01-20 (19 d), 03-01 (40 d), 03-10 (9 d)
    B  01-01, 02-15 (45 d)
    C  02-01
    D  06-10, 06-15          (both within the last 30 days: never at risk)
    E  05-25, 06-20 (26 d)   (05-25 + 30 d = 06-24: at risk; 06-20 is not)
    F  05-31 23:00           (+30 d = 06-30 23:00 <= end: at risk, no repurchase)
    G  04-01 10:00, 05-01 10:00 (exactly 30 d: inclusive, a repurchase)

k=1: 7 customers; at risk A B C E F G = 6; repurchased A (19 d) E (26 d) G (30 d) = 3.
k=2: A B D E G = 5; at risk A (01-20) B (02-15) G (05-01) = 3; repurchased: none (A's gap is 40 d).
k=3: A (03-01) at risk, repurchased (9 d) -> 1/1.  k=4: A (03-10) at risk, no order 5 -> 0/1.
Naive: k=1 5/7 (customers with 2+ / 1+), k=2 1/5, k=3 1/1, k=4 0/1.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from crmlab.cli import main
from crmlab.io import load_orders
from crmlab.magic import magic_number, magic_targets, repurchase_curve
from crmlab.simulate import StoreSpec, simulate_store
from conftest import orders_frame

HAND = [("A", "2025-01-01"), ("A", "2025-01-20"), ("A", "2025-03-01"), ("A", "2025-03-10"),
        ("B", "2025-01-01"), ("B", "2025-02-15"), ("C", "2025-02-01"), ("D", "2025-06-10"), ("D", "2025-06-15"),
        ("E", "2025-05-25"), ("E", "2025-06-20"), ("F", "2025-05-31 23:00:00"),
        ("G", "2025-04-01 10:00:00"), ("G", "2025-05-01 10:00:00")]


def hand(extra=()):
    return load_orders(orders_frame([(c, t, 50.0) for c, t in list(HAND) + list(extra)]),
                       observation_end="2025-06-30")[0]


def test_curve_by_hand():
    t = repurchase_curve(hand(), window_days=30, max_k=4).table
    assert t["customers"].tolist() == [7, 5, 1, 1]
    assert t["at_risk"].tolist() == [6, 3, 1, 1]
    assert t["repurchased"].tolist() == [3, 0, 1, 0]
    assert t["rate"].tolist() == pytest.approx([0.5, 0.0, 1.0, 0.0])
    assert t["naive_rate"].tolist() == pytest.approx([5 / 7, 1 / 5, 1.0, 0.0])


def test_censoring_guard_recent_customers_change_no_rate_but_the_naive_curve():
    base = repurchase_curve(hand(), window_days=30, max_k=4).table
    # 40 new customers whose first (k=1) order is inside the last window, 10 of them already back
    recent = [(f"R{i}", f"2025-06-{10 + i % 15:02d}") for i in range(40)]
    recent += [(f"R{i}", "2025-06-28") for i in range(10)]
    more = repurchase_curve(hand(recent), window_days=30, max_k=4).table
    assert more["at_risk"].tolist() == base["at_risk"].tolist()
    assert more["rate"].tolist() == pytest.approx(base["rate"].tolist())
    assert more["naive_rate"].iloc[0] != pytest.approx(base["naive_rate"].iloc[0])


def test_kaplan_meier_uses_censored_customers():
    # every customer in the hand fixture: KM P(next within 30 d | k=1) is defined and in [0, 1]
    t = repurchase_curve(hand(), window_days=30, max_k=2).table
    assert 0 <= t.at[1, "km_rate"] <= 1
    # with no censoring at all (long observation), KM equals the plain share within the window
    far = load_orders(orders_frame([(c, t_, 50.0) for c, t_ in HAND]), observation_end="2026-12-31")[0]
    tf = repurchase_curve(far, window_days=30, max_k=1).table
    assert tf.at[1, "km_rate"] == pytest.approx(tf.at[1, "rate"])


def test_too_small_data_gives_none_with_a_reason():
    m = magic_number(repurchase_curve(hand(), window_days=30, max_k=4))
    assert m.magic_number is None and m.reason.startswith("too little data")
    assert all(v is None for v in m.rules.values())


def test_a_curve_that_keeps_rising_gives_none_and_says_so():
    import pandas as pd

    from crmlab.magic import RepurchaseCurve

    k = np.arange(1, 11)
    at_risk = np.full(10, 4000)
    rate = np.linspace(0.41, 0.93, 10)
    t = pd.DataFrame({"k": k, "customers": at_risk, "at_risk": at_risk, "repurchased": (rate * at_risk).astype(int)})
    t["rate"] = t["repurchased"] / t["at_risk"]
    t["enough"] = True
    m = magic_number(RepurchaseCurve(t.set_index("k", drop=False), 90, pd.Timestamp("2025-12-31"), 50))
    assert m.magic_number is None and "keeps rising through 10 orders, 41% to 93%" in m.reason


@pytest.mark.slow
def test_planted_magic_number_recovered_on_19_of_20_seeds():
    """Default rule, default size (20,000 customers), seeds 0..19: truth.json says M = 3."""
    found = []
    for seed in range(20):
        orders, _, truth, _ = simulate_store(StoreSpec(seed=seed))
        o = load_orders(orders, observation_end="2025-12-31")[0]
        found.append(magic_number(repurchase_curve(o)).magic_number)
    assert truth["magic_number"] == 3
    assert sum(f == 3 for f in found) >= 19, found


def test_planted_rates_inside_their_intervals(store_orders, store_truth):
    t = repurchase_curve(store_orders[0]).table
    truth = np.array([store_truth["repurchase_rate_by_k"][str(k)] for k in t["k"]])
    inside = (t["ci_low"].to_numpy() <= truth) & (truth <= t["ci_high"].to_numpy())
    assert inside.sum() >= 8, list(zip(t["k"], t["rate"].round(3), truth))


def test_targets_are_active_and_below_the_magic_number(store_orders):
    t = magic_targets(store_orders[0], 3, 90)
    assert (t["paid_orders"] < 3).all() and (t["recency_days"] <= 90).all()
    assert t["orders_to_magic"].is_monotonic_increasing


def test_cli_contract(small_store, capsys):
    assert main(["magic-number", "--orders", str(small_store / "orders.csv"), "--window-days", "90", "--json"]) == 0
    j = json.loads(capsys.readouterr().out)
    assert {"window_days", "observation_end", "magic_number", "rule", "reason", "rules", "curve"} <= set(j)
    assert {"k", "at_risk", "repurchased", "rate", "ci_low", "ci_high", "naive_rate", "km_rate"} <= set(j["curve"][0])
